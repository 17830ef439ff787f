package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/inmem"
)

// scriptedLimiter answers each Allow with the next decision of its script
// (the last one repeats) and records the keys it was asked about.
type scriptedLimiter struct {
	mu      sync.Mutex
	answers []instachat.RateDecision
	err     error
	block   bool // wait for the caller's context to end, then fail
	keys    []string
}

func (l *scriptedLimiter) Allow(ctx context.Context, key string) (instachat.RateDecision, error) {
	l.mu.Lock()
	l.keys = append(l.keys, key)
	block, err := l.block, l.err
	var d instachat.RateDecision
	if len(l.answers) > 0 {
		d = l.answers[0]
		if len(l.answers) > 1 {
			l.answers = l.answers[1:]
		}
	}
	l.mu.Unlock()
	if block {
		<-ctx.Done()
		return d, ctx.Err()
	}
	return d, err
}

func (l *scriptedLimiter) asked() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.keys...)
}

// sendWith sends a request with the header and returns the answer, its
// body read.
func sendWith(t *testing.T, e *testEnv, method, path string, header http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
}

// errorOf decodes the API's JSON error shape.
func errorOf(t *testing.T, raw []byte) (code, message string) {
	t.Helper()
	var body errorBody
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("answer %q is not the JSON error shape: %v", raw, err)
	}
	return body.Error.Code, body.Error.Message
}

// wantHeaders fails unless resp carries each header with the value.
func wantHeaders(t *testing.T, resp *http.Response, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := resp.Header.Values(k); len(got) != 1 || got[0] != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
}

func TestRateLimitHeadersAnd429(t *testing.T) {
	l := &scriptedLimiter{answers: []instachat.RateDecision{
		{Allowed: true, Limit: 5, Remaining: 4, Reset: 1200 * time.Millisecond},
		{Allowed: true, Limit: 5, Remaining: 0, Reset: 5 * time.Second},
		{Limit: 5, Reset: 4500 * time.Millisecond, RetryAfter: 300 * time.Millisecond},
		{Limit: 5, Reset: 4 * time.Second, RetryAfter: 2100 * time.Millisecond},
	}}
	e := newTestEnv(t, func(s *Server) { s.RateLimiter = l })
	token := e.seed(t) // its chat counts against the script's first answer
	chats := "/api/v1/applications/" + token + "/chats"

	resp, _ := sendWith(t, e, "POST", chats+"/1/messages", nil, strings.NewReader(`{"body":"hi"}`))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("allowed create: %d", resp.StatusCode)
	}
	// Reset 5 s → "5"; Remaining 0 still lets this one through.
	wantHeaders(t, resp, map[string]string{"RateLimit-Limit": "5", "RateLimit-Remaining": "0", "RateLimit-Reset": "5"})
	if resp.Header.Get("Retry-After") != "" {
		t.Errorf("an allowed create carries Retry-After %q", resp.Header.Get("Retry-After"))
	}

	for _, c := range []struct{ retry, reset string }{{"1", "5"}, {"3", "4"}} {
		resp, raw := sendWith(t, e, "POST", chats, nil, strings.NewReader(`{"name":"x"}`))
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("refused create: %d %s", resp.StatusCode, raw)
		}
		// Retry-After rounds up, so a client that waits it is never early.
		wantHeaders(t, resp, map[string]string{
			"Retry-After": c.retry, "RateLimit-Limit": "5", "RateLimit-Remaining": "0", "RateLimit-Reset": c.reset,
			"Content-Type": "application/json",
		})
		if code, msg := errorOf(t, raw); code != instachat.ERATELIMITED || !strings.Contains(msg, c.retry+" s") {
			t.Errorf("429 body: %s %q, want %s naming %s s", code, msg, instachat.ERATELIMITED, c.retry)
		}
	}
	// The refused creates reached nothing: chat 1 and its message only.
	chatsNow, err := e.client.ListChats(t.Context(), token, 0, 10)
	if err != nil || len(chatsNow) != 1 || chatsNow[0].MessagesCount != 1 {
		t.Fatalf("after two refused creates: %v chats, %v; want only chat 1 with its message", len(chatsNow), err)
	}
	if got := l.asked(); len(got) != 4 || got[0] != token || got[3] != token {
		t.Errorf("limiter asked about %q, want the application token 4 times", got)
	}
}

