package worker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// slowReclaims is a store whose every reclaimed row costs perRow of real
// time, holding the store as SQLite's writer would; it records each call.
type slowReclaims struct {
	instachat.Store
	perRow time.Duration
	mu     sync.Mutex
	calls  []reclaimCall
}

type reclaimCall struct {
	limit      int
	start, end time.Time
}

func (s *slowReclaims) Reclaim(_ context.Context, limit int, _ func(context.Context, instachat.Scope) error) (int64, error) {
	start := time.Now()
	time.Sleep(time.Duration(limit) * s.perRow)
	s.mu.Lock()
	s.calls = append(s.calls, reclaimCall{limit, start, time.Now()})
	s.mu.Unlock()
	return int64(limit), nil
}

func (s *slowReclaims) recorded() []reclaimCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]reclaimCall(nil), s.calls...)
}

// A batch that holds the store far longer than the target is cut down, and
// the reclaimer pauses in proportion to what it took, so creates sharing
// the store get their turns however slow erasing turns out. Before, every
// call erased 1,000 rows and the pause was 5 ms whatever a batch took.
func TestReclaimerKeepsItsShareOfTheStore(t *testing.T) {
	store := &slowReclaims{perRow: time.Millisecond} // 1,000 rows: a second
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	r := &Reclaimer{Store: store, Target: 20 * time.Millisecond}
	go func() { done <- r.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for len(store.recorded()) < 8 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	calls := store.recorded()
	if len(calls) < 8 {
		t.Fatalf("%d reclaim calls in 30 s, want 8", len(calls))
	}
	if calls[0].limit != reclaimFirstBatch {
		t.Errorf("first batch %d rows, want %d", calls[0].limit, reclaimFirstBatch)
	}
	// A row costs at least 1 ms, so a batch that met the 20 ms target has
	// at most 20 rows; a loaded machine only makes batches smaller.
	for i, c := range calls {
		if c.limit > 32 {
			t.Errorf("batch %d: %d rows, want at most 32 (a first batch of 16, doubled once) once a row costs 1 ms", i, c.limit)
		}
	}
	for i := 1; i < len(calls); i++ {
		took := calls[i-1].end.Sub(calls[i-1].start)
		gap := calls[i].start.Sub(calls[i-1].end)
		if want := 4 * took; gap < want-time.Millisecond {
			t.Errorf("pause after batch %d: %v, want at least 4 × %v", i-1, gap, took)
		}
	}
}

func TestNextReclaimBatch(t *testing.T) {
	const ms = time.Millisecond
	for _, c := range []struct {
		size, most int
		took       time.Duration
		want       int
	}{
		{1000, 1000, 1000 * ms, 20}, // fifty times the target: a fiftieth
		{20, 1000, 20 * ms, 20},     // on target: kept
		{20, 1000, 5 * ms, 40},      // well under: doubled
		{800, 1000, 1 * ms, 1000},   // doubled, up to the most
		{1, 1000, 500 * ms, 1},      // never below one row
	} {
		if got := nextReclaimBatch(c.size, c.most, c.took, 20*ms); got != c.want {
			t.Errorf("nextReclaimBatch(%d, %d, %v) = %d, want %d", c.size, c.most, c.took, got, c.want)
		}
	}
}
