package inmem

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
)

func TestSequencerConformance(t *testing.T) {
	conformance.TestSequencer(t, func(*testing.T) (a, b instachat.Sequencer) {
		s := NewSequencer()
		return s, s
	})
}

func TestQueueConformance(t *testing.T) {
	conformance.TestQueue(t, func(t *testing.T) instachat.Queue {
		noLeak(t)
		q := NewQueue(QueueOptions{})
		t.Cleanup(func() { q.Close() })
		return q
	})
}

type watermarks []instachat.Watermark

func (ws watermarks) Watermarks(_ context.Context, fn func(instachat.Watermark) error) error {
	for _, w := range ws {
		if err := fn(w); err != nil {
			return err
		}
	}
	return nil
}

func TestLoadSequencerContinuesAboveTheStore(t *testing.T) {
	ctx := t.Context()
	a, b, c, d := instachat.NewToken(), instachat.NewToken(), instachat.NewToken(), instachat.NewToken()
	s, err := LoadSequencer(ctx, watermarks{
		{Scope: instachat.MessagesOf(a, 2), Highest: 7}, // before its application: order is free
		{Scope: instachat.ChatsOf(a), Highest: 5},
		{Scope: instachat.MessagesOf(a, 7), Highest: 3}, // messages stored before their chat row
		{Scope: instachat.MessagesOf(a, 2), Highest: 4}, // a lower mark never lowers
		{Scope: instachat.ChatsOf(b)},
		{Scope: instachat.MessagesOf(c, 3), Highest: 1}, // no application mark: the chat says it all
		{Scope: instachat.ChatsOf(d), Highest: 2},       // chats with no message yet
	}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		token      string
		chat, next int64 // chat 0: next chat number
	}{
		{a, 0, 8}, {a, 2, 8}, {a, 7, 4}, {a, 1, 1}, {a, 5, 1},
		{b, 0, 1},
		{c, 3, 2}, {c, 1, 1}, {c, 0, 4},
		{d, 2, 1}, {d, 0, 3},
	} {
		var got int64
		if w.chat == 0 {
			got, err = s.NextChatNumber(ctx, w.token)
		} else {
			got, err = s.NextMessageNumber(ctx, w.token, w.chat)
		}
		if err != nil || got != w.next {
			t.Errorf("token %s chat %d: next %d, %v; want %d", w.token[:4], w.chat, got, err, w.next)
		}
	}

	broken := errors.New("store down")
	_, err = LoadSequencer(ctx, watermarks{{Scope: instachat.MessagesOf(a, -1)}}, nil, 0)
	if err == nil {
		t.Error("a negative chat number loaded")
	}
	if _, err := LoadSequencer(ctx, failingWatermarks{broken}, nil, 0); !errors.Is(err, broken) {
		t.Errorf("LoadSequencer from a failing store: %v, want %v", err, broken)
	}
}

type failingWatermarks struct{ err error }

func (f failingWatermarks) Watermarks(context.Context, func(instachat.Watermark) error) error {
	return f.err
}

// message returns a create of message n in chat 1 of a fresh application.
func message(n int64) instachat.Create {
	return instachat.Create{Message: &instachat.Message{Token: instachat.NewToken(), Chat: 1, Number: n, Body: "hi"}}
}

// consume runs q.Consume with handle until stop is called or the test
// ends; stop returns what Consume returned.
func consume(t *testing.T, q *Queue, handle func(context.Context, []instachat.Create) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Consume(ctx, handle) }()
	stop = sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() { stop() })
	return stop
}

func ack(context.Context, []instachat.Create) error { return nil }

// publish runs Publish in a goroutine and returns its answer. It gives up
// in time, so that a queue which never answers fails the test, not hangs it.
func publish(t *testing.T, q *Queue, creates ...instachat.Create) <-chan error {
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		errc <- instachat.Publish(ctx, q, creates...)
	}()
	return errc
}