func TestRateLimitRefusesBeforeReadingTheBody(t *testing.T) {
	l := &scriptedLimiter{answers: []instachat.RateDecision{{Limit: 1, Reset: time.Second, RetryAfter: time.Second}}}
	e := newTestEnv(t, func(s *Server) { s.RateLimiter = l })
	path := "/api/v1/applications/" + instachat.NewToken() + "/chats"
	// Each would be 400, 415 or 404 once read or looked up; refused first,
	// each is 429.
	for _, c := range []struct{ contentType, body string }{
		{"application/json", `{"name":`},
		{"text/plain", `{"name":"x"}`},
		{"application/json", `{"name":"x"}`}, // an unknown application
	} {
		resp, raw := sendWith(t, e, "POST", path, http.Header{"Content-Type": {c.contentType}}, strings.NewReader(c.body))
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("refused create, %s %q: %d %s, want 429", c.contentType, c.body, resp.StatusCode, raw)
		}
	}
}

func TestRateLimitOnlyOnCreates(t *testing.T) {
	l := &scriptedLimiter{answers: []instachat.RateDecision{{Allowed: true, Limit: 100, Remaining: 99, Reset: time.Second}}}
	e := newTestEnv(t, func(s *Server) { s.RateLimiter = l })
	token := e.seed(t, "hello") // POST chats, POST messages: 2 asked
	app := "/api/v1/applications/" + token
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/api/v1/applications", `{"name":"b"}`},
		{"GET", "/api/v1/applications", ""},
		{"GET", app, ""},
		{"PATCH", app, `{"name":"c"}`},
		{"GET", app + "/chats", ""},
		{"GET", app + "/chats/1", ""},
		{"PUT", app + "/chats/1", `{"name":"d"}`},
		{"GET", app + "/chats/1/messages", ""},
		{"GET", app + "/chats/1/messages/1", ""},
		{"PATCH", app + "/chats/1/messages/1", `{"body":"e"}`},
		{"GET", app + "/chats/1/messages/search?q=hel", ""},
		{"GET", "/healthz", ""},
	} {
		resp, raw := e.raw(t, r.method, r.path, "", r.body) // with the admin token
		if resp.StatusCode >= 300 {
			t.Errorf("%s %s: %d %s", r.method, r.path, resp.StatusCode, raw)
		}
		if v := resp.Header.Get("RateLimit-Limit"); v != "" {
			t.Errorf("%s %s is limited (RateLimit-Limit %s)", r.method, r.path, v)
		}
	}
	if got := l.asked(); len(got) != 2 {
		t.Errorf("limiter asked %d times, want 2 (the seed's two creates)", len(got))
	}
	resp, _ := sendWith(t, e, "POST", app+"/chats/1/messages", nil, strings.NewReader(`{"body":"x"}`))
	wantHeaders(t, resp, map[string]string{"RateLimit-Limit": "100", "RateLimit-Remaining": "99", "RateLimit-Reset": "1"})
}

func TestRateLimitFailsOpen(t *testing.T) {
	for name, l := range map[string]*scriptedLimiter{
		"error": {err: instachat.Errorf(instachat.EUNAVAILABLE, "rate limiting unavailable")},
		"hangs": {block: true},
	} {
		t.Run(name, func(t *testing.T) {
			e := newTestEnv(t, func(s *Server) { s.RateLimiter = l })
			app, err := e.client.CreateApplication(t.Context(), "a")
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			resp, raw := sendWith(t, e, "POST", "/api/v1/applications/"+app.Token+"/chats", nil, strings.NewReader(`{"name":"x"}`))
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("create with the limiter failing: %d %s, want 201 (fail open)", resp.StatusCode, raw)
			}
			if took := time.Since(start); took > rateLimitTimeout+time.Second {
				t.Errorf("create took %v with a hanging limiter; the wait must be bounded by %v", took, rateLimitTimeout)
			}
			if v := resp.Header.Get("RateLimit-Limit"); v != "" {
				t.Errorf("a create let through unlimited claims RateLimit-Limit %s", v)
			}
			logs := e.logs.String()
			if !strings.Contains(logs, "rate limiter failed") || !strings.Contains(logs, "level=WARN") {
				t.Errorf("no warning logged: %q", logs)
			}
			if strings.Contains(logs, app.Token) {
				t.Errorf("the warning holds the whole token: %q", logs)
			}
			if !strings.Contains(logs, instachat.RedactToken(app.Token)) {
				t.Errorf("the warning does not name the token's start: %q", logs)
			}
		})
	}
}

