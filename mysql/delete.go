package mysql

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/instachat/instachat"
)

// DeleteMessage implements instachat.Store. The deletion takes the chat's
// next revision under the lock that serialises the chat's feed (see
// lockChatFeed), as an edit does, so it is ordered with the chat's creates
// and edits whichever process commits them.
func (db *DB) DeleteMessage(ctx context.Context, token string, chat, number int64, at time.Time) (*instachat.Message, error) {
	var m *instachat.Message
	err := db.inTx(ctx, sql.LevelReadCommitted, func(tx *sql.Tx) error {
		revision, err := lockChatFeed(ctx, tx, token, chat)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE messages SET body = '', deleted_at = ?, updated_at = ?, revision = ?
			WHERE app_token = ? AND chat_number = ? AND number = ? AND deleted_at IS NULL AND `+liveChat+` AND `+liveApp,
			at, at, revision+1, token, chat, number, token, chat, token)
		if err := updatedOne(res, err, instachat.ErrMessageNotFound); err != nil {
			return err
		}
		if m, err = find(ctx, tx, "message", scanMessage, `SELECT `+messageCols+` FROM messages WHERE app_token = ? AND chat_number = ? AND number = ?`,
			token, chat, number); err != nil {
			return err
		}
		if db.searchErasures {
			if _, err := tx.ExecContext(ctx, `INSERT INTO search_erasures (app_token, chat_number, number, created_at, deleted_at) VALUES (?, ?, ?, ?, ?)`,
				token, chat, number, m.CreatedAt, at); err != nil {
				return err
			}
		}
		// A chat whose row is not stored yet matches nothing: its revision
		// is its newest message's, and inserting it counts no tombstone.
		_, err = tx.ExecContext(ctx, `UPDATE chats SET revision = ?, messages_count = GREATEST(messages_count - 1, 0) WHERE app_token = ? AND number = ?`,
			revision+1, token, chat)
		return err
	})
	return m, formatError(err, "message")
}

// DeleteChat implements instachat.Store. The chat's row becomes its
// tombstone at the application's next revision, under the application's
// row lock (the lock ApplyCreates takes first), and a reclaim is recorded;
// Reclaim erases the messages later.
func (db *DB) DeleteChat(ctx context.Context, token string, number int64, at time.Time) (*instachat.Chat, error) {
	var c *instachat.Chat
	err := db.inTx(ctx, sql.LevelReadCommitted, func(tx *sql.Tx) error {
		revision, err := lockAppFeed(ctx, tx, token)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE chats SET deleted_at = ?, updated_at = ?, app_revision = ?
			WHERE app_token = ? AND number = ? AND deleted_at IS NULL`, at, at, revision+1, token, number)
		if err := updatedOne(res, err, instachat.ErrChatNotFound); err != nil {
			return err
		}
		if c, err = find(ctx, tx, "chat", scanChat, `SELECT `+chatCols+` FROM chats WHERE app_token = ? AND number = ?`, token, number); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE applications SET revision = ?, chats_count = GREATEST(chats_count - 1, 0) WHERE token = ?`,
			revision+1, token); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO reclaims (app_token, chat_number) VALUES (?, ?)`, token, number)
		return err
	})
	return c, formatError(err, "chat")
}

// DeleteApplication implements instachat.Store, as DeleteChat one level up.
func (db *DB) DeleteApplication(ctx context.Context, token string, at time.Time) error {
	err := db.inTx(ctx, sql.LevelReadCommitted, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE applications SET deleted_at = ?, updated_at = ? WHERE token = ? AND deleted_at IS NULL`, at, at, token)
		if err := updatedOne(res, err, instachat.ErrApplicationNotFound); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO reclaims (app_token, chat_number) VALUES (?, 0)`, token)
		return err
	})
	return formatError(err, "application")
}

// reclaimMaxRows is the most rows one Reclaim statement deletes, whatever
// limit it is asked. BenchmarkReclaimBatch measured batches of 1,000 rows
// (the worker's largest) at 16.7 ms median but 134.7 ms at worst on a
// shared machine, over the issue's ~100 ms for any statement's locks
// (docs/BENCHMARKS.md); half the rows is half the work of the slowest.
const reclaimMaxRows = 500

