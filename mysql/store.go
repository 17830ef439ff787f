package mysql

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/sqlrow"
)

const (
	appCols     = `token, name, chats_count, revision, created_at, updated_at`
	chatCols    = `app_token, number, name, messages_count, revision, app_revision, created_app_revision, created_at, updated_at, deleted_at`
	messageCols = `app_token, chat_number, number, body, revision, created_revision, created_at, updated_at, deleted_at`

	// A row under a deleted application or chat is hidden from every read
	// from the moment of the deletion, before Reclaim erases it: these
	// conditions take the token (liveApp) or the token and the chat number
	// (liveChat) as arguments, and are one seek of a unique index each.
	liveApp  = `NOT EXISTS (SELECT 1 FROM applications WHERE token = ? AND deleted_at IS NOT NULL)`
	liveChat = `NOT EXISTS (SELECT 1 FROM chats WHERE app_token = ? AND number = ? AND deleted_at IS NOT NULL)`

	// findApp and the others take their key, then the key again for the
	// live conditions (see findArgs).
	findApp     = `SELECT ` + appCols + ` FROM applications WHERE token = ? AND deleted_at IS NULL`
	findChat    = `SELECT ` + chatCols + ` FROM chats WHERE app_token = ? AND number = ? AND deleted_at IS NULL AND ` + liveApp
	findMessage = `SELECT ` + messageCols + ` FROM messages WHERE app_token = ? AND chat_number = ? AND number = ?
		AND deleted_at IS NULL AND ` + liveChat + ` AND ` + liveApp
)

// chatArgs are the arguments of findChat; messageArgs those of findMessage.
func chatArgs(token string, number int64) []any { return []any{token, number, token} }

func messageArgs(token string, chat, number int64) []any {
	return []any{token, chat, number, token, chat, token}
}

// CreateApplication implements instachat.Store.
func (db *DB) CreateApplication(ctx context.Context, app *instachat.Application) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO applications (token, name, created_at, updated_at) VALUES (?, ?, ?, ?)`,
		app.Token, app.Name, app.CreatedAt, app.UpdatedAt)
	return formatError(err, "application")
}

// FindApplication implements instachat.Store.
func (db *DB) FindApplication(ctx context.Context, token string) (*instachat.Application, error) {
	return find(ctx, db.db, "application", scanApp, findApp, token)
}

// ListApplications implements instachat.Store. Creation order is id order;
// an unknown after token yields an empty page rather than the first one.
func (db *DB) ListApplications(ctx context.Context, after string, limit int) ([]*instachat.Application, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+appCols+` FROM applications
		WHERE id > IF(? = '', 0, (SELECT id FROM applications WHERE token = ?)) AND deleted_at IS NULL
		ORDER BY id LIMIT ?`, after, after, limit)
	return all(rows, err, scanApp)
}

// UpdateApplication implements instachat.Store.
func (db *DB) UpdateApplication(ctx context.Context, token, name string, at time.Time) (*instachat.Application, error) {
	return update(ctx, db, "application", scanApp, `UPDATE applications SET name = ?, updated_at = ? WHERE token = ? AND deleted_at IS NULL`,
		findApp, name, at, token)
}

// FindChat implements instachat.Store.
func (db *DB) FindChat(ctx context.Context, token string, number int64) (*instachat.Chat, error) {
	return find(ctx, db.db, "chat", scanChat, findChat, chatArgs(token, number)...)
}

// ListChats implements instachat.Store.
func (db *DB) ListChats(ctx context.Context, token string, after int64, limit int) ([]*instachat.Chat, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+chatCols+` FROM chats
		WHERE app_token = ? AND number > ? AND deleted_at IS NULL AND `+liveApp+` ORDER BY number LIMIT ?`, token, after, token, limit)
	chats, err := all(rows, err, scanChat)
	if err == nil && len(chats) == 0 {
		err = db.exists(ctx, "application", `SELECT 1 FROM applications WHERE token = ? AND deleted_at IS NULL`, token)
	}
	return chats, err
}

// UpdateChat implements instachat.Store. The rename takes the application
// feed's next revision under the application's row lock, the lock
// ApplyCreates takes to store the application's chats, so the feed's
// revisions are dense and in commit order.
func (db *DB) UpdateChat(ctx context.Context, token string, number int64, name string, at time.Time) (*instachat.Chat, error) {
	var c *instachat.Chat
	err := db.inTx(ctx, sql.LevelReadCommitted, func(tx *sql.Tx) error {
		revision, err := lockAppFeed(ctx, tx, token)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE chats SET name = ?, updated_at = ?, app_revision = ?
			WHERE app_token = ? AND number = ? AND deleted_at IS NULL`,
			name, at, revision+1, token, number); err != nil {
			return err
		}
		if c, err = find(ctx, tx, "chat", scanChat, findChat, chatArgs(token, number)...); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE applications SET revision = ? WHERE token = ?`, revision+1, token)
		return err
	})
	return c, formatError(err, "chat")
}

// lockAppFeed locks the application's row and returns its feed's revision.
func lockAppFeed(ctx context.Context, tx *sql.Tx, token string) (int64, error) {
	var revision int64
	var deleted sql.NullTime
	err := tx.QueryRowContext(ctx, `SELECT revision, deleted_at FROM applications WHERE token = ? FOR UPDATE`, token).Scan(&revision, &deleted)
	if err == nil && deleted.Valid {
		return 0, instachat.ErrApplicationNotFound
	}
	if errors.Is(err, sql.ErrNoRows) {
		// Not stored (never, but the unique index must hold): its chats'
		// newest revision is where its feed stands.
		err = tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(app_revision), 0) FROM chats WHERE app_token = ?`, token).Scan(&revision)
	}
	return revision, err
}

