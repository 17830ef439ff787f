package search_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/search"
	"github.com/instachat/instachat/sqlite"
)

// engine answers every query with hits, and counts the queries.
type engine struct {
	hits    []instachat.SearchHit
	err     error
	queries int
}

func (e *engine) SearchMessageNumbers(context.Context, instachat.SearchQuery) ([]instachat.SearchHit, error) {
	e.queries++
	return e.hits, e.err
}

func (e *engine) ForgetScope(context.Context, instachat.Scope) error { return nil }

var at = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

// open returns a store holding chat 1 of an application with messages 1…4,
// whose bodies say their number, and chat 2 with none.
func open(t *testing.T) (*sqlite.DB, string) {
	t.Helper()
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "instachat.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	token := instachat.NewToken()
	if err := db.CreateApplication(t.Context(), &instachat.Application{Token: token, Name: "a", CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	creates := []instachat.Create{
		{Chat: &instachat.Chat{Token: token, Number: 1, CreatedAt: at, UpdatedAt: at}},
		{Chat: &instachat.Chat{Token: token, Number: 2, CreatedAt: at, UpdatedAt: at}},
	}
	for _, n := range []string{"one", "two", "three", "four"} {
		number := int64(len(creates) - 1)
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1,
			Number: number, Body: n, CreatedAt: at, UpdatedAt: at}})
	}
	if err := db.ApplyCreates(t.Context(), creates); err != nil {
		t.Fatal(err)
	}
	return db, token
}

func hits(numbers ...int64) []instachat.SearchHit {
	h := make([]instachat.SearchHit, len(numbers))
	for i, n := range numbers {
		h[i] = instachat.SearchHit{Number: n, Score: float64(len(numbers) - i)}
	}
	return h
}

func search1(t *testing.T, s *search.Service, token string, chat int64) ([]*instachat.Message, error) {
	return s.SearchMessages(t.Context(), instachat.SearchQuery{Token: token, Chat: chat, Terms: []string{"anything"}, Limit: 10})
}

func bodies(msgs []*instachat.Message) []string {
	var b []string
	for _, m := range msgs {
		b = append(b, m.Body)
	}
	return b
}

func TestKeepsTheEngineOrderWithTheStoredRows(t *testing.T) {
	db, token := open(t)
	if _, err := db.UpdateMessage(t.Context(), token, 1, 2, "two, edited", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := search1(t, search.New(db, &engine{hits: hits(3, 2, 4, 1)}), token, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"three", "two, edited", "four", "one"}; !slices.Equal(bodies(got), want) {
		t.Errorf("results %q, want %q", bodies(got), want)
	}
	if !got[1].UpdatedAt.Equal(at.Add(time.Minute)) || got[1].Token != token || got[1].Chat != 1 {
		t.Errorf("message 2 = %+v; want the stored row", *got[1])
	}
}

func TestDropsHitsTheStoreDoesNotHold(t *testing.T) {
	db, token := open(t)
	// 9 was never stored; 3 is repeated.
	got, err := search1(t, search.New(db, &engine{hits: hits(9, 3, 1, 3)}), token, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"three", "one"}; !slices.Equal(bodies(got), want) {
		t.Errorf("results %q, want %q", bodies(got), want)
	}
}

func TestNoHitsIsAnEmptyPage(t *testing.T) {
	db, token := open(t)
	got, err := search1(t, search.New(db, &engine{}), token, 2)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("search without hits = %v, %v; want an empty page", got, err)
	}
}

func TestUnknownChatIsNotFound(t *testing.T) {
	db, token := open(t)
	e := &engine{hits: hits(1)}
	s := search.New(db, e)
	for _, c := range []struct {
		token string
		chat  int64
	}{{token, 3}, {instachat.NewToken(), 1}} {
		if _, err := search1(t, s, c.token, c.chat); instachat.ErrorCode(err) != instachat.ENOTFOUND {
			t.Errorf("search in chat %d of an unknown chat or application: %v, want not found", c.chat, err)
		}
	}
	if e.queries != 0 {
		t.Errorf("the engine was asked %d times about chats not stored", e.queries)
	}
}

func TestEngineErrorIsReturned(t *testing.T) {
	db, token := open(t)
	down := instachat.Errorf(instachat.EUNAVAILABLE, "search unavailable")
	if _, err := search1(t, search.New(db, &engine{err: down}), token, 1); !errors.Is(err, down) {
		t.Errorf("search with the engine down: %v, want %v", err, down)
	}
}

// recordingIndexer keeps what it is asked to index; err, when set, fails.
type recordingIndexer struct {
	indexed, deleted []*instachat.Message
	err              error
}

