package conformance

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// TestSequencer checks a Sequencer backend. open returns two handles on one
// numbering state — the same value for an embedded backend, two clients for
// a shared one — so that numbers are shown unique across processes.
func TestSequencer(t *testing.T, open func(t *testing.T) (a, b instachat.Sequencer)) {
	opened := func(test func(t *testing.T, a, b instachat.Sequencer)) func(*testing.T) {
		return func(t *testing.T) { a, b := open(t); test(t, a, b) }
	}
	t.Run("an unknown application gets no number", opened(testSeqUnknownApplication))
	t.Run("chat numbers run 1, 2, 3 across handles", opened(testSeqChatNumbers))
	t.Run("adding a known application again keeps its numbering", opened(testSeqAddApplicationKeepsNumbering))
	t.Run("a chat not issued gets no message number", opened(testSeqUnknownChat))
	t.Run("message numbers run per chat and per application", opened(testSeqMessageNumbers))
	t.Run("concurrent message numbers are each issued once, none skipped", opened(testSeqConcurrentMessages))
	t.Run("concurrent chat numbers are each issued once, none skipped", opened(testSeqConcurrentChats))
	t.Run("a block of message numbers is consecutive and numbering goes on after it", opened(testSeqMessageBlocks))
	t.Run("concurrent blocks and single numbers are each issued once, none skipped", opened(testSeqConcurrentBlocks))
	t.Run("a receipt answers a retry with the number first issued", opened(testSeqReceiptAnswersRetry))
	t.Run("a call that issues nothing keeps no receipt", opened(testSeqReceiptNotKeptOnFailure))
	t.Run("concurrent retries of one key issue one number", opened(testSeqConcurrentRetries))
	t.Run("a deleted chat gets no number on any handle; its neighbours keep theirs", opened(testSeqDeleteChat))
	t.Run("a deleted application gets no number on any handle", opened(testSeqDeleteApplication))
}

