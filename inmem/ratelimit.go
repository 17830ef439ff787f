package inmem

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/instachat/instachat"
)

// RateLimiter limits requests per key in this process, by GCRA
// (instachat.RateLimit.Decide): one timestamp per key that made a request
// recently. It suits the embedded default, where one process serves every
// create; processes that share the load need a shared limiter (redis).
//
// A key whose timestamp has passed is at its full burst, exactly as if it
// had never been seen, so it is forgotten: each shard drops such entries at
// most once per sweep interval, when it is next used. Memory is thus bounded
// by the keys active within about one burst's refill time, not by every key
// ever seen, and no goroutine needs stopping.
type RateLimiter struct {
	limit  instachat.RateLimit
	seed   maphash.Seed
	shards [rateShards]rateShard
	// now is the time on a monotonic clock, as a duration since the
	// limiter was made; tests replace it.
	now func() time.Duration
	// sweepEvery is how often at most a shard looks for idle entries.
	sweepEvery time.Duration
}

var _ instachat.RateLimiter = (*RateLimiter)(nil)

// rateShards spreads keys over locks, so that concurrent creates of
// different applications rarely wait for one another.
const rateShards = 32

type rateShard struct {
	mu        sync.Mutex
	tat       map[string]time.Duration // key → theoretical arrival time
	lastSweep time.Duration
}

// NewRateLimiter returns a limiter that applies limit to every key;
// limit.PerSecond must be positive.
func NewRateLimiter(limit instachat.RateLimit) *RateLimiter {
	start := time.Now()
	l := &RateLimiter{
		limit: limit,
		seed:  maphash.MakeSeed(),
		now:   func() time.Duration { return time.Since(start) },
		// A full bucket refills within Size intervals; sweeping about as
		// often keeps at most a few refills' worth of idle keys, and never
		// more than once a second.
		sweepEvery: max(time.Duration(limit.Size())*limit.Interval(), time.Second),
	}
	for i := range l.shards {
		l.shards[i].tat = map[string]time.Duration{}
	}
	return l
}

// Allow counts one request of key if the limit allows it now.
func (l *RateLimiter) Allow(_ context.Context, key string) (instachat.RateDecision, error) {
	sh := &l.shards[maphash.String(l.seed, key)%rateShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := l.now()
	if now-sh.lastSweep >= l.sweepEvery {
		sh.sweep(now)
	}
	d, tat := l.limit.Decide(sh.tat[key], now)
	if d.Allowed {
		sh.tat[key] = tat
	}
	return d, nil
}

// sweep forgets the keys back at their full burst.
func (sh *rateShard) sweep(now time.Duration) {
	for k, tat := range sh.tat {
		if tat <= now {
			delete(sh.tat, k)
		}
	}
	sh.lastSweep = now
}
