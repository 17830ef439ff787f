package dispatch

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/inmem"
)

// recordingQueue keeps what is enqueued; fail, while set, refuses.
type recordingQueue struct {
	instachat.Queue
	mu      sync.Mutex
	creates []instachat.Create
	fail    error
}

func (q *recordingQueue) Enqueue(_ context.Context, cs ...instachat.Create) (func(context.Context) error, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return nil, q.fail
	}
	q.creates = append(q.creates, cs...)
	return func(context.Context) error { return nil }, nil
}

func newTest(t *testing.T) (*Dispatcher, *recordingQueue, string) {
	t.Helper()
	seq, q := inmem.NewSequencer(), &recordingQueue{}
	token := instachat.NewToken()
	if err := seq.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	d := New(seq, q)
	clock := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	d.Now = func() time.Time { clock = clock.Add(time.Second); return clock }
	if _, _, err := d.CreateChat(t.Context(), token, "room", ""); err != nil {
		t.Fatal(err)
	}
	return d, q, token
}

func TestRetryAnswersTheOriginal(t *testing.T) {
	d, q, token := newTest(t)
	ctx := t.Context()
	first, replayed, err := d.CreateMessage(ctx, token, 1, "hello", "key-1")
	if err != nil || replayed || first.Number != 1 {
		t.Fatalf("first = %+v, %v, %v", first, replayed, err)
	}
	again, replayed, err := d.CreateMessage(ctx, token, 1, "hello", "key-1")
	if err != nil || !replayed || *again != *first {
		t.Fatalf("retry = %+v, %v, %v; want %+v replayed", again, replayed, err, first)
	}
	// The retry re-published the original create, key and all, so it is
	// stored even if the first attempt's create was lost.
	q.mu.Lock()
	last := q.creates[len(q.creates)-1]
	q.mu.Unlock()
	if last.Message == nil || *last.Message != *first || last.IdempotencyKey != "key-1" {
		t.Fatalf("retry published %+v; want the original message with its key", last)
	}
	if m, _, err := d.CreateMessage(ctx, token, 1, "hello", ""); err != nil || m.Number != 2 {
		t.Fatalf("unkeyed create after a retry = %+v, %v; want number 2", m, err)
	}
	c, replayed, err := d.CreateChat(ctx, token, "room", "key-1")
	if err == nil || instachat.ErrorCode(err) != instachat.EINVALID || replayed {
		t.Fatalf("a message key reused for a chat = %+v, %v, %v; want %s", c, replayed, err, instachat.EINVALID)
	}
	if _, _, err := d.CreateMessage(ctx, token, 1, "other body", "key-1"); instachat.ErrorCode(err) != instachat.EINVALID {
		t.Fatalf("a key reused with another body: %v; want %s", err, instachat.EINVALID)
	}
	for _, bad := range []string{strings.Repeat("k", instachat.MaxIdempotencyKeyBytes+1), "tab\tkey", "é"} {
		if _, _, err := d.CreateMessage(ctx, token, 1, "hello", bad); instachat.ErrorCode(err) != instachat.EBADREQUEST {
			t.Fatalf("key %q: %v; want %s", bad, err, instachat.EBADREQUEST)
		}
	}
}

// TestRetryAfterAFailedPublish: the first attempt's number was issued but
// its create never reached the queue; the retry publishes it, so the
// number answered exists and no gap is left.
func TestRetryAfterAFailedPublish(t *testing.T) {
	d, q, token := newTest(t)
	ctx := t.Context()
	q.fail = instachat.Errorf(instachat.EUNAVAILABLE, "queue down")
	if _, _, err := d.CreateMessage(ctx, token, 1, "hello", "k"); instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
		t.Fatalf("create with the queue down: %v", err)
	}
	q.fail = nil
	m, replayed, err := d.CreateMessage(ctx, token, 1, "hello", "k")
	if err != nil || !replayed || m.Number != 1 {
		t.Fatalf("retry = %+v, %v, %v; want message 1, replayed", m, replayed, err)
	}
	if len(q.creates) != 2 || q.creates[1].Message.Number != 1 {
		t.Fatalf("queue holds %d creates; want the chat and message 1", len(q.creates))
	}
}

func TestConcurrentRetriesCreateOnce(t *testing.T) {
	d, q, token := newTest(t)
	var wg sync.WaitGroup
	numbers := make([]int64, 32)
	for i := range numbers {
		wg.Go(func() {
			m, _, err := d.CreateMessage(t.Context(), token, 1, "same", "race")
			if err != nil {
				t.Error(err)
				return
			}
			numbers[i] = m.Number
		})
	}
	wg.Wait()
	for _, n := range numbers {
		if n != 1 {
			t.Fatalf("numbers answered: %v; want all 1", numbers)
		}
	}
	if m, _, err := d.CreateMessage(t.Context(), token, 1, "next", ""); err != nil || m.Number != 2 {
		t.Fatalf("next create = %+v, %v; want number 2", m, err)
	}
	if len(q.creates) != 1+32+1 {
		t.Fatalf("%d creates published; want the chat, 32 of message 1, and message 2", len(q.creates))
	}
}

// conflictingStore refuses the first conflicts application inserts as
// duplicates, and keeps the tokens it was offered.
type conflictingStore struct {
	instachat.Store
	conflicts int
	offered   []string
	stored    []*instachat.Application
}

func (s *conflictingStore) CreateApplication(_ context.Context, app *instachat.Application) error {
	s.offered = append(s.offered, app.Token)
	if s.conflicts > 0 {
		s.conflicts--
		return instachat.Errorf(instachat.ECONFLICT, "application exists")
	}
	a := *app
	s.stored = append(s.stored, &a)
	return nil
}

func TestCreateApplicationStoresThenRegisters(t *testing.T) {
	for conflicts, want := range map[int]string{0: "", 1: "", 2: instachat.ECONFLICT} {
		seq, store := inmem.NewSequencer(), &conflictingStore{conflicts: conflicts}
		d := New(seq, nil)
		d.Store = store
		app, err := d.CreateApplication(t.Context(), "app")
		if instachat.ErrorCode(err) != want {
			t.Fatalf("after %d conflicts: %v, want code %q", conflicts, err, want)
		}
		if len(store.offered) != min(conflicts+1, 2) || len(store.offered) == 2 && store.offered[0] == store.offered[1] {
			t.Errorf("after %d conflicts: tokens offered %q; want a fresh one on the one retry", conflicts, store.offered)
		}
		if err != nil {
			continue
		}
		if len(store.stored) != 1 || *store.stored[0] != *app || app.Name != "app" || !instachat.ValidToken(app.Token) || app.CreatedAt.IsZero() {
			t.Errorf("after %d conflicts: stored %v, answered %+v", conflicts, store.stored, *app)
		}
		if n, err := seq.NextChatNumber(t.Context(), app.Token); err != nil || n != 1 {
			t.Errorf("after %d conflicts: the application's first chat number = %d, %v; want it registered", conflicts, n, err)
		}
	}
}

func TestCreateApplicationValidatesTheName(t *testing.T) {
	store := &conflictingStore{}
	d := New(inmem.NewSequencer(), nil)
	d.Store = store
	for _, name := range []string{"", "  ", strings.Repeat("n", instachat.DefaultLimits.MaxNameChars+1), "a\x00b"} {
		if _, err := d.CreateApplication(t.Context(), name); instachat.ErrorCode(err) != instachat.EINVALID {
			t.Errorf("name %q: %v; want %s", name, err, instachat.EINVALID)
		}
	}
	if len(store.offered) != 0 {
		t.Errorf("invalid names reached the store: %d inserts", len(store.offered))
	}
}