// lockChatFeed locks what serialises the chat's feed and returns its
// revision: the chat's row, the lock ApplyCreates takes to store the chat's
// messages. A chat whose row is not stored yet (its messages came first) is
// serialised by its application's row, which ApplyCreates holds whenever it
// stores the chat's messages or row; its revision is its newest message's.
func lockChatFeed(ctx context.Context, tx *sql.Tx, token string, chat int64) (int64, error) {
	var revision int64
	lockChat := func() error {
		return tx.QueryRowContext(ctx, `SELECT revision FROM chats WHERE app_token = ? AND number = ? FOR UPDATE`, token, chat).Scan(&revision)
	}
	err := lockChat()
	if !errors.Is(err, sql.ErrNoRows) {
		return revision, err
	}
	// Under READ COMMITTED the read of a missing row locked nothing, so
	// this transaction takes the application's lock first, as ApplyCreates
	// does, and reads the chat again under it.
	if _, err := lockAppFeed(ctx, tx, token); err != nil {
		return 0, err
	}
	if err := lockChat(); !errors.Is(err, sql.ErrNoRows) {
		return revision, err
	}
	err = tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(revision), 0) FROM messages WHERE app_token = ? AND chat_number = ?`, token, chat).Scan(&revision)
	return revision, err
}

// FindMessage implements instachat.Store.
func (db *DB) FindMessage(ctx context.Context, token string, chat, number int64) (*instachat.Message, error) {
	return find(ctx, db.db, "message", scanMessage, findMessage, messageArgs(token, chat, number)...)
}

// ListMessages implements instachat.Store.
func (db *DB) ListMessages(ctx context.Context, token string, chat int64, after int64, limit int) ([]*instachat.Message, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+messageCols+` FROM messages
		WHERE app_token = ? AND chat_number = ? AND number > ? AND deleted_at IS NULL AND `+liveChat+` AND `+liveApp+`
		ORDER BY number LIMIT ?`, token, chat, after, token, chat, token, limit)
	msgs, err := all(rows, err, scanMessage)
	if err == nil && len(msgs) == 0 {
		err = db.exists(ctx, "chat", `SELECT 1 FROM chats WHERE app_token = ? AND number = ? AND deleted_at IS NULL AND `+liveApp, token, chat, token)
	}
	return msgs, err
}

// UpdateMessage implements instachat.Store. The edit takes the chat's next
// revision under the lock that serialises the chat's feed (see
// lockChatFeed), so the feed's revisions are dense and in commit order.
func (db *DB) UpdateMessage(ctx context.Context, token string, chat, number int64, body string, at time.Time) (*instachat.Message, error) {
	var m *instachat.Message
	err := db.inTx(ctx, sql.LevelReadCommitted, func(tx *sql.Tx) error {
		revision, err := lockChatFeed(ctx, tx, token, chat)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE messages SET body = ?, updated_at = ?, revision = ?
			WHERE app_token = ? AND chat_number = ? AND number = ? AND deleted_at IS NULL`,
			body, at, revision+1, token, chat, number)
		if err := updatedOne(res, err, instachat.ErrMessageNotFound); err != nil {
			return err
		}
		if m, err = find(ctx, tx, "message", scanMessage, findMessage, messageArgs(token, chat, number)...); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE chats SET revision = ? WHERE app_token = ? AND number = ?`, revision+1, token, chat)
		return err
	})
	return m, formatError(err, "message")
}

// exists is checked only when a page comes back empty, so the common page
// costs one query; it tells "nothing (more) here" from "no such parent".
func (db *DB) exists(ctx context.Context, what, query string, args ...any) error {
	var one int
	return formatError(db.db.QueryRowContext(ctx, query, args...).Scan(&one), what)
}

// update sets a row's text (a name or a body) and updated_at, and reads the
// row back in the same transaction, so the caller gets what it wrote: MySQL
// has no UPDATE … RETURNING. set ends, and get is, a WHERE on the row's
// unique key, whose values are where.
func update[T any](ctx context.Context, db *DB, what string, scan func(scanner) (*T, error), set, get string,
	text string, at time.Time, where ...any) (*T, error) {
	var v *T
	err := db.inTx(ctx, sql.LevelDefault, func(tx *sql.Tx) (err error) {
		if _, err := tx.ExecContext(ctx, set, append([]any{text, at}, where...)...); err != nil {
			return err
		}
		v, err = find(ctx, tx, what, scan, get, where...)
		return err
	})
	return v, formatError(err, what)
}

// recountApps is how many applications one Recount transaction covers.
const recountApps = 100

// Recount implements instachat.Store. It walks the applications a hundred at
// a time, each group in a transaction that locks the group's applications
// before counting. ApplyCreates locks the applications of its batch before
// anything else, so beside running workers every batch has either committed
// before the lock (and is counted) or waits, adding its rows once the totals
// are written.
func (db *DB) Recount(ctx context.Context) error {
	for after := int64(0); ; {
		var n int
		err := db.inTx(ctx, sql.LevelReadCommitted, func(tx *sql.Tx) error {
			ids, tokens, err := lockApps(ctx, tx, after)
			if n = len(ids); n == 0 || err != nil {
				return err
			}
			after = ids[n-1].(int64)
			in := `(` + placeholders(n) + `)`
			if _, err := tx.ExecContext(ctx, `UPDATE chats c SET messages_count = (SELECT COUNT(*) FROM messages m
				WHERE m.app_token = c.app_token AND m.chat_number = c.number AND m.deleted_at IS NULL) WHERE c.app_token IN `+in, tokens...); err != nil {
				return err
			}
			// Through the primary key, as lockApps: ApplyCreates locks
			// applications through the token index first, so a transaction
			// taking both in the other order could hold what it waits for.
			_, err = tx.ExecContext(ctx, `UPDATE applications a
				SET chats_count = (SELECT COUNT(*) FROM chats c WHERE c.app_token = a.token AND c.deleted_at IS NULL)
				WHERE a.id IN `+in, ids...)
			return err
		})
		if err != nil || n < recountApps {
			return formatError(err, "")
		}
	}
}

// lockApps locks the recountApps applications after id after and returns
// their ids and tokens.
func lockApps(ctx context.Context, tx *sql.Tx, after int64) (ids, tokens []any, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, token FROM applications WHERE id > ? ORDER BY id LIMIT ? FOR UPDATE`, after, recountApps)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var token string
		if err := rows.Scan(&id, &token); err != nil {
			return nil, nil, err
		}
		ids, tokens = append(ids, id), append(tokens, token)
	}
	return ids, tokens, rows.Err()
}

