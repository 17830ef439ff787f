package elasticsearch_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/search"
	"github.com/instachat/instachat/sqlite"
	"github.com/instachat/instachat/worker"
)

// erasingStore records, with each message deletion, the search erasure
// owed, as the MySQL store does with Options.SearchErasures (whose own
// test, mysql TestDeleteMessageRecordsTheSearchErasure, checks the table).
type erasingStore struct {
	*sqlite.DB
	mu      sync.Mutex
	pending []*instachat.Message
}

func (s *erasingStore) DeleteMessage(ctx context.Context, token string, chat, number int64, at time.Time) (*instachat.Message, error) {
	m, err := s.DB.DeleteMessage(ctx, token, chat, number, at)
	if err == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		t := *m
		s.pending = append(s.pending, &t)
	}
	return m, err
}

func (s *erasingStore) PendingSearchErasures(_ context.Context, before time.Time, limit int) ([]*instachat.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var msgs []*instachat.Message
	for _, m := range s.pending {
		if len(msgs) < limit && !m.DeletedAt.After(before) {
			msgs = append(msgs, m)
		}
	}
	return msgs, nil
}

func (s *erasingStore) SearchErased(_ context.Context, msgs []*instachat.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		for i, p := range s.pending {
			if p.Token == m.Token && p.Chat == m.Chat && p.Number == m.Number {
				s.pending = append(s.pending[:i], s.pending[i+1:]...)
				break
			}
		}
	}
	return nil
}

func (s *erasingStore) owed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// TestDeleteMessageErasureIsRetried: the API's tombstone of a deleted
// message refused by Elasticsearch (the recorded 429s of a bulk request)
// is not lost: the erasure stays owed, and the worker's SearchEraser sends
// the body-less tombstone again until Elasticsearch takes it, then clears
// it. A tombstone the API's own call got in is cleared at once, and the
// eraser sends nothing for it.
func TestDeleteMessageErasureIsRetried(t *testing.T) {
	x, c := open(t, map[string]string{"POST /instachat-messages/_bulk": "bulk_conflict.http"})
	store := &erasingStore{DB: storeWithMessages(t)}
	api := &search.Indexing{Store: store, Indexer: x, Erasures: store, Logger: slog.New(slog.DiscardHandler)}
	deletedAt := time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond)

	if _, err := api.DeleteMessage(t.Context(), token, 1, 1, deletedAt); err != nil {
		t.Fatal(err)
	}
	if n := store.owed(); n != 0 {
		t.Fatalf("after a tombstone Elasticsearch took, %d erasures owed, want 0", n)
	}
	c.answerInTurn("POST /instachat-messages/_bulk", "bulk_rejected.http")
	if _, err := api.DeleteMessage(t.Context(), token, 1, 2, deletedAt); err != nil {
		t.Fatalf("DeleteMessage with Elasticsearch refusing: %v, want the deletion stored all the same", err)
	}
	if n := store.owed(); n != 1 {
		t.Fatalf("after a tombstone Elasticsearch refused, %d erasures owed, want 1", n)
	}
	c.take()

	// The eraser's first attempt is refused too; the next poll's is taken.
	c.answerInTurn("POST /instachat-messages/_bulk", "bulk_rejected.http")
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	e := &worker.SearchEraser{Store: store, Indexer: x, Poll: 10 * time.Millisecond, Grace: time.Second, Logger: slog.New(slog.DiscardHandler)}
	go func() { ran <- e.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for store.owed() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a few more polls, which owe nothing
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	if n := store.owed(); n != 0 {
		t.Fatalf("the eraser left %d erasures owed after 30 s", n)
	}
	reqs := c.take()
	if len(reqs) != 2 {
		t.Fatalf("the eraser sent %q, want two bulk requests: refused, then taken", routes(reqs))
	}
	for _, r := range reqs {
		lines := strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("bulk body has %d lines, want the one tombstone:\n%s", len(lines), r.Body)
		}
		jsonEqual(t, "the action", []byte(lines[0]), []byte(`{"index": {"_id": "kQ3vT7mW2xYz8bN4pR6sLg/1/2", "version": `+
			strconv.FormatInt(deletedAt.UnixMicro(), 10)+`, "version_type": "external"}}`))
		jsonEqual(t, "the tombstone", []byte(lines[1]), []byte(`{"token": "kQ3vT7mW2xYz8bN4pR6sLg", "chat": 1, "number": 2, "body": "",`+
			` "created_at": "2024-05-01T10:00:01.000002Z", "updated_at": "`+deletedAt.Format("2006-01-02T15:04:05.000000Z07:00")+`"}`))
	}
}
