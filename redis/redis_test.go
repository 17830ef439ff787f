package redis

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
	"github.com/instachat/instachat/internal/testenv"
)

// testPrefix returns a key prefix of its own for the test and deletes its
// keys when the test ends.
func testPrefix(t testing.TB) string {
	_, prefix := testenv.RedisPrefix(t)
	return prefix
}

// open returns a Sequencer, with its own connections, on the test Redis.
func open(t testing.TB, prefix string) *Sequencer {
	t.Helper()
	s, err := Open(testenv.Lookup(t, "INSTACHAT_TEST_REDIS_URL"), prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// deleteKeys deletes the keys of s's prefix that match pattern.
func deleteKeys(t testing.TB, s *Sequencer, pattern string) {
	t.Helper()
	testenv.DeleteRedisKeys(t, testenv.Lookup(t, "INSTACHAT_TEST_REDIS_URL"), s.prefix+pattern)
}

func TestConformance(t *testing.T) {
	conformance.TestSequencer(t, func(t *testing.T) (a, b instachat.Sequencer) {
		prefix := testPrefix(t)
		return open(t, prefix), open(t, prefix)
	})
}

// gather runs issue in n goroutines at once and returns the numbers they
// pass to got, by chat (chat numbers under chat 0).
func gather(t *testing.T, n int, issue func(g int, got func(chat, n int64)) error) map[int64][]int64 {
	t.Helper()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		all = map[int64][]int64{}
	)
	for g := range n {
		wg.Go(func() {
			err := issue(g, func(chat, n int64) {
				mu.Lock()
				defer mu.Unlock()
				all[chat] = append(all[chat], n)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return all
}

// ledger stands for the store once the queue is drained: it holds every
// number handed out, and its Recover answers from them.
type ledger struct {
	token   string
	calls   atomic.Int64
	mu      sync.Mutex
	highest map[int64]int64 // chat (0: the application) → highest number
}

func newLedger(token string) *ledger { return &ledger{token: token, highest: map[int64]int64{}} }

func (l *ledger) issued(chat, n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.highest[chat] = max(l.highest[chat], n)
}

func (l *ledger) Recover(_ context.Context, s instachat.Scope) (int64, error) {
	l.calls.Add(1)
	if s.Token != l.token {
		return 0, instachat.Errorf(instachat.ENOTFOUND, "application not found")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.highest[s.Chat], nil
}

// twoWithLedger opens two Sequencers on one prefix, as two processes would,
// with an application and its chats recorded in a ledger they recover from.
func twoWithLedger(t *testing.T, chats int64) (a, b *Sequencer, token string, l *ledger) {
	prefix := testPrefix(t)
	a, b = open(t, prefix), open(t, prefix)
	token = instachat.NewToken()
	l = newLedger(token)
	for _, s := range []*Sequencer{a, b} {
		s.Recover, s.RecoverGrace = l.Recover, 10*time.Millisecond
	}
	if err := a.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	for range chats {
		nextChat(t, a, l, token)
	}
	return a, b, token, l
}

func nextChat(t *testing.T, s *Sequencer, l *ledger, token string) int64 {
	t.Helper()
	n, err := s.NextChatNumber(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	l.issued(0, n)
	return n
}

func TestLossResumesAboveIssued(t *testing.T) {
	const goroutines, each, chats = 8, 200, 2
	a, b, token, l := twoWithLedger(t, chats)
	// load issues messages through a and b in turn.
	load := func() map[int64][]int64 {
		return gather(t, goroutines, func(g int, got func(chat, n int64)) error {
			s := []*Sequencer{a, b}[g%2]
			for i := range each {
				chat := int64((g+i)%chats + 1)
				n, err := s.NextMessageNumber(t.Context(), token, chat)
				if err != nil {
					return err
				}
				l.issued(chat, n)
				got(chat, n)
			}
			return nil
		})
	}
	first := load()
	deleteKeys(t, a, "*")
	second := load()
	for chat := int64(1); chat <= chats; chat++ {
		if top, low := slices.Max(first[chat]), slices.Min(second[chat]); low <= top {
			t.Errorf("chat %d: after the loss numbering restarted at %d, at or below %d issued before", chat, low, top)
		}
		all := append(first[chat], second[chat]...)
		slices.Sort(all)
		if len(slices.Compact(all)) != goroutines*each*2/chats {
			t.Errorf("chat %d: a number was issued twice", chat)
		}
	}
	if n := nextChat(t, b, l, token); n != chats+1 {
		t.Errorf("first chat after the loss = %d, want %d", n, chats+1)
	}
}

func TestLostChatKeyRecovers(t *testing.T) {
	a, _, token, l := twoWithLedger(t, 2)
	for range 5 {
		n, err := a.NextMessageNumber(t.Context(), token, 1)
		if err != nil {
			t.Fatal(err)
		}
		l.issued(1, n)
	}
	deleteKeys(t, a, "{"+token+"}:c:1")

	saved := a.Recover
	a.Recover = nil
	if _, err := a.NextMessageNumber(t.Context(), token, 1); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Fatalf("without Recover, a lost chat: %v, want ENOTFOUND", err)
	}
	a.Recover = saved
	for chat, want := range map[int64]int64{1: 6, 2: 1} {
		if n, err := a.NextMessageNumber(t.Context(), token, chat); err != nil || n != want {
			t.Errorf("chat %d: next message %d, %v; want %d", chat, n, err, want)
		}
	}
	if n := nextChat(t, a, l, token); n != 3 {
		t.Errorf("next chat = %d, want 3", n)
	}
}

func TestConcurrentRecoveriesInstallOneValue(t *testing.T) {
	const each = 8
	prefix := testPrefix(t)
	token := instachat.NewToken()
	var arrived sync.WaitGroup
	arrived.Add(2)
	var calls [2]atomic.Int64
	seqs := []*Sequencer{open(t, prefix), open(t, prefix)}
	for i, s := range seqs {
		s.Recover = func(context.Context, instachat.Scope) (int64, error) {
			calls[i].Add(1)
			arrived.Done()
			arrived.Wait() // both processes are recovering at once
			return int64(10 * (i + 1)), nil
		}
	}
	got := gather(t, 2*each, func(g int, got func(chat, n int64)) error {
		n, err := seqs[g%2].NextChatNumber(t.Context(), token)
		got(0, n)
		return err
	})[0]
	for i := range calls {
		if n := calls[i].Load(); n != 1 {
			t.Errorf("sequencer %d called Recover %d times, want once", i, n)
		}
	}
	slices.Sort(got)
	base := got[0] - 1
	if base != 10 && base != 20 {
		t.Fatalf("chats after recovery start at %d, want 11 or 21", got[0])
	}
	for i, n := range got {
		if n != base+int64(i)+1 {
			t.Fatalf("chats after recovery: %v, want %d..%d", got, base+1, base+2*each)
		}
	}
}

func TestUnknownApplication(t *testing.T) {
	s := open(t, testPrefix(t))
	l := newLedger("")
	// The negative cache runs on a clock of the test's own, which moves only
	// when the test moves it: on a loaded machine the asks below can take
	// longer than any real window, and the window would end among them.
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	s.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	s.Recover, s.RecoverGrace, s.NotFoundTTL = l.Recover, time.Hour, 5*time.Second
	token := instachat.NewToken()
	ask := func() {
		t.Helper()
		gather(t, 20, func(g int, _ func(chat, n int64)) error {
			var err error
			if g%2 == 0 {
				_, err = s.NextChatNumber(t.Context(), token)
			} else {
				_, err = s.NextMessageNumber(t.Context(), token, 1)
			}
			if instachat.ErrorCode(err) != instachat.ENOTFOUND {
				return fmt.Errorf("unknown application: %w, want ENOTFOUND", err)
			}
			return nil
		})
	}
	start := time.Now()
	ask()
	ask()
	// Waiting the grace would take an hour; a minute is room enough for a
	// loaded machine and far below it.
	if elapsed := time.Since(start); elapsed > time.Minute {
		t.Fatalf("ENOTFOUND took %v: an unknown token must not wait RecoverGrace", elapsed)
	}
	if n := l.calls.Load(); n != 1 {
		t.Errorf("Recover called %d times in the negative-cache window, want once", n)
	}
	advance(s.NotFoundTTL - time.Nanosecond)
	ask()
	if n := l.calls.Load(); n != 1 {
		t.Errorf("Recover called %d times at the end of the window, want still once", n)
	}
	advance(time.Nanosecond)
	ask()
	if n := l.calls.Load(); n != 2 {
		t.Errorf("Recover called %d times after the window, want 2", n)
	}
	if err := s.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if n, err := s.NextChatNumber(t.Context(), token); err != nil || n != 1 {
		t.Errorf("after AddApplication, first chat %d, %v; want 1", n, err)
	}
}

func TestUnreachable(t *testing.T) {
	start := time.Now()
	_, err := Open("redis://127.0.0.1:1/0", "instachat-test:")
	if instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
		t.Errorf("Open on a closed port: %v, want EUNAVAILABLE", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Open on a closed port took %v", elapsed)
	}
}

func TestRedisGoesAway(t *testing.T) {
	prefix := testPrefix(t)
	via, stop := proxy(t, testenv.Lookup(t, "INSTACHAT_TEST_REDIS_URL"))
	s, err := Open(via, prefix)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	token := instachat.NewToken()
	if err := s.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	stop()
	start := time.Now()
	_, err = s.NextChatNumber(t.Context(), token)
	if instachat.ErrorCode(err) != instachat.EUNAVAILABLE || instachat.ErrorMessage(err) != "numbering unavailable" {
		t.Errorf("Redis gone: %v, want EUNAVAILABLE numbering unavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Redis gone: the answer took %v", elapsed)
	}
}

// proxy forwards a local port to the Redis at rawURL. It returns a URL to the
// same database through the port, and a function that cuts every connection
// and refuses new ones, as a Redis that goes away would.
func proxy(t *testing.T, rawURL string) (string, func()) {
	t.Helper()
	opt, err := rueidis.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", opt.InitAddress[0])
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			go io.Copy(up, c)
			go io.Copy(c, up)
		}
	}()
	stop := func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}
	t.Cleanup(stop)
	return fmt.Sprintf("redis://%s/%d", ln.Addr(), opt.SelectDB), stop
}

// TestRecoveryOutlivesImpatientCallers loses every key, then has clients
// that each give up after a quarter of the grace period ask for numbers
// again and again, as a client with a short timeout retrying would. The
// recovery must not die with the request that started it: it completes
// once (two Recover calls for the application, two for the chat: before and
// after the grace), every caller meanwhile joins it, and creates succeed
// again after the grace; numbering continues from the highest number
// issued, with no gap but the numbers of calls that gave up after the
// recovery.
func TestRecoveryOutlivesImpatientCallers(t *testing.T) {
	const grace = 400 * time.Millisecond
	// A recovery that died with its caller would never finish, as no caller
	// waits the grace; one that lives finishes in about twice the grace.
	// The bound is for a loaded machine.
	const within = 50 * grace
	a, _, token, l := twoWithLedger(t, 1)
	a.RecoverGrace = grace
	var (
		mu        sync.Mutex
		recovered time.Time // when the last Recover call returned
		wg        sync.WaitGroup
	)
	// A call that gives up after the last Recover call may have run the
	// script all the same, and Redis issued it a number no one was told.
	recoverFrom := a.Recover
	a.Recover = func(ctx context.Context, s instachat.Scope) (int64, error) {
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			recovered = time.Now()
		}()
		return recoverFrom(ctx, s)
	}
	first, err := a.NextMessageNumber(t.Context(), token, 1)
	if err != nil {
		t.Fatal(err)
	}
	l.issued(1, first)
	calls := l.calls.Load()
	deleteKeys(t, a, "*")

	start := time.Now()
	got := []int64{first}
	var gaveUp []time.Time // when each call that failed returned
	for range 4 {
		wg.Go(func() {
			for time.Since(start) < within {
				ctx, cancel := context.WithTimeout(t.Context(), grace/4)
				n, err := a.NextMessageNumber(ctx, token, 1)
				cancel()
				mu.Lock()
				if err == nil {
					got = append(got, n)
				} else {
					gaveUp = append(gaveUp, time.Now())
				}
				mu.Unlock()
				if err == nil {
					l.issued(1, n)
					return
				}
				if instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
					t.Errorf("during the recovery: %v, want EUNAVAILABLE", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(got) != 5 {
		t.Fatalf("%d of 4 clients with a %v timeout got a number within %v of the loss", len(got)-1, grace/4, within)
	}
	if n := l.calls.Load() - calls; n != 4 {
		t.Errorf("Recover called %d times for one loss, want 4 (the application and the chat, each before and after the grace)", n)
	}
	late := 0
	for _, at := range gaveUp {
		if !at.Before(recovered) {
			late++
		}
	}
	next, err := a.NextMessageNumber(t.Context(), token, 1)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if len(slices.Compact(slices.Clone(got))) != len(got) || got[len(got)-1] >= next {
		t.Fatalf("numbers %v, then %d: a number issued twice", got, next)
	}
	// Every number below next was answered, or taken by a call that gave up
	// after the recovery (without load, none: next is 6).
	skipped := next - 1 - int64(len(got))
	t.Logf("%d numbers skipped, %d calls gave up after the recovery", skipped, late)
	if skipped > int64(late) {
		t.Errorf("after the recovery: message %d after %v; %d numbers skipped, and only %d calls gave up after the recovery",
			next, got, skipped, late)
	}
}

// TestUnknownApplicationAskedOnce has many callers ask at once about one
// unknown token, for token after token: however their turns interleave
// with the recovery that asks Recover, Recover is asked once per token.
// A caller that looked in the negative cache just before the first
// recovery filled it, and reached the recoveries just after it ended, once
// asked again.
func TestUnknownApplicationAskedOnce(t *testing.T) {
	s := open(t, testPrefix(t))
	l := newLedger("")
	s.Recover, s.RecoverGrace, s.NotFoundTTL = l.Recover, time.Hour, time.Hour
	const tokens = 1000
	for i := range tokens {
		token := instachat.NewToken()
		gather(t, 20, func(g int, _ func(chat, n int64)) error {
			_, err := s.NextMessageNumber(t.Context(), token, int64(g+1))
			if instachat.ErrorCode(err) != instachat.ENOTFOUND {
				return fmt.Errorf("unknown application: %w, want ENOTFOUND", err)
			}
			return nil
		})
		if n := l.calls.Load(); n != int64(i+1) {
			t.Fatalf("token %d: Recover called %d times for %d unknown tokens, want once each", i+1, n, i+1)
		}
	}
}

// TestDeletedReceipts: a retry whose create was deleted since — the
// message (EraseReceipt), its chat, or the application (Delete) — is not
// answered as if it existed; before, the receipt replayed and the
// dispatcher answered 202 for a create the worker then dropped.
func TestDeletedReceipts(t *testing.T) {
	ctx := t.Context()
	prefix := testPrefix(t)
	a, b := open(t, prefix), open(t, prefix)
	token := instachat.NewToken()
	if err := a.AddApplication(ctx, token); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	once := func(s *Sequencer, scope instachat.Scope, key string) (instachat.Receipt, bool, error) {
		return s.NextNumberOnce(ctx, scope, key, instachat.Receipt{Fingerprint: "f-" + key, CreatedAt: at})
	}
	for _, key := range []string{"chat-1", "chat-2"} {
		if _, _, err := once(a, instachat.ChatsOf(token), key); err != nil {
			t.Fatal(err)
		}
	}
	chat1 := instachat.MessagesOf(token, 1)
	for _, key := range []string{"m-1", "m-2"} {
		if _, _, err := once(a, chat1, key); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.EraseReceipt(ctx, chat1, 1); err != nil {
		t.Fatal(err)
	}
	r, replayed, err := once(b, chat1, "m-1")
	if err != nil || !replayed || r.Number != 1 || r.Fingerprint != instachat.ErasedFingerprint || !r.CreatedAt.Equal(at) {
		t.Errorf("retry of an erased message's key = %+v %v %v; want message 1, erased, replayed", r, replayed, err)
	}
	ttl, err := a.client.Do(ctx, a.client.B().Pttl().Key(tokenKey(prefix, token, "k:m-1")).Build()).AsInt64()
	if err != nil || ttl <= 0 {
		t.Errorf("erased receipt's PTTL = %d %v; want its expiry kept", ttl, err)
	}
	if r, _, err := once(b, chat1, "m-2"); err != nil || r.Fingerprint != "f-m-2" {
		t.Errorf("retry of a message not deleted = %+v %v; want its receipt", r, err)
	}
	if err := a.EraseReceipt(ctx, chat1, 9); err != nil {
		t.Errorf("EraseReceipt of a number no key issued: %v", err)
	}

	if err := a.Delete(ctx, chat1); err != nil {
		t.Fatal(err)
	}
	if r, _, err := once(b, chat1, "m-2"); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("retry of a message of a deleted chat = %+v %v; want ENOTFOUND", r, err)
	}
	if r, _, err := once(b, instachat.ChatsOf(token), "chat-1"); err != nil || r.Number != 1 || r.Fingerprint != instachat.ErasedFingerprint {
		t.Errorf("retry of a deleted chat's key = %+v %v; want chat 1, erased", r, err)
	}
	if r, _, err := once(b, instachat.ChatsOf(token), "chat-2"); err != nil || r.Number != 2 || r.Fingerprint != "f-chat-2" {
		t.Errorf("retry of a chat not deleted = %+v %v; want its receipt", r, err)
	}
	if err := a.Delete(ctx, instachat.ChatsOf(token)); err != nil {
		t.Fatal(err)
	}
	if r, _, err := once(b, instachat.ChatsOf(token), "chat-2"); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("retry of a chat of a deleted application = %+v %v; want ENOTFOUND", r, err)
	}
}
