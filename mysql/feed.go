package mysql

import (
	"context"
	"database/sql"

	"github.com/instachat/instachat"
)

// ListChanges implements instachat.Feeds. The feed's current revision and
// its page are read in one REPEATABLE READ transaction, so in one snapshot:
// the page holds no change the revision does not count. The page is a range
// of the revision index, (app_token, chat_number, revision) for a chat's
// feed and (app_token, app_revision) for an application's, so a feed is
// read from any revision, however old, in pages of Limit rows.
func (db *DB) ListChanges(ctx context.Context, q instachat.ChangesQuery) (*instachat.ChangesPage, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	page := &instachat.ChangesPage{}
	from := max(q.After, q.Cursor)
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		page.Events = page.Events[:0]
		if q.Topic.Chat == 0 {
			err := tx.QueryRowContext(ctx, `SELECT revision FROM applications WHERE token = ? AND deleted_at IS NULL`, q.Topic.Token).Scan(&page.Revision)
			if err != nil {
				return formatError(err, "application")
			}
			if err := q.CheckRevision(page.Revision); err != nil {
				return err
			}
			rows, err := tx.QueryContext(ctx, `SELECT `+chatCols+` FROM chats WHERE app_token = ? AND app_revision > ?
				AND (deleted_at IS NULL OR created_app_revision <= ?) ORDER BY app_revision LIMIT ?`,
				q.Topic.Token, from, q.After, q.Limit+1)
			chats, err := all(rows, err, scanChat)
			for _, c := range chats {
				page.Events = append(page.Events, instachat.ChatEvent(c, q.After))
			}
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT revision FROM chats WHERE app_token = ? AND number = ? AND deleted_at IS NULL AND `+liveApp,
			q.Topic.Token, q.Topic.Chat, q.Topic.Token).Scan(&page.Revision)
		if err != nil {
			return formatError(err, "chat")
		}
		if err := q.CheckRevision(page.Revision); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+messageCols+` FROM messages
			WHERE app_token = ? AND chat_number = ? AND revision > ? AND (deleted_at IS NULL OR created_revision <= ?)
			ORDER BY revision LIMIT ?`, q.Topic.Token, q.Topic.Chat, from, q.After, q.Limit+1)
		msgs, err := all(rows, err, scanMessage)
		for _, m := range msgs {
			page.Events = append(page.Events, instachat.MessageEvent(m, q.After))
		}
		return err
	})
	if err != nil {
		return nil, formatError(err, "")
	}
	if len(page.Events) > q.Limit {
		page.Events, page.More = page.Events[:q.Limit], true
	}
	return page, nil
}

// readTx runs fn in a read-only REPEATABLE READ transaction: every read of
// fn sees the snapshot of its first.
func (db *DB) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.tx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}, fn)
}
