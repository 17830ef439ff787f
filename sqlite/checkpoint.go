package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// checkpointEvery is how often the checkpointer copies the WAL's committed
// pages back into the store's file.
const checkpointEvery = 200 * time.Millisecond

// checkpointer copies the WAL's pages back into the store's file from a
// connection of its own, ahead of the writer. SQLite checkpoints once the
// WAL holds 1,000 pages, in the connection that commits: the single
// writer, inside the time a create waits for. A reclaim of a large chat
// writes pages fast (zeroed ones too, with secure_delete), and every few
// of its batches a create's commit paid for copying them (create p99 of
// 94–118 ms in the 10 s after deleting a 1,000,000-message chat,
// docs/BENCHMARKS.md). This PASSIVE checkpoint never waits for the writer
// or a reader; the writer's own checkpoint still runs at 1,000 pages, but
// finds most of them copied, and it is what lets the next write start the
// WAL over (a checkpoint beside a busy writer never catches up with it:
// with the writer's turned off, the WAL grew past a gigabyte in that
// reclaim).
type checkpointer struct {
	db     *sql.DB
	cancel context.CancelFunc
	done   chan struct{}
}

func startCheckpointer(db *sql.DB) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		tick := time.NewTicker(checkpointEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				// A failure (the file busy) is the next tick's to retry.
				c.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
			}
		}
	}()
	return c
}

func (c *checkpointer) close() error {
	c.cancel()
	<-c.done
	return c.db.Close()
}
