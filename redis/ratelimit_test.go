package redis

import (
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
	"github.com/instachat/instachat/internal/testenv"
)

func TestRateLimiterConformance(t *testing.T) {
	conformance.TestRateLimiter(t, func(t *testing.T, limit instachat.RateLimit) (a, b instachat.RateLimiter) {
		url, prefix := testenv.RedisPrefix(t)
		return openAt(t, url, prefix).RateLimiter(limit), openAt(t, url, prefix).RateLimiter(limit)
	})
}

// openAt returns a Sequencer with its own connections on the Redis at url.
func openAt(t *testing.T, url, prefix string) *Sequencer {
	t.Helper()
	s, err := Open(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestRateKeyExpiresWhenIdle checks that a token's key lives only until its
// burst is back, and sits in the application's hash tag.
func TestRateKeyExpiresWhenIdle(t *testing.T) {
	url, prefix := testenv.RedisPrefix(t)
	s := openAt(t, url, prefix)
	limit := instachat.RateLimit{PerSecond: 10, Burst: 3} // full again 300 ms after
	l := s.RateLimiter(limit)
	token := instachat.NewToken()
	for range limit.Burst {
		if _, err := l.Allow(t.Context(), token); err != nil {
			t.Fatal(err)
		}
	}
	key := tokenKey(prefix, token, "rate")
	ttl, err := s.client.Do(t.Context(), s.client.B().Pttl().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 300 {
		t.Fatalf("PTTL %s = %d ms, want in (0, 300]", key, ttl)
	}
	time.Sleep(time.Duration(ttl+50) * time.Millisecond)
	n, err := s.client.Do(t.Context(), s.client.B().Exists().Key(key).Build()).AsInt64()
	if err != nil || n != 0 {
		t.Fatalf("EXISTS %s after its TTL = %d, %v; want 0", key, n, err)
	}
	if d, err := l.Allow(t.Context(), token); err != nil || !d.Allowed || d.Remaining != limit.Burst-1 {
		t.Fatalf("after the key expired: %+v, %v; want the full burst", d, err)
	}
}

// TestRateLimiterUnavailable checks that a Redis that does not answer is
// EUNAVAILABLE, for the caller to fail open on.
func TestRateLimiterUnavailable(t *testing.T) {
	url, prefix := testenv.RedisPrefix(t)
	s, err := Open(url, prefix)
	if err != nil {
		t.Fatal(err)
	}
	l := s.RateLimiter(instachat.RateLimit{PerSecond: 1, Burst: 1})
	s.Close()
	_, err = l.Allow(t.Context(), instachat.NewToken())
	if instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
		t.Fatalf("Allow on a closed connection: %v, want EUNAVAILABLE", err)
	}
}
