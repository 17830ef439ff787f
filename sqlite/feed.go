package sqlite

import (
	"context"

	"github.com/instachat/instachat"
)

// ListChanges implements instachat.Feeds. The feed's current revision and
// its page are read in one read transaction, so in one WAL snapshot: the
// page holds no change the revision does not count. The page is a range of
// the revision index, (app_token, chat_number, revision) for a chat's feed
// and (app_token, app_revision) for an application's, so a feed is read
// from any revision, however old, in pages of Limit rows.
func (db *DB) ListChanges(ctx context.Context, q instachat.ChangesQuery) (*instachat.ChangesPage, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	tx, err := db.read.BeginTx(ctx, nil)
	if err != nil {
		return nil, formatError(err, "")
	}
	defer tx.Rollback()

	page := &instachat.ChangesPage{}
	from := max(q.After, q.Cursor)
	if q.Topic.Chat == 0 {
		err = tx.StmtContext(ctx, db.feedApp).QueryRowContext(ctx, q.Topic.Token).Scan(&page.Revision)
		if err != nil {
			return nil, formatError(err, "application")
		}
		if err := q.CheckRevision(page.Revision); err != nil {
			return nil, err
		}
		rows, err := tx.StmtContext(ctx, db.chatChanges).QueryContext(ctx, q.Topic.Token, from, q.After, q.Limit+1)
		chats, err := collect(rows, err, scanChat)
		if err != nil {
			return nil, err
		}
		for _, c := range chats {
			page.Events = append(page.Events, instachat.ChatEvent(c, q.After))
		}
	} else {
		err = tx.StmtContext(ctx, db.feedChat).QueryRowContext(ctx, q.Topic.Token, q.Topic.Chat).Scan(&page.Revision)
		if err != nil {
			return nil, formatError(err, "chat")
		}
		if err := q.CheckRevision(page.Revision); err != nil {
			return nil, err
		}
		rows, err := tx.StmtContext(ctx, db.messageChanges).QueryContext(ctx, q.Topic.Token, q.Topic.Chat, from, q.After, q.Limit+1)
		msgs, err := collect(rows, err, scanMessage)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			page.Events = append(page.Events, instachat.MessageEvent(m, q.After))
		}
	}
	if len(page.Events) > q.Limit {
		page.Events, page.More = page.Events[:q.Limit], true
	}
	return page, formatError(tx.Commit(), "")
}
