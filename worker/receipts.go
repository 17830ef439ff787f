package worker

import (
	"context"
	"log/slog"
	"time"

	"github.com/instachat/instachat"
)

// receiptPruneInterval is how often PruneReceipts deletes expired
// idempotency receipts: the table then holds at most the retention plus an
// hour of keyed creates.
const receiptPruneInterval = time.Hour

// PruneReceipts is a chore run beside the worker where receipts live in the
// store: at start and then every receiptPruneInterval it deletes the
// receipts older than ttl's retention, so no operator has to. The in-memory
// sequencer sweeps its own copies. A failed prune is logged and tried again
// at the next tick; it only delays cleanup.
func PruneReceipts(store instachat.ReceiptStore, ttl time.Duration, logger *slog.Logger) func(context.Context) error {
	ttl = instachat.ReceiptRetention(ttl) // as the sequencers read it
	return func(ctx context.Context) error {
		t := time.NewTicker(receiptPruneInterval)
		defer t.Stop()
		for {
			n, err := store.PruneReceipts(ctx, time.Now().Add(-ttl))
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				logger.WarnContext(ctx, "pruning idempotency receipts", "err", err)
			case n > 0:
				logger.DebugContext(ctx, "pruned idempotency receipts", "deleted", n)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}