// HighestNumber implements instachat.Store. ORDER BY … DESC LIMIT 1 over a
// unique index prefix is one seek, however many rows.
func (db *DB) HighestNumber(ctx context.Context, s instachat.Scope) (int64, error) {
	var n int64
	var err error
	if s.ChatNumbers() {
		err = db.db.QueryRowContext(ctx, `SELECT COALESCE((SELECT number FROM chats WHERE app_token = ? ORDER BY number DESC LIMIT 1), 0)
			FROM applications WHERE token = ? AND deleted_at IS NULL`, s.Token, s.Token).Scan(&n)
	} else {
		// Tombstones count, so a deleted number is never issued again; a
		// deleted chat has no number to issue.
		err = db.db.QueryRowContext(ctx, `SELECT COALESCE((SELECT number FROM messages WHERE app_token = ? AND chat_number = ?
			ORDER BY number DESC LIMIT 1), 0)
			FROM applications WHERE token = ? AND deleted_at IS NULL AND `+liveChat, s.Token, s.Chat, s.Token, s.Token, s.Chat).Scan(&n)
	}
	return n, formatError(err, "application")
}

// Watermarks implements instachat.Store. One statement reads one snapshot,
// so the watermarks agree with each other even while workers write. The
// highest number is found by a descending seek per row: a correlated MAX()
// would read every row of the chat instead.
func (db *DB) Watermarks(ctx context.Context, fn func(instachat.Watermark) error) error {
	rows, err := db.db.QueryContext(ctx, `
		SELECT token, 0, COALESCE((SELECT number FROM chats
			WHERE app_token = a.token ORDER BY number DESC LIMIT 1), 0), deleted_at IS NOT NULL
		FROM applications a
		UNION ALL
		SELECT app_token, number, COALESCE((SELECT number FROM messages
			WHERE app_token = c.app_token AND chat_number = c.number ORDER BY number DESC LIMIT 1), 0), deleted_at IS NOT NULL
		FROM chats c`)
	return sqlrow.Watermarks(rows, err, fn, formatError)
}