// noLeak fails the test if it ends with more goroutines than it began with.
func noLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestPublishReturnsOnceHandled(t *testing.T) {
	noLeak(t)
	q := NewQueue(QueueOptions{})
	entered, release := make(chan struct{}), make(chan struct{})
	var handled bool
	consume(t, q, func(context.Context, []instachat.Create) error {
		close(entered)
		<-release
		handled = true
		return nil
	})
	errc := publish(t, q, message(1))
	<-entered
	select {
	case err := <-errc:
		t.Fatalf("Publish returned %v while the handler was still running", err)
	default:
	}
	close(release)
	if err := <-errc; err != nil || !handled {
		t.Fatalf("Publish = %v, handler finished: %v", err, handled)
	}
}

func TestDeadLetterReasonReachesThePublisher(t *testing.T) {
	noLeak(t)
	q := NewQueue(QueueOptions{})
	reason := instachat.Errorf(instachat.EINVALID, "body refused")
	poison := message(2)
	handle := func(ctx context.Context, batch []instachat.Create) error {
		for _, c := range batch {
			if c == poison {
				if err := q.DeadLetter(ctx, c, reason); err != nil {
					t.Error(err)
				}
			}
		}
		return nil
	}
	// Handed in one batch, the good create must not share the bad one's
	// fate, though the create published with the bad one does.
	good, bad := publish(t, q, message(1)), publish(t, q, poison, message(3))
	waitFor(t, "every create pending", func() bool { return len(q.pending) == 3 })
	consume(t, q, handle)
	if err := <-bad; err != reason {
		t.Errorf("Publish of a dead-lettered create = %v, want %v", err, reason)
	}
	if err := <-good; err != nil {
		t.Errorf("Publish of a good create = %v", err)
	}
	// Outside a handle call there is no one left to tell.
	if err := q.DeadLetter(t.Context(), poison, reason); err != nil {
		t.Error(err)
	}
}

func TestClose(t *testing.T) {
	noLeak(t)
	q := NewQueue(QueueOptions{Backlog: 2})
	waiting := publish(t, q, message(1))
	waitFor(t, "the create to be pending", func() bool { return len(q.pending) == 1 })
	blocked := publish(t, q, message(2), message(3))
	waitFor(t, "the backlog to fill", func() bool { return len(q.pending) == 2 })
	q.Close()
	q.Close() // twice is harmless
	if err := <-blocked; err != errClosed {
		t.Errorf("Publish blocked on a full backlog at Close = %v, want %v", err, errClosed)
	}

	start := time.Now()
	err := instachat.Publish(context.Background(), q, message(4))
	if err != errClosed || time.Since(start) > time.Second {
		t.Errorf("Publish after Close = %v after %v, want %v at once", err, time.Since(start), errClosed)
	}
	consume(t, q, ack)
	if err := <-waiting; err != nil {
		t.Errorf("a create pending at Close was not handled: %v", err)
	}
}

func TestStoppedConsumerAnswersEveryPublisher(t *testing.T) {
	noLeak(t)
	q := NewQueue(QueueOptions{MaxBatch: 1})
	var calls atomic.Int64
	stop := consume(t, q, func(context.Context, []instachat.Create) error {
		calls.Add(1)
		return errors.New("store down")
	})
	answers := []<-chan error{publish(t, q, message(1)), publish(t, q, message(2))}
	waitFor(t, "one create retried, one pending", func() bool { return calls.Load() > 1 && len(q.pending) == 1 })
	if err := stop(); err != nil {
		t.Errorf("Consume = %v", err)
	}
	for _, errc := range answers {
		if err := <-errc; err != errStopped {
			t.Errorf("Publish after the consumer stopped = %v, want %v", err, errStopped)
		}
	}
}

