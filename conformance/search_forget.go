package conformance

import (
	"context"
	"slices"
	"testing"

	"github.com/instachat/instachat"
)

// TestSearchForget checks that what deletes erase leaves a SearchEngine:
// a deleted message is no longer found, and once the reclaim of a deleted
// chat or application called the engine's ForgetScope (as
// worker.Reclaimer does), none of their messages is. open returns the store
// as the API's deletes reach it (for an engine apart from the store, with
// search.Indexing in front), the engine, and put, as TestSearcher's. Every
// subtest works under applications of its own.
func TestSearchForget(t *testing.T,
	open func(t *testing.T) (instachat.Store, instachat.SearchEngine, func(context.Context, []*instachat.Message) error)) {
	for _, c := range []struct {
		name string
		test func(*testing.T, instachat.Store, instachat.SearchEngine, func(context.Context, []*instachat.Message) error)
	}{
		{"a deleted message is not found", testForgetMessage},
		{"a reclaimed chat is forgotten, its siblings not", testForgetChat},
		{"a reclaimed application is forgotten, the others not", testForgetApplication},
		{"forgetting bears repeating", testForgetTwice},
	} {
		t.Run(c.name, func(t *testing.T) { s, e, put := open(t); c.test(t, s, e, put) })
	}
}

// forgetBodies are the bodies each chat of these cases holds: all match
// "hello".
var forgetBodies = []string{"hello one", "two, hello", "hello three"}

// forgetFound returns the numbers the engine finds for "hello" in the chat.
func forgetFound(t *testing.T, e instachat.SearchEngine, token string, chat int64) []int64 {
	t.Helper()
	hits, err := e.SearchMessageNumbers(t.Context(), instachat.SearchQuery{Token: token, Chat: chat, Terms: []string{"hello"}, Limit: 10})
	if err != nil {
		t.Fatalf("SearchMessageNumbers(chat %d): %v", chat, err)
	}
	var ns []int64
	for _, h := range hits {
		ns = append(ns, h.Number)
	}
	slices.Sort(ns)
	return ns
}

func forgetWant(t *testing.T, e instachat.SearchEngine, token string, chat int64, want ...int64) {
	t.Helper()
	if got := forgetFound(t, e, token, chat); !slices.Equal(got, want) {
		t.Errorf("the engine finds messages %v of chat %d, want %v", got, chat, want)
	}
}

// forgetReclaim reclaims everything deleted, with the engine forgetting
// each deletion as worker.Reclaimer has it do.
func forgetReclaim(t *testing.T, s instachat.Store, e instachat.SearchEngine) {
	t.Helper()
	for range 100000 {
		n, err := s.Reclaim(t.Context(), 100, e.ForgetScope)
		if err != nil {
			t.Fatalf("Reclaim: %v", err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("Reclaim never finished")
}

func testForgetMessage(t *testing.T, s instachat.Store, e instachat.SearchEngine, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, forgetBodies...)
	forgetWant(t, e, token, 1, 1, 2, 3)
	if _, err := s.DeleteMessage(t.Context(), token, 1, 2, storeTime(50)); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	forgetWant(t, e, token, 1, 1, 3)
}

func testForgetChat(t *testing.T, s instachat.Store, e instachat.SearchEngine, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, forgetBodies...)
	searchPut(t, put, token, 2, forgetBodies...)
	if _, err := s.DeleteMessage(t.Context(), token, 1, 3, storeTime(50)); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if _, err := s.DeleteChat(t.Context(), token, 1, storeTime(51)); err != nil {
		t.Fatalf("DeleteChat: %v", err)
	}
	forgetReclaim(t, s, e)
	forgetWant(t, e, token, 1)
	forgetWant(t, e, token, 2, 1, 2, 3)
}

func testForgetApplication(t *testing.T, s instachat.Store, e instachat.SearchEngine, put func(context.Context, []*instachat.Message) error) {
	gone, kept := instachat.NewToken(), instachat.NewToken()
	for _, token := range []string{gone, kept} {
		searchPut(t, put, token, 1, forgetBodies...)
		searchPut(t, put, token, 2, forgetBodies...)
	}
	if _, err := s.DeleteChat(t.Context(), gone, 2, storeTime(50)); err != nil {
		t.Fatalf("DeleteChat: %v", err)
	}
	if err := s.DeleteApplication(t.Context(), gone, storeTime(51)); err != nil {
		t.Fatalf("DeleteApplication: %v", err)
	}
	forgetReclaim(t, s, e)
	forgetWant(t, e, gone, 1)
	forgetWant(t, e, gone, 2)
	forgetWant(t, e, kept, 1, 1, 2, 3)
	forgetWant(t, e, kept, 2, 1, 2, 3)
}

func testForgetTwice(t *testing.T, s instachat.Store, e instachat.SearchEngine, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, forgetBodies...)
	searchPut(t, put, token, 2, forgetBodies...)
	if _, err := s.DeleteChat(t.Context(), token, 1, storeTime(50)); err != nil {
		t.Fatalf("DeleteChat: %v", err)
	}
	forgetReclaim(t, s, e)
	for _, scope := range []instachat.Scope{instachat.MessagesOf(token, 1), instachat.MessagesOf(token, 9), instachat.ChatsOf(instachat.NewToken())} {
		if err := e.ForgetScope(t.Context(), scope); err != nil {
			t.Errorf("ForgetScope(%+v) of what is forgotten or never was: %v", scope, err)
		}
	}
	forgetWant(t, e, token, 1)
	forgetWant(t, e, token, 2, 1, 2, 3)
}