func (x *recordingIndexer) DeleteMessages(_ context.Context, msgs []*instachat.Message) error {
	x.deleted = append(x.deleted, msgs...)
	return x.err
}

func (x *recordingIndexer) IndexMessages(_ context.Context, msgs []*instachat.Message) error {
	x.indexed = append(x.indexed, msgs...)
	return x.err
}

func TestIndexingIndexesTheStoredEdit(t *testing.T) {
	db, token := open(t)
	x := &recordingIndexer{}
	store := &search.Indexing{Store: db, Indexer: x}
	m, err := store.UpdateMessage(t.Context(), token, 1, 2, "two, edited", at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(x.indexed) != 1 || *x.indexed[0] != *m || m.Body != "two, edited" || m.Revision == 0 {
		t.Errorf("indexed %v after the edit %+v; want the stored row once", x.indexed, *m)
	}
	if _, err := store.UpdateMessage(t.Context(), token, 1, 9, "none", at); !errors.Is(err, instachat.ErrMessageNotFound) || len(x.indexed) != 1 {
		t.Errorf("editing a message not stored: %v, %d indexed; want not found and nothing indexed", err, len(x.indexed))
	}
}

func TestIndexingRemovesTheDeletedMessage(t *testing.T) {
	db, token := open(t)
	x := &recordingIndexer{}
	store := &search.Indexing{Store: db, Indexer: x}
	m, err := store.DeleteMessage(t.Context(), token, 1, 2, at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(x.deleted) != 1 || x.deleted[0].Number != 2 || x.deleted[0].DeletedAt == nil || x.deleted[0].Revision != m.Revision {
		t.Errorf("deleted from the index %v after the delete %+v; want its tombstone once", x.deleted, *m)
	}
	if _, err := store.DeleteMessage(t.Context(), token, 1, 2, at); !errors.Is(err, instachat.ErrMessageNotFound) || len(x.deleted) != 1 {
		t.Errorf("deleting it again: %v, %d deleted from the index; want not found and nothing more", err, len(x.deleted))
	}
}

func TestIndexingFailureLeavesTheEditStored(t *testing.T) {
	db, token := open(t)
	var logs bytes.Buffer
	store := &search.Indexing{Store: db, Indexer: &recordingIndexer{err: errors.New("index down")},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if m, err := store.UpdateMessage(t.Context(), token, 1, 2, "edited", at.Add(time.Minute)); err != nil || m.Body != "edited" {
		t.Fatalf("edit with the index down = %v, %v; want it answered", m, err)
	}
	if got, err := db.FindMessage(t.Context(), token, 1, 2); err != nil || got.Body != "edited" {
		t.Errorf("stored %v, %v; want the edit", got, err)
	}
	if !strings.Contains(logs.String(), "index down") {
		t.Errorf("the failure was not logged: %q", logs.String())
	}
}

// clearedErasures records what SearchErased was told.
type clearedErasures struct{ cleared []*instachat.Message }

func (*clearedErasures) PendingSearchErasures(context.Context, time.Time, int) ([]*instachat.Message, error) {
	return nil, nil
}

func (e *clearedErasures) SearchErased(_ context.Context, msgs []*instachat.Message) error {
	e.cleared = append(e.cleared, msgs...)
	return nil
}

// TestIndexingClearsTheErasureOnlyOnceTheEngineTookIt: with Erasures, a
// deletion whose tombstone the engine took clears the erasure the store
// recorded; one the engine refused is logged and left owed, for the
// worker's SearchEraser, while the deletion is answered all the same.
func TestIndexingClearsTheErasureOnlyOnceTheEngineTookIt(t *testing.T) {
	db, token := open(t)
	erasures := &clearedErasures{}
	x := &recordingIndexer{}
	var logs bytes.Buffer
	store := &search.Indexing{Store: db, Indexer: x, Erasures: erasures, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, err := store.DeleteMessage(t.Context(), token, 1, 1, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if len(erasures.cleared) != 1 || erasures.cleared[0].Number != 1 {
		t.Fatalf("cleared %v after a tombstone the engine took; want message 1", erasures.cleared)
	}
	x.err = errors.New("index down")
	if _, err := store.DeleteMessage(t.Context(), token, 1, 2, at.Add(time.Minute)); err != nil {
		t.Fatalf("delete with the index down: %v, want it answered", err)
	}
	if len(erasures.cleared) != 1 {
		t.Errorf("cleared %v after a tombstone the engine refused; want it still owed", erasures.cleared)
	}
	if !strings.Contains(logs.String(), "index down") || !strings.Contains(logs.String(), "retried_by_worker=true") {
		t.Errorf("the failure was not logged as retried: %q", logs.String())
	}
}
