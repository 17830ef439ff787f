package worker

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/sqlite"
)

// TestPruneReceiptsRunsAtStart shows the embedded chore deletes receipts
// past the retention as soon as it starts, keeps the fresh ones, and stops
// with its context.
func TestPruneReceiptsRunsAtStart(t *testing.T) {
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	token := instachat.NewToken()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := db.CreateApplication(ctx, &instachat.Application{Token: token, Name: "a", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	chat := func(n int64, at time.Time, key string) instachat.Create {
		return instachat.Create{Chat: &instachat.Chat{Token: token, Number: n, CreatedAt: at, UpdatedAt: at}, IdempotencyKey: key}
	}
	if err := db.ApplyCreates(ctx, []instachat.Create{chat(1, now.Add(-25*time.Hour), "old"), chat(2, now.Add(-time.Hour), "fresh")}); err != nil {
		t.Fatal(err)
	}
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- PruneReceipts(db, 24*time.Hour, slog.New(slog.DiscardHandler))(loopCtx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var keys []string
		if err := db.Receipts(ctx, func(_, key string, _ instachat.Receipt) error { keys = append(keys, key); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(keys) == 1 && keys[0] == "fresh" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receipts after the first prune: %v; want [fresh]", keys)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("prune loop ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("prune loop did not stop with its context")
	}
}
