package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/sqlrow"
)

// CreateApplication implements instachat.Store.
func (db *DB) CreateApplication(ctx context.Context, app *instachat.Application) error {
	_, err := db.insertApp.ExecContext(ctx, app.Token, app.Name, app.CreatedAt.UnixMicro(), app.UpdatedAt.UnixMicro())
	return formatError(err, "application")
}

// FindApplication implements instachat.Store.
func (db *DB) FindApplication(ctx context.Context, token string) (*instachat.Application, error) {
	return one(ctx, db.findApp, scanApp, "application", token)
}

// ListApplications implements instachat.Store.
func (db *DB) ListApplications(ctx context.Context, after string, limit int) ([]*instachat.Application, error) {
	rows, err := db.listApps.QueryContext(ctx, after, limit)
	return collect(rows, err, scanApp)
}

// UpdateApplication implements instachat.Store.
func (db *DB) UpdateApplication(ctx context.Context, token, name string, at time.Time) (*instachat.Application, error) {
	return one(ctx, db.updateApp, scanApp, "application", name, at.UnixMicro(), token)
}

// FindChat implements instachat.Store.
func (db *DB) FindChat(ctx context.Context, token string, number int64) (*instachat.Chat, error) {
	return one(ctx, db.findChat, scanChat, "chat", token, number)
}

// ListChats implements instachat.Store.
func (db *DB) ListChats(ctx context.Context, token string, after int64, limit int) ([]*instachat.Chat, error) {
	rows, err := db.listChats.QueryContext(ctx, token, after, limit)
	chats, err := collect(rows, err, scanChat)
	if err == nil && len(chats) == 0 {
		err = exists(ctx, db.appExists, "application", token)
	}
	return chats, err
}

// UpdateChat implements instachat.Store. The rename takes the application
// feed's next revision in the same transaction.
func (db *DB) UpdateChat(ctx context.Context, token string, number int64, name string, at time.Time) (*instachat.Chat, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, formatError(err, "")
	}
	defer tx.Rollback()
	c, err := one(ctx, tx.StmtContext(ctx, db.updateChat), scanChat, "chat", token, number, name, at.UnixMicro())
	if err != nil {
		return nil, err
	}
	if _, err := tx.StmtContext(ctx, db.setAppRevision).ExecContext(ctx, c.AppRevision, token); err != nil {
		return nil, formatError(err, "")
	}
	return c, formatError(tx.Commit(), "")
}

// FindMessage implements instachat.Store.
func (db *DB) FindMessage(ctx context.Context, token string, chat, number int64) (*instachat.Message, error) {
	return one(ctx, db.findMessage, scanMessage, "message", token, chat, number)
}

// ListMessages implements instachat.Store.
func (db *DB) ListMessages(ctx context.Context, token string, chat int64, after int64, limit int) ([]*instachat.Message, error) {
	rows, err := db.listMessages.QueryContext(ctx, token, chat, after, limit)
	msgs, err := collect(rows, err, scanMessage)
	if err == nil && len(msgs) == 0 {
		err = exists(ctx, db.chatExists, "chat", token, chat)
	}
	return msgs, err
}

// UpdateMessage implements instachat.Store. The edit takes the chat's next
// revision, and the new body replaces the message's index entry, in the same
// transaction.
func (db *DB) UpdateMessage(ctx context.Context, token string, chat, number int64, body string, at time.Time) (*instachat.Message, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, formatError(err, "")
	}
	defer tx.Rollback()
	m, err := one(ctx, tx.StmtContext(ctx, db.updateMessage), scanMessage, "message", token, chat, number, body, at.UnixMicro())
	if err != nil {
		return nil, err
	}
	// A chat whose row is not stored yet matches nothing: its revision is
	// its newest message's, this one's now.
	if _, err := tx.StmtContext(ctx, db.setChatRevision).ExecContext(ctx, m.Revision, token, chat); err != nil {
		return nil, formatError(err, "")
	}
	return m, db.commit(tx, 1)
}

// commit commits a transaction that changed what the index holds (a
// trigger of migrations/0008 queued about n changes) and tells the indexer.
func (db *DB) commit(tx *sql.Tx, n int) error {
	if err := tx.Commit(); err != nil {
		return formatError(err, "")
	}
	db.index.notify(n)
	return nil
}

// exists is checked only when a page comes back empty, so the common page
// costs one query; it tells "nothing (more) here" from "no such parent".
func exists(ctx context.Context, stmt *sql.Stmt, what string, args ...any) error {
	var one int
	return formatError(stmt.QueryRowContext(ctx, args...).Scan(&one), what)
}

type chatKey struct {
	token  string
	number int64
}

