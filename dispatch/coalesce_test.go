package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/inmem"
)

// countingSequencer counts the numbering calls and the blocks taken.
type countingSequencer struct {
	instachat.Sequencer
	calls  atomic.Int64
	blocks chan int // the size of each NextMessageNumbers call
	fail   atomic.Pointer[error]
}

func (s *countingSequencer) NextMessageNumber(ctx context.Context, token string, chat int64) (int64, error) {
	s.calls.Add(1)
	if err := s.fail.Load(); err != nil {
		return 0, *err
	}
	return s.Sequencer.NextMessageNumber(ctx, token, chat)
}

func (s *countingSequencer) NextMessageNumbers(ctx context.Context, token string, chat int64, n int) (int64, error) {
	s.calls.Add(1)
	s.blocks <- n
	if err := s.fail.Load(); err != nil {
		return 0, *err
	}
	return s.Sequencer.NextMessageNumbers(ctx, token, chat, n)
}

// gatedQueue records what is enqueued, and holds the first Enqueue until
// open is closed: the stripe stays taken meanwhile, as during a slow
// round trip.
type gatedQueue struct {
	recordingQueue
	entered chan struct{} // closed when the first Enqueue began
	open    chan struct{}
	first   sync.Once
	calls   atomic.Int64
}

func (q *gatedQueue) Enqueue(ctx context.Context, cs ...instachat.Create) (func(context.Context) error, error) {
	q.calls.Add(1)
	q.first.Do(func() {
		close(q.entered)
		<-q.open
	})
	return q.recordingQueue.Enqueue(ctx, cs...)
}

// waiters returns how many creates wait in the chat's next group.
func (d *Dispatcher) waiters(scope instachat.Scope) int {
	st := &d.stripes[stripe(scope.Token, scope.Chat)]
	st.waitMu.Lock()
	defer st.waitMu.Unlock()
	if g := st.waiting[scope]; g != nil {
		return len(g.creates)
	}
	return 0
}

func newCoalesceTest(t *testing.T) (*Dispatcher, *countingSequencer, *gatedQueue, string) {
	t.Helper()
	inner := inmem.NewSequencer()
	token := instachat.NewToken()
	if err := inner.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if _, err := inner.NextChatNumber(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	seq := &countingSequencer{Sequencer: inner, blocks: make(chan int, 100)}
	q := &gatedQueue{entered: make(chan struct{}), open: make(chan struct{})}
	return New(seq, q), seq, q, token
}

// waitFor polls until cond holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// TestWaitingCreatesShareOneRoundTrip checks the coalescing: while one
// create of a chat holds its stripe, the creates that arrive for the chat
// wait as one group, which then takes its numbers in one block and
// enqueues them in one call, in the order they came, numbered on from the
// first.
func TestWaitingCreatesShareOneRoundTrip(t *testing.T) {
	d, seq, q, token := newCoalesceTest(t)
	const waiting = 20
	results := make(chan *instachat.Message, waiting+1)
	create := func(body string) {
		m, _, err := d.CreateMessage(context.Background(), token, 1, body, "")
		if err != nil {
			t.Error(err)
		}
		results <- m
	}
	go create("first")
	<-q.entered // the first holds the stripe, inside Enqueue
	for i := range waiting {
		go create(fmt.Sprint("waiting ", i))
		waitFor(t, fmt.Sprintf("create %d joined the group", i+1), func() bool { return d.waiters(instachat.MessagesOf(token, 1)) == i+1 })
	}
	close(q.open)
	got := map[int64]string{}
	for range waiting + 1 {
		m := <-results
		if m == nil {
			t.FailNow()
		}
		got[m.Number] = m.Body
	}
	if n := seq.calls.Load(); n != 2 {
		t.Errorf("%d numbering calls for %d creates, want 2: the first, then one block", n, waiting+1)
	}
	if size := <-seq.blocks; size != waiting {
		t.Errorf("a block of %d numbers, want %d", size, waiting)
	}
	if n := q.calls.Load(); n != 2 {
		t.Errorf("%d Enqueue calls, want 2", n)
	}
	if got[1] != "first" {
		t.Errorf("number 1 went to %q, want the first create", got[1])
	}
	for i := range waiting {
		if body := got[int64(i+2)]; body != fmt.Sprint("waiting ", i) {
			t.Errorf("number %d went to %q, want the create that joined %d-th", i+2, body, i+1)
		}
	}
	// The queue holds them in number order: a chat's creates stay in order.
	for i, c := range q.creates {
		if c.Message.Number != int64(i+1) {
			t.Fatalf("queue position %d holds number %d", i, c.Message.Number)
		}
	}
}

// TestGroupSharesItsFailure checks that a group's numbering failure
// answers each of its creates, and that a follower whose request ends
// stops waiting without failing the others.
func TestGroupSharesItsFailure(t *testing.T) {
	d, seq, q, token := newCoalesceTest(t)
	errs := make(chan error, 10)
	create := func(ctx context.Context) {
		_, _, err := d.CreateMessage(ctx, token, 1, "hello", "")
		errs <- err
	}
	go create(context.Background())
	<-q.entered
	gone, leave := context.WithCancel(context.Background())
	joined := func(n int) {
		waitFor(t, fmt.Sprint(n, " creates joined the group"), func() bool { return d.waiters(instachat.MessagesOf(token, 1)) == n })
	}
	go create(context.Background()) // leads the next group
	joined(1)
	go create(gone) // follows, then leaves
	joined(2)
	go create(context.Background())
	joined(3)
	leave()
	if err := <-errs; instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
		t.Errorf("the create whose request ended: %v, want EUNAVAILABLE", err)
	}
	var broken error = instachat.Errorf(instachat.EUNAVAILABLE, "numbering down")
	seq.fail.Store(&broken)
	close(q.open)
	// The first create succeeds; the two members left of the group fail.
	var ok, failed int
	for range 3 {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, broken):
			failed++
		default:
			t.Errorf("unexpected error %v", err)
		}
	}
	if ok != 1 || failed != 2 {
		t.Errorf("%d creates succeeded and %d failed with the group, want 1 and 2", ok, failed)
	}
}
