package worker_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/worker"
)

// owedErasures is a store's list of search erasures owed.
type owedErasures struct {
	mu      sync.Mutex
	pending []*instachat.Message
	asked   []time.Time // the before of each PendingSearchErasures
}

func (o *owedErasures) PendingSearchErasures(_ context.Context, before time.Time, limit int) ([]*instachat.Message, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, before)
	var msgs []*instachat.Message
	for _, m := range o.pending {
		if len(msgs) < limit && !m.DeletedAt.After(before) {
			msgs = append(msgs, m)
		}
	}
	return msgs, nil
}

func (o *owedErasures) SearchErased(_ context.Context, msgs []*instachat.Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	gone := map[int64]bool{}
	for _, m := range msgs {
		gone[m.Number] = true
	}
	kept := o.pending[:0]
	for _, m := range o.pending {
		if !gone[m.Number] {
			kept = append(kept, m)
		}
	}
	o.pending = kept
	return nil
}

func (o *owedErasures) numbers() []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ns []int64
	for _, m := range o.pending {
		ns = append(ns, m.Number)
	}
	return ns
}

// tombstoning is an indexer whose DeleteMessages fails its first failures
// calls and counts the tombstones of the others.
type tombstoning struct {
	instachat.Indexer
	mu       sync.Mutex
	failures int
	calls    int
	sent     int
}

func (x *tombstoning) DeleteMessages(_ context.Context, msgs []*instachat.Message) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.calls++; x.calls <= x.failures {
		return errors.New("search engine down")
	}
	x.sent += len(msgs)
	return nil
}

// TestSearchEraserRetriesWhatIsOwed: the eraser sends the tombstones of
// the erasures owed for deletions older than Grace, in batches of 500 one
// after the other, again at the next poll when the engine failed, and
// clears them once the engine took them; a deletion younger than Grace,
// still the API's to erase, is left alone.
func TestSearchEraserRetriesWhatIsOwed(t *testing.T) {
	old, young := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	owed := &owedErasures{}
	for n := int64(1); n <= 1001; n++ {
		m := &instachat.Message{Token: "t", Chat: 1, Number: n, DeletedAt: &old}
		owed.pending = append(owed.pending, m)
	}
	owed.pending = append(owed.pending, &instachat.Message{Token: "t", Chat: 1, Number: 2000, DeletedAt: &young})
	ix := &tombstoning{failures: 2}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	e := &worker.SearchEraser{Store: owed, Indexer: ix, Poll: 10 * time.Millisecond, Grace: time.Minute, Logger: slog.New(slog.DiscardHandler)}
	go func() { ran <- e.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(owed.numbers()) > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if got := owed.numbers(); len(got) != 1 || got[0] != 2000 {
		t.Fatalf("owed after the eraser ran: %v, want only the young deletion 2000", got)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.sent != 1001 || ix.calls != 2+3 {
		t.Errorf("the engine took %d tombstones in %d calls, want 1001 in 2 refused calls then 3 batches", ix.sent, ix.calls)
	}
	owed.mu.Lock()
	defer owed.mu.Unlock()
	if got := time.Since(owed.asked[0]); got < time.Minute || got > 2*time.Minute {
		t.Errorf("the eraser asked for deletions older than %v, want the grace of a minute", got)
	}
}
