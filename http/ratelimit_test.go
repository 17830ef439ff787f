package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
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
	chatsNow, _, err := e.client.Chats(t.Context(), token, 10, "")
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
		if _, _, err := e.client.CreateChat(t.Context(), a.Token, ""); err != nil {
			t.Fatalf("create %d of a burst of %d: %v", i+1, limit.Burst, err)
		}
	}
	_, _, err = e.client.CreateChat(t.Context(), a.Token, "")
	var ie *instachat.Error
	if !errors.As(err, &ie) || ie.Code != instachat.ERATELIMITED {
		t.Fatalf("create past the burst: %v, want %s", err, instachat.ERATELIMITED)
	}
	if c, _, err := e.client.CreateChat(t.Context(), b.Token, ""); err != nil || c.Number != 1 {
		t.Fatalf("another application's create: %v, %v; want chat 1", c, err)
	}
}
