package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/instachat/instachat"
)

// DeleteMessage implements instachat.Store: one transaction of the single
// writer, so the deletion's revision is in commit order with the creates
// and edits of its chat.
func (db *DB) DeleteMessage(ctx context.Context, token string, chat, number int64, at time.Time) (*instachat.Message, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, formatError(err, "")
	}
	defer tx.Rollback()
	m, err := one(ctx, tx.StmtContext(ctx, db.deleteMessage), scanMessage, "message", token, chat, number, at.UnixMicro())
	if err != nil {
		return nil, err
	}
	// A chat whose row is not stored yet matches nothing: its revision is
	// its newest message's, and inserting it counts no tombstone.
	for _, step := range []struct {
		stmt *sql.Stmt
		args []any
	}{
		{db.uncountMessage, []any{token, chat, m.Revision}},
		{db.eraseReceipt, []any{token, chat, number}},
	} {
		if _, err := tx.StmtContext(ctx, step.stmt).ExecContext(ctx, step.args...); err != nil {
			return nil, formatError(err, "")
		}
	}
	// Erasing the body queued the message for the indexer, which deletes
	// its entry.
	return m, db.commit(tx, 1)
}

// DeleteChat implements instachat.Store. The chat's row becomes its
// tombstone and a reclaim is recorded, in one transaction; Reclaim erases
// the messages later.
func (db *DB) DeleteChat(ctx context.Context, token string, number int64, at time.Time) (*instachat.Chat, error) {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, formatError(err, "")
	}
	defer tx.Rollback()
	c, err := one(ctx, tx.StmtContext(ctx, db.deleteChat), scanChat, "chat", token, number, at.UnixMicro())
	if err != nil {
		return nil, err
	}
	for _, step := range []struct {
		stmt *sql.Stmt
		args []any
	}{
		{db.uncountChat, []any{token, c.AppRevision}},
		{db.eraseReceipt, []any{token, 0, number}},
		{db.insertReclaim, []any{token, number}},
		{db.insertErasure, []any{token, number}},
	} {
		if _, err := tx.StmtContext(ctx, step.stmt).ExecContext(ctx, step.args...); err != nil {
			return nil, formatError(err, "")
		}
	}
	return c, db.commit(tx, 1)
}

// DeleteApplication implements instachat.Store, as DeleteChat one level up.
func (db *DB) DeleteApplication(ctx context.Context, token string, at time.Time) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return formatError(err, "")
	}
	defer tx.Rollback()
	ok, err := inserted(tx.StmtContext(ctx, db.deleteApp).ExecContext(ctx, token, at.UnixMicro()))
	if err != nil {
		return err
	}
	if !ok {
		return instachat.ErrApplicationNotFound
	}
	for _, stmt := range []*sql.Stmt{db.insertReclaim, db.insertErasure} {
		if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, token, 0); err != nil {
			return formatError(err, "")
		}
	}
	return db.commit(tx, 1)
}

// Reclaim implements instachat.Store. Each call is one transaction of the
// writer that deletes at most limit rows of the oldest reclaim, one kind of
// row at a time — messages, then receipts, then, for an application, its
// chats — so it holds the write lock about as long as a batch of creates;
// creates and edits take their turns between calls. The tombstone rows of a
// deleted chat and application stay; their index entries are the indexer's
// to erase (eraseStep in index.go), in the index's own file. Once a reclaim
// has no rows left, done is called with its scope, after that transaction
// ended (done may wait on the network; the writer must not), and the
// reclaim's record goes, in a transaction of its own, only after done
// returned nil.
func (db *DB) Reclaim(ctx context.Context, limit int, done func(context.Context, instachat.Scope) error) (int64, error) {
	if limit < 1 {
		return 0, instachat.Errorf(instachat.EBADREQUEST, "limit must be at least 1")
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, formatError(err, "")
	}
	defer tx.Rollback()
	var id, chat int64
	var token string
	err = tx.StmtContext(ctx, db.nextReclaim).QueryRowContext(ctx).Scan(&id, &token, &chat)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, formatError(err, "")
	}
	// Each statement deletes at most limit rows of one kind; the first
	// that finds some ends the call.
	var steps []string
	if chat > 0 {
		steps = []string{
			`DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE app_token = ?1 AND chat_number = ?2 LIMIT ?3)`,
			`DELETE FROM receipts WHERE (app_token, idempotency_key) IN
				(SELECT app_token, idempotency_key FROM receipts WHERE app_token = ?1 AND chat_number = ?2 LIMIT ?3)`,
		}
	} else {
		steps = []string{
			`DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE app_token = ?1 LIMIT ?3)`,
			`DELETE FROM receipts WHERE (app_token, idempotency_key) IN
				(SELECT app_token, idempotency_key FROM receipts WHERE app_token = ?1 LIMIT ?3)`,
			`DELETE FROM chats WHERE id IN (SELECT id FROM chats WHERE app_token = ?1 LIMIT ?3)`,
		}
	}
	for _, step := range steps {
		res, err := tx.ExecContext(ctx, step, token, chat, limit)
		if err != nil {
			return 0, formatError(err, "")
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, formatError(err, "")
		}
		if n > 0 {
			return n, formatError(tx.Commit(), "")
		}
	}
	if done != nil {
		// Nothing is left to erase, so nothing is lost by ending the
		// transaction here; the record is removed in another, once done
		// succeeded. Another reclaimer may call done for the same record
		// meanwhile, which done bears.
		if err := tx.Rollback(); err != nil {
			return 0, formatError(err, "")
		}
		scope := instachat.MessagesOf(token, chat)
		if chat == 0 {
			scope = instachat.ChatsOf(token)
		}
		if err := done(ctx, scope); err != nil {
			return 0, err
		}
		if tx, err = db.write.BeginTx(ctx, nil); err != nil {
			return 0, formatError(err, "")
		}
		defer tx.Rollback()
	}
	if chat == 0 {
		// A chat deleted before its application has nothing left.
		if _, err := tx.ExecContext(ctx, `DELETE FROM reclaims WHERE app_token = ? AND chat_number > 0`, token); err != nil {
			return 0, formatError(err, "")
		}
	}
	if _, err := tx.StmtContext(ctx, db.doneReclaim).ExecContext(ctx, id); err != nil {
		return 0, formatError(err, "")
	}
	return 1, formatError(tx.Commit(), "")
}

// trimIndexed deletes the index queue's rows up to seq and the erasures up
// to erasure: the index has applied them (see index.go).
func (db *DB) trimIndexed(ctx context.Context, seq, erasure int64) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return formatError(err, "")
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM index_queue WHERE seq <= ?`, seq); err != nil {
		return formatError(err, "")
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM index_erasures WHERE id <= ?`, erasure); err != nil {
		return formatError(err, "")
	}
	return formatError(tx.Commit(), "")
}

// SyncIndex brings the index up to date with everything the store holds
// now, erasures included, without pauses: for a bulk load before it ends,
// and tests that look at the index.
func (db *DB) SyncIndex(ctx context.Context) error { return db.index.drain(ctx, false) }

// IndexBacklog returns how many queued changes the index has not applied
// and how many erasures of deleted chats and applications it has not
// finished.
func (db *DB) IndexBacklog(ctx context.Context) (queued, erasures int64, err error) {
	err = db.read.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM index_queue WHERE seq > (SELECT queue_seq FROM idx.index_state)),
		(SELECT COUNT(*) FROM index_erasures WHERE id > (SELECT erasure FROM idx.index_state))`).Scan(&queued, &erasures)
	return queued, erasures, formatError(err, "")
}
