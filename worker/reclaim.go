package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/instachat/instachat"
)

// Defaults of Reclaimer.
const (
	// DefaultReclaimBatch is the most rows one Store.Reclaim call erases.
	DefaultReclaimBatch = 1000
	// DefaultReclaimTarget is how long one batch should hold the store: the
	// batch shrinks when a call takes longer and grows back when it takes
	// less than half. What a row costs to erase is not constant (SQLite's
	// FTS5 deletes slow down as a segment collects tombstones: a batch of
	// 1,000 rows was seen taking seconds, stalling every create behind it).
	DefaultReclaimTarget = 20 * time.Millisecond
	// DefaultReclaimPause is the shortest pause between two batches.
	DefaultReclaimPause = 5 * time.Millisecond
	// reclaimShare is the most of the store's time the reclaimer takes:
	// after a batch of d it pauses at least d*(1-share)/share, so creates
	// and edits have the store at least 80% of the time however slow a
	// batch turns out.
	reclaimShare = 0.2
	// reclaimFirstBatch is the size of the first batch of a run.
	reclaimFirstBatch = 16
	// DefaultReclaimPoll is how often an idle reclaimer asks the store
	// whether a deletion left rows to erase.
	DefaultReclaimPoll = time.Second
	// DefaultIndexedTimeout is how long the reclaim of one deletion waits
	// for the indexing consumer (Reclaimer.Indexed) before it gives up
	// until the next poll.
	DefaultIndexedTimeout = 30 * time.Second
)

// Reclaimer is the chore that erases, in bounded batches, what deleted
// chats and applications left (see instachat.Store.Reclaim). What remains is
// recorded in the store with each deletion, so a reclaimer that dies in the
// middle, with its process, is resumed by the next one to start; several
// running at once (production workers) share the work, each batch in its
// own transaction. Zero fields mean the defaults.
//
// A search engine apart from the store (Elasticsearch) holds documents of
// the deleted messages too: once a deletion's rows are erased, the
// reclaimer has Engine forget its scope, and the store keeps the deletion's
// record until Engine succeeded (see instachat.Store.Reclaim), so an engine
// that fails, or a process that dies, only delays that erasure to a later
// poll, in this process or another.
type Reclaimer struct {
	Store instachat.Store
	// Engine, when set, is the search engine whose documents of a
	// reclaimed chat or application are erased (instachat.SearchEngine's
	// ForgetScope). nil where the store's own search is the engine.
	Engine instachat.SearchEngine
	// Indexed, when set with Engine, returns once whoever feeds Engine
	// from the queue (worker.Index's consumer group) has indexed every
	// create queued before the call, and fails if ctx ends first. The
	// reclaim calls it before Engine forgets a scope: a create of the
	// deleted chat queued before its deletion, still unread by a lagging
	// indexing consumer, would otherwise be indexed after the erasure and
	// stay. It is bounded by IndexedTimeout; failing or timing out fails
	// the deletion's done, whose record stays for a later poll.
	Indexed        func(context.Context) error
	IndexedTimeout time.Duration // default DefaultIndexedTimeout
	Batch          int
	Target         time.Duration
	Pause          time.Duration
	Poll           time.Duration
	Logger         *slog.Logger
	// Reclaimed, when set, is told the rows each batch erased.
	Reclaimed func(n int64)
}

// Run reclaims until ctx ends. A failing batch is logged and tried again at
// the next poll: it only delays the erasure of what no read shows. So is a
// failing Engine, whose deletion stays recorded until it succeeds.
func (r *Reclaimer) Run(ctx context.Context) error {
	batch := r.Batch
	if batch <= 0 {
		batch = DefaultReclaimBatch
	}
	pause, poll, target := r.Pause, r.Poll, r.Target
	if pause <= 0 {
		pause = DefaultReclaimPause
	}
	if target <= 0 {
		target = DefaultReclaimTarget
	}
	if poll <= 0 {
		poll = DefaultReclaimPoll
	}
	logger := r.Logger
	if logger == nil {
		logger = slog.Default()
	}
	var done func(context.Context, instachat.Scope) error
	if r.Engine != nil {
		done = func(ctx context.Context, s instachat.Scope) error {
			err := r.indexed(ctx)
			if err == nil {
				err = r.Engine.ForgetScope(ctx, s)
			}
			switch {
			case err == nil:
				return nil
			case s.ChatNumbers():
				return fmt.Errorf("erasing the search documents of application %s: %w", instachat.RedactToken(s.Token), err)
			default:
				return fmt.Errorf("erasing the search documents of chat %d of %s: %w", s.Chat, instachat.RedactToken(s.Token), err)
			}
		}
	}
	var total int64
	// Start small and double while batches stay well under the target: a
	// first batch at the most could hold the store for seconds before the
	// reclaimer learns what a row costs.
	size := min(batch, reclaimFirstBatch)
	for {
		start := time.Now()
		n, err := r.Store.Reclaim(ctx, size, done)
		took := time.Since(start)
		wait := max(pause, time.Duration(float64(took)*(1-reclaimShare)/reclaimShare))
		if err == nil && n > 0 {
			size = nextReclaimBatch(size, batch, took, target)
		}
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

// indexed waits, at most IndexedTimeout, for Indexed.
func (r *Reclaimer) indexed(ctx context.Context) error {
	if r.Indexed == nil {
		return nil
	}
	timeout := r.IndexedTimeout
	if timeout <= 0 {
		timeout = DefaultIndexedTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := r.Indexed(ctx); err != nil {
		return fmt.Errorf("waiting for the indexing consumer to index what was queued before: %w", err)
	}
	return nil
}

// nextReclaimBatch sizes the next batch from how long the last one, of size
// rows, took: in proportion to target when it took longer, twice as large
// (up to most) when it took less than half; never below one row.
func nextReclaimBatch(size, most int, took, target time.Duration) int {
	switch {
	case took > target:
		size = int(float64(size) * float64(target) / float64(took))
	case took < target/2:
		size *= 2
	}
	return min(max(size, 1), most)
}