func testSeqDeleteChat(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	seqWantChats(t, token, []instachat.Sequencer{a}, 1, 2)
	for range 3 {
		if _, err := a.NextMessageNumber(t.Context(), token, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Delete(t.Context(), instachat.MessagesOf(token, 1)); err != nil {
		t.Fatalf("Delete(chat 1): %v", err)
	}
	for _, s := range []instachat.Sequencer{a, b} {
		_, err := s.NextMessageNumber(t.Context(), token, 1)
		wantCode(t, err, instachat.ENOTFOUND, "NextMessageNumber of a deleted chat")
		_, _, err = s.NextNumberOnce(t.Context(), instachat.MessagesOf(token, 1), "fresh-key", instachat.Receipt{Fingerprint: "f", CreatedAt: time.Now()})
		wantCode(t, err, instachat.ENOTFOUND, "NextNumberOnce of a deleted chat")
		if n, err := s.NextMessageNumber(t.Context(), token, 2); err != nil || n < 1 {
			t.Errorf("NextMessageNumber of a chat beside the deleted one = %d, %v", n, err)
		}
	}
	// The deleted chat's number is not issued again.
	seqWantChats(t, token, []instachat.Sequencer{b}, 3)
	// Deleting what is not known changes nothing.
	if err := b.Delete(t.Context(), instachat.MessagesOf(token, 9)); err != nil {
		t.Errorf("Delete of a chat not issued: %v", err)
	}
	if err := b.Delete(t.Context(), instachat.MessagesOf(instachat.NewToken(), 1)); err != nil {
		t.Errorf("Delete in an unknown application: %v", err)
	}
	seqWantChats(t, token, []instachat.Sequencer{a}, 4)
}

func testSeqDeleteApplication(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	seqWantChats(t, token, []instachat.Sequencer{a}, 1)
	if err := b.Delete(t.Context(), instachat.ChatsOf(token)); err != nil {
		t.Fatalf("Delete(application): %v", err)
	}
	for _, s := range []instachat.Sequencer{a, b} {
		_, err := s.NextChatNumber(t.Context(), token)
		wantCode(t, err, instachat.ENOTFOUND, "NextChatNumber of a deleted application")
		_, err = s.NextMessageNumber(t.Context(), token, 1)
		wantCode(t, err, instachat.ENOTFOUND, "NextMessageNumber in a deleted application")
		_, _, err = s.NextNumberOnce(t.Context(), instachat.ChatsOf(token), "fresh-key", instachat.Receipt{Fingerprint: "f", CreatedAt: time.Now()})
		wantCode(t, err, instachat.ENOTFOUND, "NextNumberOnce in a deleted application")
	}
	if err := a.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	_, err := a.NextChatNumber(t.Context(), token)
	wantCode(t, err, instachat.ENOTFOUND, "NextChatNumber of a deleted application added again")
}

func testSeqUnknownApplication(t *testing.T, a, b instachat.Sequencer) {
	token := instachat.NewToken()
	for _, s := range []instachat.Sequencer{a, b} {
		_, err := s.NextChatNumber(t.Context(), token)
		wantCode(t, err, instachat.ENOTFOUND, "NextChatNumber of an unknown application")
		_, err = s.NextMessageNumber(t.Context(), token, 1)
		wantCode(t, err, instachat.ENOTFOUND, "NextMessageNumber of an unknown application")
	}
}

func testSeqChatNumbers(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	seqWantChats(t, token, []instachat.Sequencer{a, b, a}, 1, 2, 3)
}

func testSeqAddApplicationKeepsNumbering(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	seqWantChats(t, token, []instachat.Sequencer{a, b}, 1, 2)
	if err := b.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	seqWantChats(t, token, []instachat.Sequencer{b}, 3)
}

func testSeqUnknownChat(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	for _, chat := range []int64{1, 0, -1} {
		_, err := b.NextMessageNumber(t.Context(), token, chat)
		wantCode(t, err, instachat.ENOTFOUND, "NextMessageNumber of a chat not issued")
	}
	seqWantChats(t, token, []instachat.Sequencer{a}, 1)
	_, err := b.NextMessageNumber(t.Context(), token, 2)
	wantCode(t, err, instachat.ENOTFOUND, "NextMessageNumber of the chat after the last issued")
}

func testSeqMessageNumbers(t *testing.T, a, b instachat.Sequencer) {
	tokens := []string{seqAddApp(t, a), seqAddApp(t, b)}
	for _, token := range tokens {
		seqWantChats(t, token, []instachat.Sequencer{a, b}, 1, 2)
	}
	// Interleaved so that any counter shared between chats or
	// applications shows as a skipped number.
	for want := int64(1); want <= 3; want++ {
		for _, token := range tokens {
			for chat, s := range []instachat.Sequencer{a, b} {
				got, err := s.NextMessageNumber(t.Context(), token, int64(chat+1))
				if err != nil || got != want {
					t.Fatalf("NextMessageNumber(chat %d) = %d, %v; want %d", chat+1, got, err, want)
				}
			}
		}
	}
}

func testSeqConcurrentMessages(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	const goroutines, each, chats = 32, 100, 4
	seqWantChats(t, token, []instachat.Sequencer{a}, 1, 2, 3, 4)
	got := seqParallel(t, goroutines, each, a, b, func(s instachat.Sequencer, g, i int) (int64, int64, error) {
		chat := int64((g+i)%chats + 1)
		n, err := s.NextMessageNumber(t.Context(), token, chat)
		return chat, n, err
	})
	for chat := int64(1); chat <= chats; chat++ {
		seqWantOneToN(t, got[chat], goroutines*each/chats)
	}
}

func testSeqMessageBlocks(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	seqWantChats(t, token, []instachat.Sequencer{a}, 1, 2)
	block := func(s instachat.Sequencer, chat int64, n int, want int64) {
		t.Helper()
		first, err := s.NextMessageNumbers(t.Context(), token, chat, n)
		if err != nil || first != want {
			t.Fatalf("NextMessageNumbers(chat %d, %d) = %d, %v; want %d", chat, n, first, err, want)
		}
	}
	block(a, 1, 5, 1) // 1..5
	block(b, 1, 1, 6)
	if n, err := a.NextMessageNumber(t.Context(), token, 1); err != nil || n != 7 {
		t.Fatalf("after the blocks, NextMessageNumber = %d, %v; want 7", n, err)
	}
	block(b, 1, 3, 8)
	block(a, 2, 2, 1) // each chat its own numbering
	_, err := a.NextMessageNumbers(t.Context(), token, 3, 2)
	wantCode(t, err, instachat.ENOTFOUND, "NextMessageNumbers of a chat not issued")
	_, err = a.NextMessageNumbers(t.Context(), instachat.NewToken(), 1, 2)
	wantCode(t, err, instachat.ENOTFOUND, "NextMessageNumbers of an unknown application")
}

func testSeqConcurrentBlocks(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	seqWantChats(t, token, []instachat.Sequencer{a}, 1)
	const goroutines, each = 16, 40
	// Goroutine g takes blocks of g%4+1 numbers (1: NextMessageNumber).
	var mu sync.Mutex
	var all []int64
	got := seqParallel(t, goroutines, each, a, b, func(s instachat.Sequencer, g, _ int) (int64, int64, error) {
		size := g%4 + 1
		var first int64
		var err error
		if size == 1 {
			first, err = s.NextMessageNumber(t.Context(), token, 1)
		} else {
			first, err = s.NextMessageNumbers(t.Context(), token, 1, size)
		}
		mu.Lock()
		for k := range int64(size) {
			all = append(all, first+k)
		}
		mu.Unlock()
		return 1, first, err
	})
	if len(got[1]) != goroutines*each {
		t.Fatalf("%d calls answered, want %d", len(got[1]), goroutines*each)
	}
	seqWantOneToN(t, all, goroutines/4*each*(1+2+3+4))
}

func testSeqConcurrentChats(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	const goroutines = 24
	got := seqParallel(t, goroutines, 1, a, b, func(s instachat.Sequencer, _, _ int) (int64, int64, error) {
		n, err := s.NextChatNumber(t.Context(), token)
		return 0, n, err
	})
	seqWantOneToN(t, got[0], goroutines)
}

func testSeqReceiptAnswersRetry(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	at := time.Date(2026, 11, 26, 12, 0, 0, 123000, time.UTC)
	first := seqOnce(t, a, instachat.ChatsOf(token), "chat-key", instachat.Receipt{Fingerprint: "f1", CreatedAt: at}, false)
	if first.Number != 1 || first.Fingerprint != "f1" || !first.CreatedAt.Equal(at) {
		t.Fatalf("first receipt = %+v; want number 1, f1, %v", first, at)
	}
	// A retry on the other handle, even one claiming another
	// fingerprint, gets the first receipt and issues nothing.
	again := seqOnce(t, b, instachat.ChatsOf(token), "chat-key", instachat.Receipt{Fingerprint: "f2", CreatedAt: at.Add(time.Second)}, true)
	if again != first && !(again.Number == first.Number && again.Fingerprint == first.Fingerprint && again.CreatedAt.Equal(first.CreatedAt)) {
		t.Fatalf("retry receipt = %+v; want %+v", again, first)
	}
	seqWantChats(t, token, []instachat.Sequencer{b}, 2)
	// Messages: same key space per application, a new key numbers on.
	m1 := seqOnce(t, b, instachat.MessagesOf(token, 1), "m-1", instachat.Receipt{Fingerprint: "m", CreatedAt: at}, false)
	m2 := seqOnce(t, a, instachat.MessagesOf(token, 1), "m-2", instachat.Receipt{Fingerprint: "m", CreatedAt: at}, false)
	if m1.Number != 1 || m2.Number != 2 {
		t.Fatalf("message receipts numbered %d, %d; want 1, 2", m1.Number, m2.Number)
	}
	if r := seqOnce(t, a, instachat.MessagesOf(token, 1), "m-1", instachat.Receipt{Fingerprint: "m"}, true); r.Number != 1 {
		t.Fatalf("retried message receipt = %+v; want number 1", r)
	}
	if n, err := a.NextMessageNumber(t.Context(), token, 1); err != nil || n != 3 {
		t.Fatalf("NextMessageNumber after keyed creates = %d, %v; want 3", n, err)
	}
	// Keys belong to their application.
	other := seqAddApp(t, b)
	r := seqOnce(t, a, instachat.ChatsOf(other), "chat-key", instachat.Receipt{Fingerprint: "o", CreatedAt: at}, false)
	if r.Number != 1 || r.Fingerprint != "o" {
		t.Fatalf("same key in another application = %+v; want its own chat 1", r)
	}
}

func testSeqReceiptNotKeptOnFailure(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	_, _, err := a.NextNumberOnce(t.Context(), instachat.MessagesOf(token, 1), "k", instachat.Receipt{Fingerprint: "x"})
	wantCode(t, err, instachat.ENOTFOUND, "NextNumberOnce in a chat not issued")
	_, _, err = b.NextNumberOnce(t.Context(), instachat.ChatsOf(instachat.NewToken()), "k", instachat.Receipt{Fingerprint: "x"})
	wantCode(t, err, instachat.ENOTFOUND, "NextNumberOnce in an unknown application")
	seqWantChats(t, token, []instachat.Sequencer{a}, 1)
	// The failed call kept nothing: the key now numbers a message.
	if r := seqOnce(t, b, instachat.MessagesOf(token, 1), "k", instachat.Receipt{Fingerprint: "y"}, false); r.Number != 1 || r.Fingerprint != "y" {
		t.Fatalf("receipt after a failed call = %+v; want message 1, y", r)
	}
}

func testSeqConcurrentRetries(t *testing.T, a, b instachat.Sequencer) {
	token := seqAddApp(t, a)
	seqWantChats(t, token, []instachat.Sequencer{a}, 1)
	// 8 keys, each sent by 16 goroutines at once: 8 numbers, each
	// answered to all 16 senders of its key.
	const keys, senders = 8, 16
	var (
		mu       sync.Mutex
		byKey    = map[string]map[int64]int{}
		replayed int
		wg       sync.WaitGroup
	)
	for g := range keys * senders {
		s := []instachat.Sequencer{a, b}[g%2]
		key := fmt.Sprint("key-", g%keys)
		wg.Go(func() {
			r, again, err := s.NextNumberOnce(t.Context(), instachat.MessagesOf(token, 1), key, instachat.Receipt{Fingerprint: key})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if byKey[key] == nil {
				byKey[key] = map[int64]int{}
			}
			byKey[key][r.Number]++
			if again {
				replayed++
			}
		})
	}
	wg.Wait()
	var numbers []int64
	for key, got := range byKey {
		if len(got) != 1 {
			t.Fatalf("key %s answered numbers %v; want one", key, got)
		}
		for n := range got {
			numbers = append(numbers, n)
		}
	}
	seqWantOneToN(t, numbers, keys)
	if replayed != keys*(senders-1) {
		t.Fatalf("%d answers replayed; want %d", replayed, keys*(senders-1))
	}
}

// seqOnce calls NextNumberOnce and checks whether it replayed.
func seqOnce(t *testing.T, s instachat.Sequencer, scope instachat.Scope, key string, want instachat.Receipt, replay bool) instachat.Receipt {
	t.Helper()
	r, replayed, err := s.NextNumberOnce(t.Context(), scope, key, want)
	if err != nil || replayed != replay {
		t.Fatalf("NextNumberOnce(chat %d, %q) = %+v, replayed %v, %v; want replayed %v", scope.Chat, key, r, replayed, err, replay)
	}
	return r
}

func seqAddApp(t *testing.T, s instachat.Sequencer) string {
	t.Helper()
	token := instachat.NewToken()
	if err := s.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	return token
}

// seqWantChats issues one chat number through each handle in turn.
func seqWantChats(t *testing.T, token string, handles []instachat.Sequencer, want ...int64) {
	t.Helper()
	for i, w := range want {
		got, err := handles[i%len(handles)].NextChatNumber(t.Context(), token)
		if err != nil || got != w {
			t.Fatalf("NextChatNumber = %d, %v; want %d", got, err, w)
		}
	}
}

// seqParallel runs n goroutines, half on a and half on b, each calling next
// each times, and returns the numbers issued by chat (0 for chat numbers).
func seqParallel(t *testing.T, n, each int, a, b instachat.Sequencer,
	next func(s instachat.Sequencer, g, i int) (chat, number int64, err error)) map[int64][]int64 {
	var (
		mu  sync.Mutex
		got = map[int64][]int64{}
		wg  sync.WaitGroup
	)
	for g := range n {
		s := a
		if g%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := range each {
				chat, number, err := next(s, g, i)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got[chat] = append(got[chat], number)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

// seqWantOneToN checks that got is exactly 1..n in some order: no number
// issued twice, none skipped.
func seqWantOneToN(t *testing.T, got []int64, n int) {
	t.Helper()
	slices.Sort(got)
	for i, v := range got {
		if v != int64(i+1) {
			t.Fatalf("numbers issued, sorted: %v; want 1..%d, each once", got, n)
		}
	}
	if len(got) != n {
		t.Fatalf("%d numbers issued, want %d", len(got), n)
	}
}
