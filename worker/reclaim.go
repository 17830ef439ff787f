package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/instachat/instachat"
)

// Defaults of Reclaimer.
const (
	// DefaultReclaimBatch is how many rows one Store.Reclaim call erases:
	// a statement of a few tens of milliseconds, never near the ~100 ms
	// that would hold up the creates sharing the store.
	DefaultReclaimBatch = 1000
	// DefaultReclaimPause is the pause between two batches, so that the
	// writes of creates and edits take their turns on the store.
	DefaultReclaimPause = 5 * time.Millisecond
	// DefaultReclaimPoll is how often an idle reclaimer asks the store
	// whether a deletion left rows to erase.
	DefaultReclaimPoll = time.Second
)

// Reclaimer is the chore that erases, in bounded batches, what deleted
// chats and applications left (see instachat.Store.Reclaim). What remains is
// recorded in the store with each deletion, so a reclaimer that dies in the
// middle, with its process, is resumed by the next one to start; several
// running at once (production workers) share the work, each batch in its
// own transaction. Zero fields mean the defaults.
type Reclaimer struct {
	Store  instachat.Store
	Batch  int
	Pause  time.Duration
	Poll   time.Duration
	Logger *slog.Logger
	// Reclaimed, when set, is told the rows each batch erased.
	Reclaimed func(n int64)
}

// Run reclaims until ctx ends. A failing batch is logged and tried again at
// the next poll: it only delays the erasure of what no read shows.
func (r *Reclaimer) Run(ctx context.Context) error {
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultReclaimBatch
	}
	pause, poll := r.Pause, r.Poll
	if pause <= 0 {
		pause = DefaultReclaimPause
	}
	if poll <= 0 {
		poll = DefaultReclaimPoll
	}
	logger := r.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var total int64
	for {
		n, err := r.Store.Reclaim(ctx, batch)
		wait := pause
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			logger.WarnContext(ctx, "reclaiming the rows of deleted chats and applications", "err", err)
			wait = poll
		case n == 0:
			if total > 0 {
				logger.InfoContext(ctx, "reclaimed the rows of deleted chats and applications", "rows", total)
				total = 0
			}
			wait = poll
		default:
			total += n
			if r.Reclaimed != nil {
				r.Reclaimed(n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
