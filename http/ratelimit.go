package http

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/instachat/instachat"
)

// rateLimitTimeout bounds the wait for the limiter's decision. Past it the
// request goes through, as on any other failure of the limiter.
const rateLimitTimeout = 500 * time.Millisecond

// Each budget has keys of its own, so that limiters sharing one store
// (Redis) never mix them: creates count under the bare token, searches
// and application creates under these prefixes.
const (
	searchKeyPrefix      = "search:"
	applicationKeyPrefix = "applications:"
)

// rateLimited counts a chat or message create against its application
// token's budget before the body is read.
func (s *Server) rateLimited(h handler) handler {
	return s.limited(s.RateLimiter, h, func(_ *http.Request, res resource) (string, string) {
		return res.token, "too many creates for this application"
	})
}

// searchLimited counts a search against its application token's search
// budget, apart from the creates' one, before anything is read.
func (s *Server) searchLimited(h handler) handler {
	return s.limited(s.SearchLimiter, h, func(_ *http.Request, res resource) (string, string) {
		return searchKeyPrefix + res.token, "too many searches for this application"
	})
}

// applicationGuarded guards application creation, which needs no
// credential and so would let a client mint itself fresh budgets: with
// RequireAdminForApplications it needs the admin token; otherwise, with an
// ApplicationLimiter, it counts against the client address's budget. A
// request that carries the admin token is never limited.
func (s *Server) applicationGuarded(h handler) handler {
	limited := s.limited(s.ApplicationLimiter, h, func(r *http.Request, _ resource) (string, string) {
		return applicationKeyPrefix + s.clientAddress(r), "too many applications created from this address"
	})
	return func(w http.ResponseWriter, r *http.Request, res resource) error {
		if checkAdmin(http.Header{}, r, s.AdminToken) == nil {
			return h(w, r, res)
		}
		if s.RequireAdminForApplications {
			if err := checkAdmin(w.Header(), r, s.AdminToken); err != nil {
				return err
			}
		}
		return limited(w, r, res)
	}
}

// limited counts a request against the budget that key names in l (nil: no
// limit), and answers 429 when it is spent. Every answer it limited carries
// the budget in the RateLimit-Limit, RateLimit-Remaining and
// RateLimit-Reset headers (draft-ietf-httpapi-ratelimit-headers); a 429
// also carries Retry-After, and key's refusal message.
//
// It fails open: when the limiter cannot decide (Redis down or slow), the
// request goes through without those headers and a warning is logged. A
// limiter outage thus never stops requests; while it lasts, nothing limits
// them.
func (s *Server) limited(l instachat.RateLimiter, h handler, key func(*http.Request, resource) (key, refusal string)) handler {
	if l == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request, res resource) error {
		k, refusal := key(r, res)
		ctx, cancel := context.WithTimeout(r.Context(), rateLimitTimeout)
		d, err := l.Allow(ctx, k)
		cancel()
		if err != nil {
			s.Logger.WarnContext(r.Context(), "rate limiter failed; the request goes through unlimited",
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
			return instachat.Errorf(instachat.ERATELIMITED, "%s; retry in %d s", refusal, retry)
		}
		return h(w, r, res)
	}
}

// clientAddress is the address whose budget an application create counts
// against: the IP of the connection's peer, or, with TrustForwardedFor,
// the last X-Forwarded-For entry, the one the nearest proxy appended (the
// entries before it are the client's to forge). IPv6 addresses count by
// their /64, the block one host is usually given, so that a client cannot
// take a fresh budget from each address of its own network.
func (s *Server) clientAddress(r *http.Request) string {
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	if s.TrustForwardedFor {
		if fwd := r.Header.Values("X-Forwarded-For"); len(fwd) > 0 {
			list := strings.Split(fwd[len(fwd)-1], ",")
			if last := strings.TrimSpace(list[len(list)-1]); last != "" {
				addr = last
			}
		}
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr // not an IP (a unix socket, a proxy's odd entry): counted as it is
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// seconds rounds d up to whole seconds, as RateLimit-Reset and Retry-After
// count: a client that waits that long is never early.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}
