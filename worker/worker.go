// Package worker persists what dispatchers queued: it consumes batches from
// the Queue and applies each batch to the Store in one transaction (which
// also maintains chats_count and messages_count). Index is the handler of a
// second consumer that feeds a separate search engine from the same queue,
// so the engine being down holds up search, never the store. Beside them
// run the chores: Reindex rebuilds such an engine's index from the store
// (`instachat reindex`), and PruneReceipts deletes expired idempotency
// receipts where the store keeps them.
//
// Delivery is at-least-once and the effect exactly-once: a redelivered batch
// is skipped by the store's unique keys, and re-indexing is an upsert.
// Transient failures are returned to the Queue, which delivers the same batch
// again with backoff. A create the store refuses for good (EINVALID) is
// isolated by halving the batch and set aside with Queue.DeadLetter, so one
// bad create neither blocks the others nor vanishes.
package worker

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/instachat/instachat"
)

// Worker applies queued creates.
type Worker struct {
	Queue  instachat.Queue
	Store  instachat.Store
	Logger *slog.Logger

	// Observe, when set, is told the size of every batch applied and how
	// long the store took (rows and counts).
	Observe func(size int, took time.Duration)
	// Dropped, when set, is told how many creates of a batch the store
	// dropped because what they belong to was deleted (see
	// instachat.Create.Dropped): not failures, so not dead-lettered.
	Dropped func(n int)
}

// Run consumes until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	return w.Queue.Consume(ctx, w.Handle)
}

// Handle applies one batch; it is the Queue's handler.
func (w *Worker) Handle(ctx context.Context, batch []instachat.Create) error {
	start := time.Now()
	if err := w.apply(ctx, batch); err != nil {
		return err
	}
	if w.Observe != nil {
		w.Observe(len(batch), time.Since(start))
	}
	if w.Dropped != nil {
		n := 0
		for _, c := range batch {
			if c.Dropped() {
				n++
			}
		}
		if n > 0 {
			w.Dropped(n)
		}
	}
	return nil
}

// Index returns the handler of a consumer that indexes the messages of each
// batch; the queue hands a batch again, with backoff, until ix took it. A
// message the store refused for good (dead-lettered, which only a
// misconfigured body limit allows) is indexed all the same.
func Index(ix instachat.Indexer) func(context.Context, []instachat.Create) error {
	return IndexUndeleted(ix, nil)
}

// Deletions tells which chats are deleted, by the store that keeps them.
type Deletions interface {
	// DeletedChats returns those of the chats (MessagesOf scopes) whose
	// chat or application is deleted. A chat not stored yet is not.
	DeletedChats(ctx context.Context, chats []instachat.Scope) (map[instachat.Scope]bool, error)
}

// IndexUndeleted is Index, except that the messages of chats deleted, as
// deleted tells when the batch comes (nil: none), are dropped, not
// indexed: a create of a chat numbered before the chat's deletion may reach
// the queue after the reclaim began waiting for this consumer (see
// Reclaimer.Indexed), and indexed after the reclaim's erasure it would
// stay. Read once the create is in the queue, the deletion is seen.
func IndexUndeleted(ix instachat.Indexer, deleted Deletions) func(context.Context, []instachat.Create) error {
	return func(ctx context.Context, batch []instachat.Create) error {
		msgs := make([]*instachat.Message, 0, len(batch))
		for _, c := range batch {
			if c.Message != nil {
				msgs = append(msgs, c.Message)
			}
		}
		if len(msgs) > 0 && deleted != nil {
			seen := map[instachat.Scope]bool{}
			var chats []instachat.Scope
			for _, m := range msgs {
				if s := instachat.MessagesOf(m.Token, m.Chat); !seen[s] {
					seen[s] = true
					chats = append(chats, s)
				}
			}
			gone, err := deleted.DeletedChats(ctx, chats)
			if err != nil {
				return err
			}
			if len(gone) > 0 {
				msgs = slices.DeleteFunc(msgs, func(m *instachat.Message) bool { return gone[instachat.MessagesOf(m.Token, m.Chat)] })
			}
		}
		if len(msgs) == 0 {
			return nil
		}
		return ix.IndexMessages(ctx, msgs)
	}
}

// apply stores batch, halving it around creates the store refuses for good.
func (w *Worker) apply(ctx context.Context, batch []instachat.Create) error {
	err := w.Store.ApplyCreates(ctx, batch)
	if err == nil || instachat.ErrorCode(err) != instachat.EINVALID {
		return err
	}
	if len(batch) == 1 {
		w.logger().Error("create set aside: the store refuses it", "token", instachat.RedactToken(batch[0].Token()), "err", err)
		return w.Queue.DeadLetter(ctx, batch[0], err)
	}
	mid := len(batch) / 2
	if err := w.apply(ctx, batch[:mid]); err != nil {
		return err
	}
	return w.apply(ctx, batch[mid:])
}

func (w *Worker) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.Default()
	}
	return w.Logger
}