// ApplyCreates implements instachat.Store. Counts grow by the rows the
// inserts report as stored, so a create skipped by ON CONFLICT is not
// counted, and are added once per application and chat rather than per row.
//
// Revisions are taken in the order of the batch, the single writer
// connection keeping them in commit order: each chat stored takes its
// application's next revision, each message stored its chat's. They are
// counted in Go from the revision each feed was at, and written back with
// the counts; a create skipped as stored takes none. Once the transaction
// committed, the stored creates' Chat and Message carry their revisions (a
// chat also its messages_count), so that a caller can publish them.
//
// The answered transaction stores rows, and a trigger queues each stored
// message for the indexer, which indexes them after the commit, in batches
// of its own (see index.go).
func (db *DB) ApplyCreates(ctx context.Context, creates []instachat.Create) error {
	for _, c := range creates {
		if (c.Chat == nil) == (c.Message == nil) {
			return instachat.Errorf(instachat.EINVALID, "a create must carry exactly one chat or message")
		}
		if m := c.Message; m != nil && (m.Number < 1 || m.Number > maxMessageNumber) {
			return instachat.Errorf(instachat.EINVALID, "a message number must be between 1 and %d", maxMessageNumber)
		}
	}
	if len(creates) == 0 {
		return nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return formatError(err, "")
	}
	defer tx.Rollback()

	// What each feed the batch changes stands at, once read, and what it
	// grew by; and what the stored creates will carry.
	type feed struct{ revision, added int64 }
	apps, chats := map[string]*feed{}, map[chatKey]*feed{}
	type storedChat struct {
		chat                         *instachat.Chat
		count, revision, appRevision int64
	}
	var storedChats []storedChat
	var stored []*instachat.Message
	var revisions []int64 // of stored, in its order
	// The creates dropped because what they create, or the chat or
	// application it belongs to, is deleted, and when that was.
	dropped := map[instachat.Create]time.Time{}
	gone := map[chatKey]*time.Time{} // a chat's deleted_at, else its application's
	chatGone := func(k chatKey) (*time.Time, error) {
		if at, ok := gone[k]; ok {
			return at, nil
		}
		var at *time.Time
		if err := tx.StmtContext(ctx, db.chatDeleted).QueryRowContext(ctx, k.token, k.number).Scan(nullMicro{&at}); err != nil {
			return nil, formatError(err, "")
		}
		gone[k] = at
		return at, nil
	}

	insertChat, appRevision := tx.StmtContext(ctx, db.insertChat), tx.StmtContext(ctx, db.appRevision)
	for _, c := range creates {
		ch := c.Chat
		if ch == nil {
			continue
		}
		// Chat 0 stands for the application: its deleted_at alone.
		if at, err := chatGone(chatKey{ch.Token, 0}); err != nil {
			return err
		} else if at != nil {
			dropped[c] = *at
			continue
		}
		app := apps[ch.Token]
		if app == nil {
			app = &feed{}
			if err := appRevision.QueryRowContext(ctx, ch.Token).Scan(&app.revision); err != nil {
				return formatError(err, "")
			}
			apps[ch.Token] = app
		}
		next := app.revision + app.added + 1
		sc := storedChat{chat: ch, appRevision: next}
		err := insertChat.QueryRowContext(ctx, ch.Token, ch.Number, ch.Name, next, ch.CreatedAt.UnixMicro(), ch.UpdatedAt.UnixMicro()).
			Scan(&sc.count, &sc.revision)
		switch {
		case errors.Is(err, sql.ErrNoRows): // stored already, perhaps deleted since
			if at, err := chatGone(chatKey{ch.Token, ch.Number}); err != nil {
				return err
			} else if at != nil {
				dropped[c] = *at
			}
		case err != nil:
			return formatError(err, "")
		default:
			app.added++
			storedChats = append(storedChats, sc)
		}
	}
	insertMessage, chatRevision := tx.StmtContext(ctx, db.insertMessage), tx.StmtContext(ctx, db.chatRevision)
	for _, c := range creates {
		m := c.Message
		if m == nil {
			continue
		}
		k := chatKey{m.Token, m.Chat}
		if at, err := chatGone(k); err != nil {
			return err
		} else if at != nil {
			dropped[c] = *at
			continue
		}
		chat := chats[k]
		if chat == nil {
			// After the chats' inserts: a chat stored above starts at
			// its earlier messages' revision.
			chat = &feed{}
			if err := chatRevision.QueryRowContext(ctx, k.token, k.number).Scan(&chat.revision); err != nil {
				return formatError(err, "")
			}
			chats[k] = chat
		}
		next := chat.revision + chat.added + 1
		ok, err := inserted(insertMessage.ExecContext(ctx, m.Token, m.Chat, m.Number, m.Body, next, m.CreatedAt.UnixMicro(), m.UpdatedAt.UnixMicro()))
		if err != nil {
			return err
		}
		if ok {
			chat.added++
			stored = append(stored, m)
			revisions = append(revisions, next)
			continue
		}
		// Stored already: a retry, dropped if its message was deleted.
		var at *time.Time
		if err := tx.StmtContext(ctx, db.messageDeleted).QueryRowContext(ctx, m.Token, m.Chat, m.Number).Scan(nullMicro{&at}); err != nil {
			return formatError(err, "")
		}
		if at != nil {
			dropped[c] = *at
		}
	}
	kept := creates
	if len(dropped) > 0 {
		kept = slices.DeleteFunc(slices.Clone(creates), func(c instachat.Create) bool { _, ok := dropped[c]; return ok })
	}
	if err := db.keepReceipts(ctx, tx, kept); err != nil {
		return err
	}

	addChats := tx.StmtContext(ctx, db.addChats)
	for token, app := range apps {
		if app.added == 0 {
			continue
		}
		if _, err := addChats.ExecContext(ctx, app.added, app.revision+app.added, token); err != nil {
			return formatError(err, "")
		}
	}
	// A chat whose row is not stored yet matches nothing here; inserting it
	// later counts these messages and starts at the newest one's revision.
	addMessages := tx.StmtContext(ctx, db.addMessages)
	for k, chat := range chats {
		if chat.added == 0 {
			continue
		}
		if _, err := addMessages.ExecContext(ctx, chat.added, chat.revision+chat.added, k.token, k.number); err != nil {
			return formatError(err, "")
		}
	}
	if err := db.commit(tx, len(stored)); err != nil {
		return err
	}
	for _, sc := range storedChats {
		sc.chat.MessagesCount, sc.chat.Revision = sc.count, sc.revision
		sc.chat.AppRevision, sc.chat.CreatedAppRevision = sc.appRevision, sc.appRevision
	}
	for i, m := range stored {
		m.Revision, m.CreatedRevision = revisions[i], revisions[i]
	}
	for c, at := range dropped {
		if c.Chat != nil {
			c.Chat.DeletedAt = &at
		} else {
			c.Message.DeletedAt = &at
		}
	}
	// A message stored in the batch of its chat's creation came after it.
	for _, sc := range storedChats {
		if chat := chats[chatKey{sc.chat.Token, sc.chat.Number}]; chat != nil {
			sc.chat.MessagesCount += chat.added
			sc.chat.Revision = chat.revision + chat.added
		}
	}
	return nil
}