type scanner = sqlrow.Scanner

func scanApp(s scanner) (*instachat.Application, error) {
	var a instachat.Application
	return &a, s.Scan(&a.Token, &a.Name, &a.ChatsCount, &a.Revision, &a.CreatedAt, &a.UpdatedAt)
}

func scanChat(s scanner) (*instachat.Chat, error) {
	var c instachat.Chat
	var deleted sql.NullTime
	err := s.Scan(&c.Token, &c.Number, &c.Name, &c.MessagesCount, &c.Revision, &c.AppRevision, &c.CreatedAppRevision,
		&c.CreatedAt, &c.UpdatedAt, &deleted)
	c.DeletedAt = nullTime(deleted)
	return &c, err
}

func scanMessage(s scanner) (*instachat.Message, error) {
	var m instachat.Message
	var deleted sql.NullTime
	err := s.Scan(&m.Token, &m.Chat, &m.Number, &m.Body, &m.Revision, &m.CreatedRevision, &m.CreatedAt, &m.UpdatedAt, &deleted)
	m.DeletedAt = nullTime(deleted)
	return &m, err
}

func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	return &t.Time
}

// updatedOne returns notFound unless the UPDATE of res changed a row.
func updatedOne(res sql.Result, err error, notFound error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		err = notFound
	}
	return err
}

// find returns the one row of a query; what names it for ENOTFOUND.
func find[T any](ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, what string, scan func(scanner) (*T, error), query string, args ...any) (*T, error) {
	return sqlrow.One(q.QueryRowContext(ctx, query, args...), scan, formatError, what)
}

// all scans every row of a query's result.
func all[T any](rows *sql.Rows, err error, scan func(scanner) (*T, error)) ([]*T, error) {
	return sqlrow.All(rows, err, scan, formatError)
}

// placeholders returns n comma-separated placeholders.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}
