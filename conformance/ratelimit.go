package conformance

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// slow refills one request per 100 s, so nothing refills while a subtest
// runs and counts are exact.
var slow = instachat.RateLimit{PerSecond: 0.01, Burst: 5}

// TestRateLimiter checks a RateLimiter backend. open returns two handles on
// one limiter state under limit — the same value for an embedded backend,
// two clients for a shared one — so that one budget is shown to hold across
// processes.
func TestRateLimiter(t *testing.T, open func(t *testing.T, limit instachat.RateLimit) (a, b instachat.RateLimiter)) {
	t.Run("a burst is allowed, then requests are refused", func(t *testing.T) { testRateBurstThenRefused(t, open) })
	t.Run("each key has its own budget", func(t *testing.T) { testRateKeysAreIndependent(t, open) })
	t.Run("keys of any shape have their own budgets", func(t *testing.T) { testRateKeysOfAnyShape(t, open) })
	t.Run("a request is allowed again after Retry-After, the burst after Reset", func(t *testing.T) { testRateAllowedAgainAfterRetryAfter(t, open) })
	t.Run("concurrent requests get exactly the burst", func(t *testing.T) { testRateConcurrentRequestsGetExactlyTheBurst(t, open) })
}

func testRateBurstThenRefused(t *testing.T, open func(t *testing.T, limit instachat.RateLimit) (a, b instachat.RateLimiter)) {
	a, b := open(t, slow)
	key, interval := instachat.NewToken(), slow.Interval()
	for i := range slow.Burst {
		d := allow(t, []instachat.RateLimiter{a, b}[i%2], key)
		if !d.Allowed || d.Limit != slow.Burst || d.Remaining != slow.Burst-1-i || d.RetryAfter != 0 {
			t.Fatalf("request %d of a burst of %d: %+v; want allowed, limit %d, remaining %d", i+1, slow.Burst, d, slow.Burst, slow.Burst-1-i)
		}
		// Reset is when the whole burst is back: i+1 intervals ahead,
		// less the moments the test took.
		if d.Reset <= time.Duration(i)*interval || d.Reset > time.Duration(i+1)*interval {
			t.Errorf("request %d: reset %v, want in (%v, %v]", i+1, d.Reset, time.Duration(i)*interval, time.Duration(i+1)*interval)
		}
	}
	var first time.Duration
	for i, s := range []instachat.RateLimiter{b, a, b} {
		d := allow(t, s, key)
		if d.Allowed || d.Remaining != 0 || d.Limit != slow.Burst {
			t.Fatalf("request past the burst: %+v; want refused, remaining 0", d)
		}
		if d.RetryAfter <= 0 || d.RetryAfter > interval || d.Reset <= d.RetryAfter {
			t.Errorf("refused: retry after %v, reset %v; want retry in (0, %v] and reset after it", d.RetryAfter, d.Reset, interval)
		}
		// A refused request costs nothing: asking again does not push
		// the next chance further away.
		if i == 0 {
			first = d.RetryAfter
		} else if d.RetryAfter > first {
			t.Errorf("refused again: retry after %v, more than %v the first time", d.RetryAfter, first)
		}
	}
}

func testRateKeysAreIndependent(t *testing.T, open func(t *testing.T, limit instachat.RateLimit) (a, b instachat.RateLimiter)) {
	a, b := open(t, slow)
	spent, fresh := instachat.NewToken(), instachat.NewToken()
	for range slow.Burst {
		allow(t, a, spent)
	}
	if d := allow(t, b, spent); d.Allowed {
		t.Fatalf("the spent key is still allowed: %+v", d)
	}
	for i := range slow.Burst {
		if d := allow(t, b, fresh); !d.Allowed || d.Remaining != slow.Burst-1-i {
			t.Fatalf("another key, request %d: %+v; want allowed, remaining %d", i+1, d, slow.Burst-1-i)
		}
	}
}

// testRateKeysOfAnyShape: the API keys budgets other than the creates' by
// a prefix and a client address ("search:" + token,
// "applications:2001:db8::/64"); each such key is a budget of its own.
func testRateKeysOfAnyShape(t *testing.T, open func(t *testing.T, limit instachat.RateLimit) (a, b instachat.RateLimiter)) {
	a, b := open(t, slow)
	token := instachat.NewToken()
	keys := []string{token, "search:" + token, "applications:192.0.2.1", "applications:2001:db8:1:2::/64", "applications:" + token}
	for i, key := range keys {
		for j := range slow.Burst {
			if d := allow(t, []instachat.RateLimiter{a, b}[(i+j)%2], key); !d.Allowed || d.Remaining != slow.Burst-1-j {
				t.Fatalf("key %q, request %d, the keys before it spent: %+v; want allowed, remaining %d", key, j+1, d, slow.Burst-1-j)
			}
		}
		if d := allow(t, b, key); d.Allowed {
			t.Fatalf("key %q past its burst: %+v; want refused", key, d)
		}
	}
}

func testRateAllowedAgainAfterRetryAfter(t *testing.T, open func(t *testing.T, limit instachat.RateLimit) (a, b instachat.RateLimiter)) {
	fast := instachat.RateLimit{PerSecond: 5, Burst: 2} // one request per 200 ms
	a, b := open(t, fast)
	key := instachat.NewToken()
	allow(t, a, key)
	allow(t, b, key)
	d := allow(t, a, key)
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > fast.Interval() {
		t.Fatalf("past the burst: %+v; want refused, retry after in (0, %v]", d, fast.Interval())
	}
	time.Sleep(d.RetryAfter)
	if d := allow(t, b, key); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after waiting Retry-After: %+v; want allowed, remaining 0", d)
	}
	// One request refilled, not two.
	d = allow(t, a, key)
	if d.Allowed {
		t.Fatalf("right after the refilled request: %+v; want refused", d)
	}
	// Once Reset has passed, the whole burst is back.
	time.Sleep(d.Reset)
	if d := allow(t, b, key); !d.Allowed || d.Remaining != fast.Burst-1 {
		t.Fatalf("after waiting Reset: %+v; want allowed, remaining %d", d, fast.Burst-1)
	}
}

func testRateConcurrentRequestsGetExactlyTheBurst(t *testing.T, open func(t *testing.T, limit instachat.RateLimit) (a, b instachat.RateLimiter)) {
	limit := instachat.RateLimit{PerSecond: 0.01, Burst: 10}
	a, b := open(t, limit)
	key := instachat.NewToken()
	const goroutines = 64
	var (
		mu        sync.Mutex
		remaining []int // of the allowed requests
		refused   int
		wg        sync.WaitGroup
	)
	for g := range goroutines {
		s := []instachat.RateLimiter{a, b}[g%2]
		wg.Go(func() {
			d, err := s.Allow(t.Context(), key)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if d.Allowed {
				remaining = append(remaining, d.Remaining)
			} else {
				refused++
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// Each allowed request saw a different count left: 9, 8, … 0.
	slices.Sort(remaining)
	for i, r := range remaining {
		if r != i {
			t.Fatalf("remaining of the allowed requests, sorted: %v; want 0..%d, each once", remaining, limit.Burst-1)
		}
	}
	if len(remaining) != limit.Burst || refused != goroutines-limit.Burst {
		t.Fatalf("%d of %d concurrent requests allowed, %d refused; want exactly %d allowed", len(remaining), goroutines, refused, limit.Burst)
	}
}

// allow asks s about key and fails the test on an error.
func allow(t *testing.T, s instachat.RateLimiter, key string) instachat.RateDecision {
	t.Helper()
	d, err := s.Allow(t.Context(), key)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	return d
}
