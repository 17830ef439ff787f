package worker_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/sqlite"
	"github.com/instachat/instachat/worker"
)

// forgetting is a search engine whose ForgetScope fails its first failures
// calls, and records every call.
type forgetting struct {
	instachat.SearchEngine
	mu       sync.Mutex
	failures int
	calls    []instachat.Scope
}

func (e *forgetting) ForgetScope(_ context.Context, s instachat.Scope) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, s)
	if len(e.calls) <= e.failures {
		return errors.New("search engine down")
	}
	return nil
}

func (e *forgetting) recorded() []instachat.Scope {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// syncBuffer is a log that the reclaimer writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestReclaimerHasTheEngineForgetAndRetries: once the rows of a deleted chat
// and of a deleted application are erased, the reclaimer has the search
// engine forget each; an engine that fails is logged, its deletion stays
// recorded, and the next poll asks it again, until it succeeds and the
// reclaim finishes.
func TestReclaimerHasTheEngineForgetAndRetries(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := t.Context()
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	kept, gone := instachat.NewToken(), instachat.NewToken()
	for _, token := range []string{kept, gone} {
		if err := store.CreateApplication(ctx, &instachat.Application{Token: token, Name: "a", CreatedAt: at, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
		var creates []instachat.Create
		for chat := int64(1); chat <= 2; chat++ {
			creates = append(creates, instachat.Create{Chat: &instachat.Chat{Token: token, Number: chat, CreatedAt: at, UpdatedAt: at}})
			for n := int64(1); n <= 5; n++ {
				creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: chat, Number: n, Body: "hello",
					CreatedAt: at, UpdatedAt: at}})
			}
		}
		if err := store.ApplyCreates(ctx, creates); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.DeleteChat(ctx, kept, 1, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := store.DeleteApplication(ctx, gone, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}

	engine := &forgetting{failures: 2}
	var log syncBuffer
	rctx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	r := &worker.Reclaimer{Store: store, Engine: engine, Poll: 10 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&log, nil))}
	go func() { ran <- r.Run(rctx) }()
	want := []instachat.Scope{instachat.MessagesOf(kept, 1), instachat.MessagesOf(kept, 1), instachat.MessagesOf(kept, 1), instachat.ChatsOf(gone)}
	deadline := time.Now().Add(30 * time.Second)
	for len(engine.recorded()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	// A probe that fails leaves a record where it is: Reclaim answers
	// (0, nil) only once the reclaimer removed them all.
	probe := errors.New("probe")
	for {
		n, err := store.Reclaim(ctx, 1, func(context.Context, instachat.Scope) error { return probe })
		if n == 0 && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reclaim did not finish in 30 s: Reclaim = %d, %v", n, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if got := engine.recorded(); !slices.Equal(got, want) {
		t.Errorf("ForgetScope called with %v, want %v: the chat twice refused then taken, then the application", got, want)
	}
	if got := strings.Count(log.String(), "erasing the search documents of chat 1 of "+instachat.RedactToken(kept)); got != 2 {
		t.Errorf("the log tells of %d failures to erase the chat's documents, want 2:\n%s", got, log.String())
	}
	if strings.Contains(log.String(), kept) {
		t.Errorf("the log holds a whole token:\n%s", log.String())
	}
	// The rows went first, and the chat that was kept keeps its own.
	msgs, err := store.ListMessages(ctx, kept, 2, 0, 10)
	if err != nil || len(msgs) != 5 {
		t.Errorf("ListMessages of the chat kept = %d messages, %v; want 5", len(msgs), err)
	}
}

// TestReclaimerWaitsForTheIndexingConsumer: the reclaimer has the engine
// forget a deleted chat only once Indexed returned, so that what the
// indexing consumer still had to index of it is indexed before, not after,
// the erasure; an Indexed that does not return within IndexedTimeout fails
// the deletion's done (no ForgetScope then), and the next poll waits again.
func TestReclaimerWaitsForTheIndexingConsumer(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := t.Context()
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	token := instachat.NewToken()
	if err := store.CreateApplication(ctx, &instachat.Application{Token: token, Name: "a", CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := store.ApplyCreates(ctx, []instachat.Create{{Chat: &instachat.Chat{Token: token, Number: 1, CreatedAt: at, UpdatedAt: at}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.DeleteChat(ctx, token, 1, at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}

	engine := &forgetting{}
	var mu sync.Mutex
	var waits int
	var forgotten []int // the number of engine calls seen at each wait
	caughtUp := make(chan struct{})
	indexed := func(ctx context.Context) error {
		mu.Lock()
		waits++
		forgotten = append(forgotten, len(engine.recorded()))
		first := waits == 1
		mu.Unlock()
		if first { // the consumer lags: the wait times out
			<-ctx.Done()
			return ctx.Err()
		}
		close(caughtUp)
		return nil
	}
	var log syncBuffer
	rctx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	r := &worker.Reclaimer{Store: store, Engine: engine, Indexed: indexed, IndexedTimeout: 50 * time.Millisecond,
		Poll: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&log, nil))}
	go func() { ran <- r.Run(rctx) }()
	select {
	case <-caughtUp:
	case <-time.After(30 * time.Second):
		t.Fatal("the reclaimer did not wait for the indexing consumer twice in 30 s")
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(engine.recorded()) < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if got, want := engine.recorded(), []instachat.Scope{instachat.MessagesOf(token, 1)}; !slices.Equal(got, want) {
		t.Errorf("ForgetScope called with %v, want %v: once, after the second wait", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(forgotten, []int{0, 0}) {
		t.Errorf("engine calls made before each wait: %v, want [0 0]", forgotten)
	}
	if !strings.Contains(log.String(), "waiting for the indexing consumer") {
		t.Errorf("the log does not tell of the timed-out wait:\n%s", log.String())
	}
}
