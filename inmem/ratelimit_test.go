package inmem

import (
	"hash/maphash"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
)

func TestRateLimiterConformance(t *testing.T) {
	conformance.TestRateLimiter(t, func(_ *testing.T, limit instachat.RateLimit) (a, b instachat.RateLimiter) {
		l := NewRateLimiter(limit)
		return l, l
	})
}

// keys returns how many keys l holds.
func (l *RateLimiter) keys() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.tat)
		sh.mu.Unlock()
	}
	return n
}

// clock is a manual clock for a RateLimiter.
type clock struct {
	mu  sync.Mutex
	now time.Duration
}

func (c *clock) get() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now += d
}

func TestRateLimiterForgetsIdleKeys(t *testing.T) {
	limit := instachat.RateLimit{PerSecond: 10, Burst: 5} // full again 500 ms after the last request
	l := NewRateLimiter(limit)
	c := &clock{}
	l.now = c.get
	const tokens = 10_000
	for range tokens {
		if d, _ := l.Allow(t.Context(), instachat.NewToken()); !d.Allowed {
			t.Fatal("a new key was refused")
		}
	}
	if n := l.keys(); n != tokens {
		t.Fatalf("%d keys held after %d active tokens, want all", n, tokens)
	}
	// One busy token spends its burst shortly before the sweep, so it is
	// still counted then; the others have gone quiet.
	busy := instachat.NewToken()
	c.add(l.sweepEvery * 9 / 10)
	for range limit.Burst {
		l.Allow(t.Context(), busy)
	}
	c.add(l.sweepEvery / 10)
	// Any use of a shard after the sweep interval sweeps it.
	for i := range l.shards {
		l.Allow(t.Context(), keyInShard(l, i))
	}
	// 100 ms after spending its burst, one request is back, not five.
	if d, _ := l.Allow(t.Context(), busy); !d.Allowed || d.Remaining != 0 {
		t.Errorf("the busy key after the sweep: %+v; want allowed, remaining 0 (it must be remembered)", d)
	}
	if n := l.keys(); n != rateShards+1 {
		t.Fatalf("%d keys held after all but %d were idle for %v; want only those", n, rateShards+1, l.sweepEvery)
	}
}

// keyInShard returns a new token that l keeps in shard i.
func keyInShard(l *RateLimiter, i int) string {
	for {
		if k := instachat.NewToken(); maphash.String(l.seed, k)%rateShards == uint64(i) {
			return k
		}
	}
}

func TestRateLimiterForgettingChangesNothing(t *testing.T) {
	// A key is forgotten only once it is back at its full burst, so a
	// request after the sweep gets what it would have without it.
	limit := instachat.RateLimit{PerSecond: 1, Burst: 3}
	l := NewRateLimiter(limit)
	c := &clock{}
	l.now = c.get
	key := instachat.NewToken()
	for range 3 {
		l.Allow(t.Context(), key)
	}
	c.add(l.sweepEvery) // 3 s: exactly the refill of the burst
	d, _ := l.Allow(t.Context(), key)
	if !d.Allowed || d.Remaining != 2 {
		t.Fatalf("after a full refill and a sweep: %+v; want allowed, remaining 2", d)
	}
	// A partly refilled key survives a sweep: spend the burst again, and
	// sweep when one request is back and two are still counted.
	l.Allow(t.Context(), key)
	l.Allow(t.Context(), key)
	c.add(2 * time.Second)
	for i := range l.shards {
		l.shards[i].mu.Lock()
		l.shards[i].sweep(l.now())
		l.shards[i].mu.Unlock()
	}
	if d, _ := l.Allow(t.Context(), key); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("a partly refilled key after a sweep: %+v; want allowed, remaining 1", d)
	}
}
