package instachat

import (
	"context"
	"time"
)

// RateLimit is a per-token policy on creates: PerSecond sustained, with up to
// Burst at once after a quiet spell. It is the generic cell rate algorithm
// (GCRA), a token bucket that keeps one timestamp per token instead of a
// count: each allowed request moves the token's theoretical arrival time
// (TAT) one Interval later, and a request is refused while the TAT is more
// than Burst intervals ahead of now.
type RateLimit struct {
	PerSecond float64 // sustained requests per second; must be positive
	Burst     int     // requests allowed at once; below 1 means 1
}

// Interval is the time one request costs: 1 / PerSecond, at least 1µs so
// that every backend, Redis's microsecond clock included, can count it, and
// at most 1000 s (a rate of 0.001/s), so that a burst of MaxBurst intervals
// (1e9 s) stays far from overflowing a Duration.
func (l RateLimit) Interval() time.Duration {
	return time.Duration(min(max(float64(time.Second)/l.PerSecond, float64(time.Microsecond)), float64(1000*time.Second)))
}

// MaxBurst bounds Size.
const MaxBurst = 1_000_000

// Size is the burst, at least 1.
func (l RateLimit) Size() int { return min(max(l.Burst, 1), MaxBurst) }

// RateDecision is a limiter's answer to one request, with what the client
// is told in the RateLimit-* and Retry-After headers.
type RateDecision struct {
	Allowed   bool
	Limit     int // the burst: requests a quiet token may make at once
	Remaining int // requests the token may still make now
	// Reset is how long until the token's full burst is available again.
	Reset time.Duration
	// RetryAfter is, when refused, how long until one request is allowed
	// again; 0 when allowed.
	RetryAfter time.Duration
}

// RateLimiter limits requests per key — the application token — under one
// RateLimit fixed when the limiter is made. A limiter shared by several
// processes (Redis) counts every process's requests against one budget.
type RateLimiter interface {
	// Allow counts one request of key if the policy allows it now, and
	// says so; a refused request counts nothing. An error means the
	// limiter could not decide (e.g. EUNAVAILABLE): the caller chooses
	// whether to let the request through.
	Allow(ctx context.Context, key string) (RateDecision, error)
}

// Decide is GCRA in one step, for backends that keep the TAT themselves: tat
// is the key's stored theoretical arrival time (zero or past for a key that
// is idle), now the current time on the same clock. It returns the decision
// and the TAT to store if allowed; once now reaches that TAT the key is
// back to a full burst and its entry can be forgotten.
func (l RateLimit) Decide(tat, now time.Duration) (RateDecision, time.Duration) {
	interval, burst := l.Interval(), l.Size()
	tat = max(tat, now)
	next := tat + interval
	allowAt := next - time.Duration(burst)*interval // earliest time this request fits
	d := RateDecision{Limit: burst}
	if allowAt > now {
		d.Reset, d.RetryAfter = tat-now, allowAt-now
		return d, tat
	}
	d.Allowed = true
	d.Remaining = int((now - allowAt) / interval)
	d.Reset = next - now
	return d, next
}
