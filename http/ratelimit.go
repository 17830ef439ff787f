package http

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/instachat/instachat"
)

// rateLimitTimeout bounds the wait for the limiter's decision. Past it the
// create goes through, as on any other failure of the limiter.
const rateLimitTimeout = 500 * time.Millisecond

// rateLimited counts a create against its application token's budget
// before the body is read, and answers 429 when the budget is spent. Every
// answer it limited carries the budget in the RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset headers
// (draft-ietf-httpapi-ratelimit-headers); a 429 also carries Retry-After.
//
// It fails open: when the limiter cannot decide (Redis down or slow), the
// create goes through without those headers and a warning is logged. A
// limiter outage thus never stops creates; while it lasts, nothing limits
// them.
func (s *Server) rateLimited(h handler) handler {
	if s.RateLimiter == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request, res resource) error {
		ctx, cancel := context.WithTimeout(r.Context(), rateLimitTimeout)
		d, err := s.RateLimiter.Allow(ctx, res.token)
		cancel()
		if err != nil {
			s.Logger.WarnContext(r.Context(), "rate limiter failed; the create goes through unlimited",
				"route", r.Pattern, "token", instachat.RedactToken(res.token), "err", err)
			return h(w, r, res)
		}
		hd := w.Header()
		hd.Set("RateLimit-Limit", strconv.Itoa(d.Limit))
		hd.Set("RateLimit-Remaining", strconv.Itoa(d.Remaining))
		hd.Set("RateLimit-Reset", strconv.FormatInt(seconds(d.Reset), 10))
		if !d.Allowed {
			retry := max(seconds(d.RetryAfter), 1)
			hd.Set("Retry-After", strconv.FormatInt(retry, 10))
			return instachat.Errorf(instachat.ERATELIMITED, "too many creates for this application; retry in %d s", retry)
		}
		return h(w, r, res)
	}
}

// seconds rounds d up to whole seconds, as RateLimit-Reset and Retry-After
// count: a client that waits that long is never early.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}