func TestBacklogIsBounded(t *testing.T) {
	noLeak(t)
	q := NewQueue(QueueOptions{Backlog: 2})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err := instachat.Publish(ctx, q, message(1), message(2), message(3))
	if err != errTimeout || len(q.pending) != 2 {
		t.Fatalf("Publish over a full backlog = %v with %d pending, want %v with 2", err, len(q.pending), errTimeout)
	}

	// Room made by a consumer lets a blocked publisher through.
	blocked := publish(t, q, message(4))
	consume(t, q, ack)
	if err := <-blocked; err != nil {
		t.Fatalf("Publish once the backlog drained = %v", err)
	}
}

func TestBatchesHoldAtMostMaxBatch(t *testing.T) {
	noLeak(t)
	q := NewQueue(QueueOptions{MaxBatch: 3})
	var answers []<-chan error
	for n := range int64(7) {
		answers = append(answers, publish(t, q, message(n+1)))
	}
	waitFor(t, "every create pending", func() bool { return len(q.pending) == 7 })
	var sizes []int
	consume(t, q, func(_ context.Context, batch []instachat.Create) error {
		sizes = append(sizes, len(batch))
		return nil
	})
	for _, errc := range answers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if len(sizes) != 3 || sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 1 {
		t.Errorf("batch sizes %v, want [3 3 1]", sizes)
	}
}

func TestPendingOutlivesOneOfTwoConsumers(t *testing.T) {
	noLeak(t)
	q := NewQueue(QueueOptions{})
	// Each consumer holds one batch until told, so that a third create
	// stays pending while the first consumer stops.
	hold := func(entered chan<- struct{}, release <-chan struct{}) func(context.Context, []instachat.Create) error {
		return func(ctx context.Context, _ []instachat.Create) error {
			entered <- struct{}{}
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	entered, release := make(chan struct{}, 3), make(chan struct{})
	stopFirst := consume(t, q, hold(entered, release))
	first := publish(t, q, message(1))
	<-entered
	consume(t, q, hold(entered, release))
	second := publish(t, q, message(2))
	<-entered
	third := publish(t, q, message(3))
	waitFor(t, "the third create to be pending", func() bool { return len(q.pending) == 1 })

	stopFirst()
	if err := <-first; err != errStopped {
		t.Errorf("Publish held by the stopped consumer = %v, want %v", err, errStopped)
	}
	close(release)
	for _, errc := range []<-chan error{second, third} {
		if err := <-errc; err != nil {
			t.Errorf("Publish = %v; the consumer left should have taken it", err)
		}
	}
}

// A restart never gives a deleted chat or application numbers again: the
// store's watermarks say which are deleted.
func TestLoadSequencerKeepsDeletionsDeleted(t *testing.T) {
	ctx := t.Context()
	a, b := instachat.NewToken(), instachat.NewToken()
	s, err := LoadSequencer(ctx, watermarks{
		{Scope: instachat.ChatsOf(a), Highest: 3},
		{Scope: instachat.MessagesOf(a, 2), Highest: 9, Deleted: true},
		{Scope: instachat.MessagesOf(a, 3), Highest: 4},
		{Scope: instachat.ChatsOf(b), Highest: 1, Deleted: true},
		{Scope: instachat.MessagesOf(b, 1), Highest: 2},
	}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.NextMessageNumber(ctx, a, 2); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("NextMessageNumber of a deleted chat after a restart: %v, want ENOTFOUND", err)
	}
	if n, err := s.NextMessageNumber(ctx, a, 3); err != nil || n != 5 {
		t.Errorf("NextMessageNumber beside it = %d, %v; want 5", n, err)
	}
	if n, err := s.NextChatNumber(ctx, a); err != nil || n != 4 {
		t.Errorf("NextChatNumber = %d, %v; want 4, above the deleted chat", n, err)
	}
	if _, err := s.NextChatNumber(ctx, b); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("NextChatNumber of a deleted application after a restart: %v, want ENOTFOUND", err)
	}
	if _, err := s.NextMessageNumber(ctx, b, 1); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("NextMessageNumber in a deleted application after a restart: %v, want ENOTFOUND", err)
	}
}