// TestRateLimitWithTheEmbeddedLimiter runs the real in-process limiter
// behind the API: the burst passes, the next create is 429, and another
// application is not affected.
func TestRateLimitWithTheEmbeddedLimiter(t *testing.T) {
	limit := instachat.RateLimit{PerSecond: 0.01, Burst: 3}
	e := newTestEnv(t, func(s *Server) { s.RateLimiter = inmem.NewRateLimiter(limit) })
	a, err := e.client.CreateApplication(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.client.CreateApplication(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	for i := range limit.Burst {
		if _, _, err := e.client.CreateChat(t.Context(), a.Token, "", ""); err != nil {
			t.Fatalf("create %d of a burst of %d: %v", i+1, limit.Burst, err)
		}
	}
	_, _, err = e.client.CreateChat(t.Context(), a.Token, "", "")
	var ie *instachat.Error
	if !errors.As(err, &ie) || ie.Code != instachat.ERATELIMITED {
		t.Fatalf("create past the burst: %v, want %s", err, instachat.ERATELIMITED)
	}
	if c, _, err := e.client.CreateChat(t.Context(), b.Token, "", ""); err != nil || c.Number != 1 {
		t.Fatalf("another application's create: %v, %v; want chat 1", c, err)
	}
}

// TestApplicationCreatesAreLimitedPerAddress: creating applications needs
// no credential, so without a limit of its own each new token was a fresh
// budget of creates. The client address has a budget; the admin token is
// not limited.
func TestApplicationCreatesAreLimitedPerAddress(t *testing.T) {
	limit := instachat.RateLimit{PerSecond: 0.01, Burst: 3}
	e := newTestEnv(t, func(s *Server) { s.ApplicationLimiter = inmem.NewRateLimiter(limit) })
	post := func(h http.Header) (*http.Response, []byte) {
		return sendWith(t, e, "POST", "/api/v1/applications", h, strings.NewReader(`{"name":"a"}`))
	}
	for i := range limit.Burst {
		resp, raw := post(nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("application %d of a burst of %d: %d %s", i+1, limit.Burst, resp.StatusCode, raw)
		}
		wantHeaders(t, resp, map[string]string{"RateLimit-Limit": "3", "RateLimit-Remaining": fmt.Sprint(limit.Burst - 1 - i)})
	}
	resp, raw := post(nil)
	if code, msg := errorOf(t, raw); resp.StatusCode != http.StatusTooManyRequests ||
		code != instachat.ERATELIMITED || !strings.Contains(msg, "applications created from this address") {
		t.Fatalf("application past the burst: %d %s, want 429 naming the address's budget", resp.StatusCode, raw)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// A forged X-Forwarded-For is not another address.
	if resp, raw := post(http.Header{"X-Forwarded-For": {"203.0.113.7"}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("past the burst with a forged X-Forwarded-For: %d %s, want 429", resp.StatusCode, raw)
	}
	// The admin provisions as many as it likes, unlimited.
	for range 2 {
		if resp, raw := post(http.Header{"Authorization": {"Bearer " + testAdminToken}}); resp.StatusCode != http.StatusCreated ||
			resp.Header.Get("RateLimit-Limit") != "" {
			t.Errorf("application created with the admin token past the burst: %d %s (RateLimit-Limit %q), want 201 unlimited",
				resp.StatusCode, raw, resp.Header.Get("RateLimit-Limit"))
		}
	}
	// A wrong admin token is no way around the limit.
	if resp, raw := post(http.Header{"Authorization": {"Bearer " + testAdminToken + "x"}}); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("past the burst with a wrong admin token: %d %s, want 429", resp.StatusCode, raw)
	}
}

func TestClientAddress(t *testing.T) {
	for _, c := range []struct {
		remote    string
		forwarded []string
		trust     bool
		want      string
	}{
		{"192.0.2.1:5555", nil, false, "192.0.2.1"},
		{"192.0.2.1:5555", []string{"203.0.113.7"}, false, "192.0.2.1"},
		{"192.0.2.1:5555", []string{"203.0.113.7"}, true, "203.0.113.7"},
		// The entries before the proxy's are the client's to forge.
		{"192.0.2.1:5555", []string{"198.51.100.1, 203.0.113.7"}, true, "203.0.113.7"},
		{"192.0.2.1:5555", []string{"198.51.100.1", "203.0.113.8"}, true, "203.0.113.8"},
		{"192.0.2.1:5555", []string{""}, true, "192.0.2.1"},
		// IPv6 counts by /64; a mapped IPv4 address is that address.
		{"[2001:db8:1:2:aaaa::1]:5555", nil, false, "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:bbbb::9]:5555", nil, false, "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.1]:5555", nil, false, "192.0.2.1"},
		{"192.0.2.1:5555", []string{"2001:db8:1:2:cccc::3"}, true, "2001:db8:1:2::/64"},
		{"@", nil, false, "@"},
	} {
		s := &Server{TrustForwardedFor: c.trust}
		r := httptest.NewRequest("POST", "/api/v1/applications", nil)
		r.RemoteAddr = c.remote
		for _, v := range c.forwarded {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := s.clientAddress(r); got != c.want {
			t.Errorf("RemoteAddr %s, X-Forwarded-For %q, trusted %v: %q, want %q", c.remote, c.forwarded, c.trust, got, c.want)
		}
	}
}

// TestRequireAdminForApplications: the setting makes creating an
// application need the admin token; without one configured, no one can.
func TestRequireAdminForApplications(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.RequireAdminForApplications = true })
	post := func(authorization string) (*http.Response, []byte) {
		h := http.Header{}
		if authorization != "" {
			h.Set("Authorization", authorization)
		}
		return sendWith(t, e, "POST", "/api/v1/applications", h, strings.NewReader(`{"name":"a"}`))
	}
	for _, a := range []string{"", "Bearer wrong-token-0123456789", "Basic " + testAdminToken} {
		resp, raw := post(a)
		if code, msg := errorOf(t, raw); resp.StatusCode != http.StatusUnauthorized ||
			code != instachat.EUNAUTHORIZED || !strings.Contains(msg, "INSTACHAT_ADMIN_TOKEN") {
			t.Errorf("create with Authorization %q: %d %s, want 401 naming INSTACHAT_ADMIN_TOKEN", a, resp.StatusCode, raw)
		}
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="instachat"`) {
			t.Errorf("401 without the Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
		}
	}
	if resp, raw := post("Bearer " + testAdminToken); resp.StatusCode != http.StatusCreated {
		t.Fatalf("create with the admin token: %d %s", resp.StatusCode, raw)
	}
	// Only creation: the application's own routes stay open.
	token := e.seed(t, "hello")
	if resp, raw := sendWith(t, e, "GET", "/api/v1/applications/"+token, nil, nil); resp.StatusCode != 200 {
		t.Errorf("read an application: %d %s", resp.StatusCode, raw)
	}
}

// TestSearchesAreLimitedPerToken: searches count against a budget of their
// own per token, apart from creates, even in one limiter's store (as
// Redis is shared).
func TestSearchesAreLimitedPerToken(t *testing.T) {
	shared := inmem.NewRateLimiter(instachat.RateLimit{PerSecond: 0.01, Burst: 2})
	e := newTestEnv(t, func(s *Server) { s.RateLimiter, s.SearchLimiter = shared, shared })
	a, b := e.seed(t, "hello there"), e.seed(t, "hello again") // each spends its 2 creates
	search := func(token string) (*http.Response, []byte) {
		return sendWith(t, e, "GET", "/api/v1/applications/"+token+"/chats/1/messages/search?q=hel", nil, nil)
	}
	for i := range 2 {
		resp, raw := search(a)
		if resp.StatusCode != 200 || !strings.Contains(string(raw), "hello there") {
			t.Fatalf("search %d of a burst of 2, creates spent: %d %s", i+1, resp.StatusCode, raw)
		}
		wantHeaders(t, resp, map[string]string{"RateLimit-Limit": "2", "RateLimit-Remaining": fmt.Sprint(1 - i)})
	}
	resp, raw := search(a)
	if code, msg := errorOf(t, raw); resp.StatusCode != http.StatusTooManyRequests ||
		code != instachat.ERATELIMITED || !strings.Contains(msg, "searches") {
		t.Fatalf("search past the burst: %d %s, want 429 naming searches", resp.StatusCode, raw)
	}
	// Refused before anything is read: an unknown chat is 429 too.
	unknownChat := "/api/v1/applications/" + a + "/chats/9/messages/search?q=hel"
	if resp, raw := sendWith(t, e, "GET", unknownChat, nil, nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("search of an unknown chat past the burst: %d %s, want 429", resp.StatusCode, raw)
	}
	if resp, raw := search(b); resp.StatusCode != 200 {
		t.Errorf("another application's search: %d %s", resp.StatusCode, raw)
	}
	// Reads other than search are not limited.
	list := "/api/v1/applications/" + a + "/chats/1/messages"
	if resp, raw := sendWith(t, e, "GET", list, nil, nil); resp.StatusCode != 200 || resp.Header.Get("RateLimit-Limit") != "" {
		t.Errorf("list past the search burst: %d %s", resp.StatusCode, raw)
	}
}
