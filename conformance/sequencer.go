package conformance

import (
	"slices"
	"sync"
	"testing"

	"github.com/instachat/instachat"
)

// TestSequencer checks a Sequencer backend. open returns two handles on one
// numbering state — the same value for an embedded backend, two clients for
// a shared one — so that numbers are shown unique across processes.
func TestSequencer(t *testing.T, open func(t *testing.T) (a, b instachat.Sequencer)) {
	t.Run("UnknownApplication", func(t *testing.T) {
		a, b := open(t)
		token := instachat.NewToken()
		for _, s := range []instachat.Sequencer{a, b} {
			_, err := s.NextChatNumber(t.Context(), token)
			wantCode(t, err, instachat.ENOTFOUND, "NextChatNumber of an unknown application")
			_, err = s.NextMessageNumber(t.Context(), token, 1)
			wantCode(t, err, instachat.ENOTFOUND, "NextMessageNumber of an unknown application")
		}
	})

	t.Run("ChatNumbers", func(t *testing.T) {
		a, b := open(t)
		token := seqAddApp(t, a)
		seqWantChats(t, token, []instachat.Sequencer{a, b, a}, 1, 2, 3)
	})

	t.Run("AddApplicationKeepsNumbering", func(t *testing.T) {
		a, b := open(t)
		token := seqAddApp(t, a)
		seqWantChats(t, token, []instachat.Sequencer{a, b}, 1, 2)
		if err := b.AddApplication(t.Context(), token); err != nil {
			t.Fatal(err)
		}
		seqWantChats(t, token, []instachat.Sequencer{b}, 3)
	})

	t.Run("UnknownChat", func(t *testing.T) {
		a, b := open(t)
		token := seqAddApp(t, a)
		for _, chat := range []int64{1, 0, -1} {
			_, err := b.NextMessageNumber(t.Context(), token, chat)
			wantCode(t, err, instachat.ENOTFOUND, "NextMessageNumber of a chat not issued")
		}
		seqWantChats(t, token, []instachat.Sequencer{a}, 1)
		_, err := b.NextMessageNumber(t.Context(), token, 2)
		wantCode(t, err, instachat.ENOTFOUND, "NextMessageNumber of the chat after the last issued")
	})

	t.Run("MessageNumbers", func(t *testing.T) {
		a, b := open(t)
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
	})

	t.Run("ConcurrentMessages", func(t *testing.T) {
		a, b := open(t)
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
	})

	t.Run("ConcurrentChats", func(t *testing.T) {
		a, b := open(t)
		token := seqAddApp(t, a)
		const goroutines = 24
		got := seqParallel(t, goroutines, 1, a, b, func(s instachat.Sequencer, _, _ int) (int64, int64, error) {
			n, err := s.NextChatNumber(t.Context(), token)
			return 0, n, err
		})
		seqWantOneToN(t, got[0], goroutines)
	})
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
func seqParallel(t *testing.T, n, each int, a, b instachat.Sequencer, next func(s instachat.Sequencer, g, i int) (chat, number int64, err error)) map[int64][]int64 {
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
