package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/instachat/instachat"
)

// RateLimiter limits requests per key across every process that shares the
// Redis, by GCRA (see instachat.RateLimit). Under the sequencer's prefix P,
// the key K (an application token) has one key:
//
//	P{K}:rate  the theoretical arrival time, in µs on Redis's clock
//
// One Lua script reads the time with TIME, decides and writes, so
// concurrent requests from any number of processes are counted exactly
// once, all on one clock however far the processes' clocks drift. The key
// expires once the token is back to its full burst, so an idle token costs
// nothing. The hash tag {K} keeps it in the slot of the application's
// numbering keys. TIME before a write needs effect replication, the only
// mode since Redis 7 and the default since Redis 5.
type RateLimiter struct {
	limit  instachat.RateLimit
	client rueidis.Client
	prefix string
	args   []string // the script's ARGV: the interval in µs, the burst
}

var _ instachat.RateLimiter = (*RateLimiter)(nil)

// RateLimiter returns a limiter on the sequencer's Redis connection and key
// prefix; limit.PerSecond must be positive. It shares the connection's
// lifetime: closing the sequencer ends it.
func (s *Sequencer) RateLimiter(limit instachat.RateLimit) *RateLimiter {
	return &RateLimiter{
		limit:  limit,
		client: s.client,
		prefix: s.prefix,
		args: []string{
			strconv.FormatInt(limit.Interval().Microseconds(), 10),
			strconv.Itoa(limit.Size()),
		},
	}
}

// rateScript is GCRA on KEYS[1], ARGV[1] the interval in µs and ARGV[2] the
// burst. It answers {allowed (0 or 1), remaining, reset µs, retry-after µs}.
// Numbers are written with %.0f: Lua would print a µs timestamp, 16 digits,
// in exponent form and lose precision.
var rateScript = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local nxt = tat + interval
local allow_at = nxt - burst * interval
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', string.format('%.0f', math.ceil((nxt - now) / 1000)))
return {1, math.floor((now - allow_at) / interval), nxt - now, 0}`)

// errRateUnavailable is what a caller sees of a failure to get a decision.
var errRateUnavailable = instachat.Errorf(instachat.EUNAVAILABLE, "rate limiting unavailable")

// Allow counts one request of key if the limit allows it now. It returns
// EUNAVAILABLE when Redis does not answer.
func (l *RateLimiter) Allow(ctx context.Context, key string) (instachat.RateDecision, error) {
	v, err := rateScript.Exec(ctx, l.client, []string{tokenKey(l.prefix, key, "rate")}, l.args).AsIntSlice()
	if err == nil && len(v) != 4 {
		err = fmt.Errorf("rate script answered %d values, want 4", len(v))
	}
	if err != nil {
		return instachat.RateDecision{}, fmt.Errorf("redis: %w: %w", errRateUnavailable, err)
	}
	return instachat.RateDecision{
		Allowed:    v[0] == 1,
		Limit:      l.limit.Size(),
		Remaining:  int(v[1]),
		Reset:      time.Duration(v[2]) * time.Microsecond,
		RetryAfter: time.Duration(v[3]) * time.Microsecond,
	}, nil
}