// maxMessageNumber is the highest number an index rowid has room for.
const maxMessageNumber = 1<<32 - 1

// indexRowid is a message's rowid in message_index: its chat's scope id in
// the high 32 bits, so that each chat is one range, and its number counted
// down from 2^32-1 in the low 32, so that the chat's newest message comes
// first. FTS5 reads a rowid range forwards from a seek, but backwards only
// from the end of the term's entries, through those of every later chat.
func indexRowid(scope, number int64) int64 { return scope<<32 | (maxMessageNumber - number) }

// inserted reports whether an INSERT … ON CONFLICT DO NOTHING stored its row
// rather than finding it there.
func inserted(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, formatError(err, "")
	}
	n, err := res.RowsAffected()
	return n > 0, formatError(err, "")
}

// Recount implements instachat.Store. Each count is a range scan of a unique
// index and its rows (tombstones are not counted); rows whose count is already right are left unwritten, so a recount
// of a consistent database writes nothing.
func (db *DB) Recount(ctx context.Context) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return formatError(err, "")
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `
		UPDATE applications SET chats_count = (SELECT COUNT(*) FROM chats WHERE app_token = applications.token AND deleted_at IS NULL)
		WHERE chats_count <> (SELECT COUNT(*) FROM chats WHERE app_token = applications.token AND deleted_at IS NULL);
		UPDATE chats SET messages_count = (SELECT COUNT(*) FROM messages
			WHERE app_token = chats.app_token AND chat_number = chats.number AND deleted_at IS NULL)
		WHERE messages_count <> (SELECT COUNT(*) FROM messages
			WHERE app_token = chats.app_token AND chat_number = chats.number AND deleted_at IS NULL);
	`); err != nil {
		return formatError(err, "")
	}
	return formatError(tx.Commit(), "")
}

// HighestNumber implements instachat.Store.
func (db *DB) HighestNumber(ctx context.Context, s instachat.Scope) (int64, error) {
	var n int64
	var err error
	if s.ChatNumbers() {
		err = db.highestChat.QueryRowContext(ctx, s.Token).Scan(&n)
	} else {
		err = db.highestMessage.QueryRowContext(ctx, s.Token, s.Chat).Scan(&n)
	}
	return n, formatError(err, "application")
}

// Watermarks implements instachat.Store. It reads one snapshot, so the
// watermarks are mutually consistent even while workers write.
func (db *DB) Watermarks(ctx context.Context, fn func(instachat.Watermark) error) error {
	rows, err := db.watermarks.QueryContext(ctx)
	return sqlrow.Watermarks(rows, err, fn, formatError)
}