// Reclaim implements instachat.Store. Each call deletes at most limit rows
// (and at most reclaimMaxRows) of the oldest reclaim, of one kind (messages,
// then an application's chats), in one short READ COMMITTED statement that
// walks a unique index prefix, so it locks only the rows it deletes and no
// gap: creates of other chats never wait for it. The tombstone rows of a
// deleted chat and application stay. Once a reclaim has no rows left, done
// is called with its scope, and the reclaim's record goes only after done
// returned nil.
func (db *DB) Reclaim(ctx context.Context, limit int, done func(context.Context, instachat.Scope) error) (int64, error) {
	if limit < 1 {
		return 0, instachat.Errorf(instachat.EBADREQUEST, "limit must be at least 1")
	}
	limit = min(limit, reclaimMaxRows)
	var id, chat int64
	var token string
	err := db.db.QueryRowContext(ctx, `SELECT id, app_token, chat_number FROM reclaims ORDER BY id LIMIT 1`).Scan(&id, &token, &chat)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, formatError(err, "")
	}
	type step struct {
		query string
		args  []any
	}
	// The erasures the search engine still owes go with the rows: the
	// engine forgets the whole scope (done) before the record goes.
	steps := []step{
		{`DELETE FROM search_erasures WHERE app_token = ? AND chat_number = ? ORDER BY number LIMIT ?`, []any{token, chat, limit}},
		{`DELETE FROM messages WHERE app_token = ? AND chat_number = ? ORDER BY number LIMIT ?`, []any{token, chat, limit}},
	}
	if chat == 0 {
		steps = []step{
			{`DELETE FROM search_erasures WHERE app_token = ? ORDER BY chat_number, number LIMIT ?`, []any{token, limit}},
			{`DELETE FROM messages WHERE app_token = ? ORDER BY chat_number, number LIMIT ?`, []any{token, limit}},
			{`DELETE FROM chats WHERE app_token = ? ORDER BY number LIMIT ?`, []any{token, limit}},
		}
	}
	for _, s := range steps {
		var n int64
		err := db.inTx(ctx, sql.LevelReadCommitted, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, s.query, s.args...)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return 0, formatError(err, "")
		}
		if n > 0 {
			return n, nil
		}
	}
	if done != nil {
		scope := instachat.MessagesOf(token, chat)
		if chat == 0 {
			scope = instachat.ChatsOf(token)
		}
		if err := done(ctx, scope); err != nil {
			return 0, err
		}
	}
	// A chat deleted before its application has nothing left either.
	_, err = db.db.ExecContext(ctx, `DELETE FROM reclaims WHERE id = ? OR (app_token = ? AND ? = 0)`, id, token, chat)
	if err != nil {
		return 0, formatError(err, "")
	}
	return 1, nil
}

// PendingSearchErasures implements instachat.SearchErasures.
func (db *DB) PendingSearchErasures(ctx context.Context, before time.Time, limit int) ([]*instachat.Message, error) {
	if limit < 1 {
		return nil, instachat.Errorf(instachat.EBADREQUEST, "limit must be at least 1")
	}
	rows, err := db.db.QueryContext(ctx, `SELECT app_token, chat_number, number, created_at, deleted_at FROM search_erasures
		WHERE deleted_at <= ? ORDER BY deleted_at LIMIT ?`, before, limit)
	if err != nil {
		return nil, formatError(err, "")
	}
	defer rows.Close()
	var msgs []*instachat.Message
	for rows.Next() {
		m := &instachat.Message{}
		var deleted time.Time
		if err := rows.Scan(&m.Token, &m.Chat, &m.Number, &m.CreatedAt, &deleted); err != nil {
			return nil, formatError(err, "")
		}
		m.UpdatedAt, m.DeletedAt = deleted, &deleted
		msgs = append(msgs, m)
	}
	return msgs, formatError(rows.Err(), "")
}

// SearchErased implements instachat.SearchErasures, in statements of up
// to 500 primary keys each.
func (db *DB) SearchErased(ctx context.Context, msgs []*instachat.Message) error {
	for chunk := range slices.Chunk(msgs, 500) {
		args := make([]any, 0, 3*len(chunk))
		for _, m := range chunk {
			args = append(args, m.Token, m.Chat, m.Number)
		}
		keys := tuples(len(chunk), 3)
		if _, err := db.db.ExecContext(ctx, `DELETE FROM search_erasures WHERE (app_token, chat_number, number) IN (`+keys+`)`, args...); err != nil {
			return formatError(err, "")
		}
	}
	return nil
}

// DeletedChats returns those of the chats (MessagesOf scopes) whose chat or
// application is deleted, for the indexing consumer (worker.Deletions): a
// chat's tombstone row stays until its application's reclaim, and the
// application's for good. Two statements per 500 chats, each seeks of
// unique keys.
func (db *DB) DeletedChats(ctx context.Context, chats []instachat.Scope) (map[instachat.Scope]bool, error) {
	gone := map[instachat.Scope]bool{}
	for chunk := range slices.Chunk(chats, 500) {
		tokens := map[string]bool{}
		var targs, cargs []any
		for _, s := range chunk {
			if !tokens[s.Token] {
				tokens[s.Token] = true
				targs = append(targs, s.Token)
			}
			cargs = append(cargs, s.Token, s.Chat)
		}
		deletedApps := map[string]bool{}
		err := db.scanKeys(ctx, `SELECT token, 0 FROM applications WHERE deleted_at IS NOT NULL AND token IN (`+placeholders(len(targs))+`)`,
			targs, func(token string, _ int64) { deletedApps[token] = true })
		if err != nil {
			return nil, err
		}
		err = db.scanKeys(ctx, `SELECT app_token, number FROM chats WHERE deleted_at IS NOT NULL AND (app_token, number) IN (`+
			tuples(len(chunk), 2)+`)`, cargs, func(token string, chat int64) { gone[instachat.MessagesOf(token, chat)] = true })
		if err != nil {
			return nil, err
		}
		for _, s := range chunk {
			if deletedApps[s.Token] {
				gone[s] = true
			}
		}
	}
	return gone, nil
}

// scanKeys runs query and hands fn each row's token and number.
func (db *DB) scanKeys(ctx context.Context, query string, args []any, fn func(string, int64)) error {
	rows, err := db.db.QueryContext(ctx, query, args...)
	if err != nil {
		return formatError(err, "")
	}
	defer rows.Close()
	for rows.Next() {
		var token string
		var n int64
		if err := rows.Scan(&token, &n); err != nil {
			return formatError(err, "")
		}
		fn(token, n)
	}
	return formatError(rows.Err(), "")
}
