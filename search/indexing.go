package search

import (
	"context"
	"log/slog"
	"time"

	"github.com/instachat/instachat"
)

// Indexing is a Store that keeps a search engine living apart from the
// store (Elasticsearch) current with edits: once the inner store's
// UpdateMessage returned, the edited message goes to Indexer. Creates are
// not its business: a consumer group of their own reads them off the queue
// into the engine (worker.Index). A store that indexes in its own
// transactions (sqlite) needs no Indexing.
//
// It sits between the store and feed.Publisher, so an edit is stored,
// then indexed, then announced.
type Indexing struct {
	instachat.Store
	Indexer instachat.Indexer
	// Erasures, when set, is where the store records the search erasures
	// of message deletions (instachat.SearchErasures): DeleteMessage clears
	// the record once the engine took the tombstone.
	Erasures instachat.SearchErasures
	Logger   *slog.Logger // nil means slog.Default()
}

// DeleteMessage stores the deletion, then replaces the message's document
// by its tombstone (see instachat.Indexer.DeleteMessages). No read returns
// the message once the deletion is stored, search included, since search
// loads its hits from the store. Where Erasures is set, the store recorded
// the erasure in the deletion's transaction: once the engine took the
// tombstone, the record is cleared; if the engine failed, it is logged,
// not returned, and the record stays for the worker's
// worker.SearchEraser to send it again. Without Erasures a failure leaves
// the erased body in the index.
func (x *Indexing) DeleteMessage(ctx context.Context, token string, chat, number int64, at time.Time) (*instachat.Message, error) {
	m, err := x.Store.DeleteMessage(ctx, token, chat, number, at)
	if err != nil {
		return nil, err
	}
	err = x.Indexer.DeleteMessages(ctx, []*instachat.Message{m})
	if err == nil && x.Erasures != nil {
		if err := x.Erasures.SearchErased(ctx, []*instachat.Message{m}); err != nil {
			// The worker sends the tombstone again, which changes nothing.
			x.logger().WarnContext(ctx, "clearing the search erasure of a deleted message", "token", instachat.RedactToken(token), "chat", chat, "err", err)
		}
	}
	if err != nil {
		x.logger().WarnContext(ctx, "removing a deleted message from the search index", "token", instachat.RedactToken(token), "chat", chat,
			"retried_by_worker", x.Erasures != nil, "err", err)
	}
	return m, nil
}

func (x *Indexing) logger() *slog.Logger {
	if x.Logger == nil {
		return slog.Default()
	}
	return x.Logger
}

// UpdateMessage stores the edit, then indexes it. The edit is stored, which
// is what the caller asked for; a failed index update only leaves search
// stale until the indexing consumer or a reindex catches up, so it is
// logged, not returned.
func (x *Indexing) UpdateMessage(ctx context.Context, token string, chat, number int64, body string, at time.Time) (*instachat.Message, error) {
	m, err := x.Store.UpdateMessage(ctx, token, chat, number, body, at)
	if err != nil {
		return nil, err
	}
	if err := x.Indexer.IndexMessages(ctx, []*instachat.Message{m}); err != nil {
		logger := x.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.WarnContext(ctx, "indexing an edited message", "token", instachat.RedactToken(token), "chat", chat, "err", err)
	}
	return m, nil
}
