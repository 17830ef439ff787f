package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/instachat/instachat"
)

// Defaults of SearchEraser.
const (
	// DefaultErasePoll is how often the eraser asks the store for the
	// erasures still owed.
	DefaultErasePoll = 5 * time.Second
	// DefaultEraseGrace is how old a deletion must be before the eraser
	// takes it: the API erases right after the deletion's commit, and a
	// deletion younger than this is most likely still in its hands.
	DefaultEraseGrace = 10 * time.Second
	// eraseBatch is how many tombstones one call of the engine carries.
	eraseBatch = 500
)

// SearchEraser is the chore that makes the erasure of deleted messages
// from a search engine apart from the store durable. The store records,
// with each message deletion, the erasure owed (instachat.SearchErasures);
// the API sends the tombstone right after the commit and clears it, and
// whatever it did not clear — Elasticsearch refused or was unreachable,
// the process died in between — the eraser sends again, oldest first,
// every Poll, until the engine takes it. Sending a tombstone twice changes
// nothing (it is versioned by the deletion's time). Zero fields mean the
// defaults.
type SearchEraser struct {
	Store   instachat.SearchErasures
	Indexer instachat.Indexer
	Poll    time.Duration
	Grace   time.Duration
	Logger  *slog.Logger
	// Erased, when set, is told how many erasures each batch completed.
	Erased func(n int)
}

// Run erases until ctx ends. A failing batch is logged and tried again at
// the next poll.
func (e *SearchEraser) Run(ctx context.Context) error {
	poll, grace := e.Poll, e.Grace
	if poll <= 0 {
		poll = DefaultErasePoll
	}
	if grace <= 0 {
		grace = DefaultEraseGrace
	}
	logger := e.Logger
	if logger == nil {
		logger = slog.Default()
	}
	for {
		n, err := e.erase(ctx, time.Now().Add(-grace))
		wait := poll
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			logger.WarnContext(ctx, "erasing deleted messages from the search index; trying again later", "err", err)
		case n == eraseBatch:
			wait = 0 // more are owed
		}
		if n > 0 {
			logger.InfoContext(ctx, "erased deleted messages from the search index after the API could not", "messages", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// erase sends one batch of the erasures owed for deletions before before,
// and reports how many it completed.
func (e *SearchEraser) erase(ctx context.Context, before time.Time) (int, error) {
	msgs, err := e.Store.PendingSearchErasures(ctx, before, eraseBatch)
	if err != nil || len(msgs) == 0 {
		return 0, err
	}
	if err := e.Indexer.DeleteMessages(ctx, msgs); err != nil {
		return 0, err
	}
	if err := e.Store.SearchErased(ctx, msgs); err != nil {
		return 0, err
	}
	if e.Erased != nil {
		e.Erased(len(msgs))
	}
	return len(msgs), nil
}
