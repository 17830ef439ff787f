package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/inmem"
	"github.com/instachat/instachat/search"
	"github.com/instachat/instachat/sqlite"
	"github.com/instachat/instachat/worker"
)

// DatabasePath is where the embedded default keeps its rows.
func DatabasePath(dataDir string) string { return filepath.Join(dataDir, "instachat.db") }

// OpenStore opens (and migrates) the embedded store of cfg.
func OpenStore(cfg Config) (*sqlite.DB, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return sqlite.Open(DatabasePath(cfg.DataDir), sqlite.Options{Synchronous: strings.ToUpper(cfg.Sync)})
}

// openEmbedded is the default topology: one process, one data directory.
// SQLite is the store and, through FTS5 in a file of its own that an
// indexer keeps up after each commit, the search index; numbering lives in
// memory, loaded from the store's watermarks; the queue is in-process and
// answers after the worker's group commit.
func openEmbedded(ctx context.Context, cfg Config, logger *slog.Logger) (*backends, error) {
	store, err := OpenStore(cfg)
	if err != nil {
		return nil, err
	}
	b := &backends{store: store, searcher: search.New(store, store), createdStatus: http.StatusCreated,
		checks: map[string]func(context.Context) error{"sqlite": store.Ping}}
	b.onClose(store.Close)
	seq, err := inmem.LoadSequencer(ctx, store, store, cfg.IdempotencyTTL)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("load sequencer: %w", err)
	}
	q := inmem.NewQueue(inmem.QueueOptions{})
	b.sequencer, b.queue = seq, q
	// One process serves every request: its limiters count in memory.
	b.newLimiter = func(l instachat.RateLimit) instachat.RateLimiter { return inmem.NewRateLimiter(l) }
	// The worker and the API share the process, so events fan out in it,
	// published after the worker's group commit.
	b.broker = inmem.NewBroker(inmem.BrokerOptions{})
	b.closeQueue = func() { q.Close() }
	b.chores = append(b.chores, worker.PruneReceipts(store, cfg.IdempotencyTTL, logger))
	backlog := func(erasures bool) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			queued, erasing, err := store.IndexBacklog(ctx)
			switch {
			case err != nil:
				return -1
			case erasures:
				return float64(erasing)
			}
			return float64(queued)
		}
	}
	b.gauges = append(b.gauges,
		gauge{"instachat_search_index_queued", "Messages stored or changed that the search index has not applied yet (search decides them " +
			"directly meanwhile; -1: unknown).", backlog(false)},
		gauge{"instachat_search_index_erasures", "Deleted chats and applications whose search index entries are not erased yet (-1: unknown).",
			backlog(true)})
	return b, nil
}
