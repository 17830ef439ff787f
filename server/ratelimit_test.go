package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/testenv"
	"github.com/instachat/instachat/server"
)

const testAdminToken = "test-admin-token-0123456789abcdef"

// startWith opens an embedded server on cfg, logging at debug into logs.
func startWith(t *testing.T, cfg server.Config, logs io.Writer) *running {
	t.Helper()
	return startIn(t, cfg, t.TempDir(), logs)
}

// startIn is startWith on the data directory dir.
func startIn(t *testing.T, cfg server.Config, dir string, logs io.Writer) *running {
	t.Helper()
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", dir
	s := server.New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return serve(t, s, cfg.DataDir, http.StatusCreated)
}

// answer is one raw answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// code is the error code of an error answer, "" for any other.
func (a answer) code() string {
	var v struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(a.body, &v)
	return v.Error.Code
}

// number is the number of a created chat or message, 0 for any other answer.
func (a answer) number() int64 {
	var v struct{ Number int64 }
	json.Unmarshal(a.body, &v)
	return v.Number
}

// requestWith sends a request with an optional Authorization header.
func requestWith(t *testing.T, r *running, method, path, authorization, body string) answer {
	t.Helper()
	h := http.Header{}
	if authorization != "" {
		h.Set("Authorization", authorization)
	}
	return exchange(t, r, method, path, body, h)
}

// exchange sends a request with a JSON body, if any, and the header. A
// transport failure fails the test without stopping it, so goroutines may
// call it, and answers the zero answer.
func exchange(t *testing.T, r *running, method, path, body string, header http.Header) answer {
	t.Helper()
	req, err := http.NewRequest(method, r.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return answer{}
	}
	if body != "" {
		req.Header.Set("Content-Type", jsonType)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	res, err := r.hc.Do(req)
	if err != nil {
		t.Error(err)
		return answer{}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, raw}
}

// wantLimited fails unless a is a 429 with the JSON error, Retry-After in
// whole seconds (1 to max) and the RateLimit headers of a spent budget.
func wantLimited(t *testing.T, a answer, burst, maxRetry int) {
	t.Helper()
	if a.status != http.StatusTooManyRequests || a.code() != instachat.ERATELIMITED {
		t.Fatalf("create past the burst: %d %s, want 429 %s", a.status, a.body, instachat.ERATELIMITED)
	}
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > maxRetry {
		t.Errorf("Retry-After %q, want whole seconds from 1 to %d", a.header.Get("Retry-After"), maxRetry)
	}
	reset, err := strconv.Atoi(a.header.Get("RateLimit-Reset"))
	if err != nil || reset < retry {
		t.Errorf("RateLimit-Reset %q, want whole seconds, at least Retry-After %d", a.header.Get("RateLimit-Reset"), retry)
	}
	if a.header.Get("RateLimit-Limit") != strconv.Itoa(burst) || a.header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("RateLimit-Limit %q, RateLimit-Remaining %q; want %d, 0", a.header.Get("RateLimit-Limit"), a.header.Get("RateLimit-Remaining"), burst)
	}
}

// createApp creates an application and returns its token.
func createApp(t *testing.T, r *running, name string) string {
	t.Helper()
	app, err := r.client.CreateApplication(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return app.Token
}

// TestRateLimitEndToEnd runs the embedded server with a limit of one create
// per second and a burst of 3, and the admin token set.
func TestRateLimitEndToEnd(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.RateLimit, cfg.RateBurst, cfg.AdminToken = 1, 3, testAdminToken
	r := startWith(t, cfg, io.Discard)
	a, b := createApp(t, r, "a"), createApp(t, r, "b")
	chats := "/api/v1/applications/" + a + "/chats"

	for i := range 3 {
		res := requestWith(t, r, "POST", chats, "", `{"name":"c"}`)
		if res.status != http.StatusCreated || res.number() != int64(i+1) {
			t.Fatalf("create %d of the burst: %d %s, want 201 chat %d", i+1, res.status, res.body, i+1)
		}
		if got, want := res.header.Get("RateLimit-Remaining"), strconv.Itoa(2-i); got != want ||
			res.header.Get("RateLimit-Limit") != "3" || res.header.Get("RateLimit-Reset") == "" {
			t.Errorf("create %d: RateLimit-Limit %q, -Remaining %q, -Reset %q; want 3, %s, set", i+1,
				res.header.Get("RateLimit-Limit"), got, res.header.Get("RateLimit-Reset"), want)
		}
	}
	// Chats and messages share the token's budget.
	wantLimited(t, requestWith(t, r, "POST", chats, "", `{"name":"c"}`), 3, 1)
	wantLimited(t, requestWith(t, r, "POST", chats+"/1/messages", "", `{"body":"m"}`), 3, 1)

	// Another application has a budget of its own.
	if res := requestWith(t, r, "POST", "/api/v1/applications/"+b+"/chats", "", `{}`); res.status != http.StatusCreated || res.number() != 1 {
		t.Fatalf("another application's create: %d %s, want 201 chat 1", res.status, res.body)
	}

	// The refused creates stored nothing and took no number.
	if app, err := r.client.FindApplication(t.Context(), a); err != nil || app.ChatsCount != 3 {
		t.Fatalf("after refused creates: %+v, %v; want 3 chats", app, err)
	}
	if c, err := r.client.FindChat(t.Context(), a, 1); err != nil || c.MessagesCount != 0 {
		t.Fatalf("chat 1 after a refused message: %+v, %v; want no message", c, err)
	}
	// A client that waits Retry-After gets in with the next number.
	next := func(path, body string, want int64) {
		t.Helper()
		for range 5 {
			res := requestWith(t, r, "POST", path, "", body)
			if res.status == http.StatusTooManyRequests {
				wait, _ := strconv.Atoi(res.header.Get("Retry-After"))
				time.Sleep(time.Duration(wait) * time.Second)
				continue
			}
			if res.status != http.StatusCreated || res.number() != want {
				t.Fatalf("POST %s after waiting Retry-After: %d %s, want 201 number %d", path, res.status, res.body, want)
			}
			return
		}
		t.Fatalf("POST %s: still 429 after waiting Retry-After 5 times", path)
	}
	next(chats, `{"name":"c"}`, 4)
	next(chats+"/1/messages", `{"body":"m"}`, 1)

	// The admin token guards the list of every application and /metrics,
	// not the health check, the document or an application's own routes.
	for _, c := range []struct {
		path, authorization string
		status              int
	}{
		{"/api/v1/applications", "", 401},
		{"/api/v1/applications", "Bearer wrong-admin-token-0123456789", 401},
		{"/api/v1/applications", "Bearer " + testAdminToken, 200},
		{"/metrics", "", 401},
		{"/metrics", "Bearer " + a, 401},
		{"/metrics", "Bearer " + testAdminToken, 200},
		{"/healthz", "", 200},
		{"/openapi.json", "", 200},
		{"/api/v1/applications/" + a, "", 200},
		{"/api/v1/applications/" + a + "/chats", "", 200},
	} {
		res := requestWith(t, r, "GET", c.path, c.authorization, "")
		if res.status != c.status {
			t.Errorf("GET %s (Authorization %q): %d, want %d", c.path, c.authorization, res.status, c.status)
			continue
		}
		switch {
		case c.status == 401:
			if !strings.HasPrefix(res.header.Get("WWW-Authenticate"), `Bearer realm="instachat"`) || res.code() != instachat.EUNAUTHORIZED {
				t.Errorf("GET %s: 401 with WWW-Authenticate %q, body %s", c.path, res.header.Get("WWW-Authenticate"), res.body)
			}
			if bytes.Contains(res.body, []byte(a)) || bytes.Contains(res.body, []byte("instachat_http")) {
				t.Errorf("GET %s: a 401 shows what it guards: %s", c.path, res.body)
			}
		case c.path == "/api/v1/applications":
			if !bytes.Contains(res.body, []byte(a)) || !bytes.Contains(res.body, []byte(b)) {
				t.Errorf("the admin's list lacks an application: %s", res.body)
			}
		case c.path == "/metrics":
			if !bytes.Contains(res.body, []byte(`status="429"`)) {
				t.Errorf("/metrics does not count the 429 answers")
			}
		}
	}
}

// TestLogsNeverHoldAWholeToken drives every kind of answer, errors and a
// 429 included, through a server logging at debug, and looks for any
// application token, or the admin token, in what it logged.
func TestLogsNeverHoldAWholeToken(t *testing.T) {
	var logs testenv.Buffer
	cfg := server.DefaultConfig()
	cfg.RateLimit, cfg.RateBurst, cfg.AdminToken = 0.01, 4, testAdminToken
	r := startWith(t, cfg, &logs)
	a := createApp(t, r, "a")
	unknown := instachat.NewToken() // well formed, never issued
	app := "/api/v1/applications/" + a
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", app + "/chats", `{"name":"c"}`, 201},
		{"POST", app + "/chats/1/messages", `{"body":"hello there"}`, 201},
		{"GET", app, "", 200},
		{"PATCH", app, `{"name":"b"}`, 200},
		{"GET", app + "/chats/1/messages/search?q=hel", "", 200},
		{"PUT", app + "/chats/1/messages/1", `{"body":"edited"}`, 200},
		{"GET", app + "/chats/9", "", 404},
		{"GET", app + "/chats/1/messages/9", "", 404},
		{"POST", app + "/chats/9/messages", `{"body":"x"}`, 404},
		{"POST", app + "/chats", `{"name":`, 400},
		{"PATCH", app + "/chats/1", `{"name":5}`, 422},
		{"POST", app, "", 405},
		{"GET", "/api/v1/applications/" + unknown, "", 404},
		{"POST", "/api/v1/applications/" + unknown + "/chats", `{}`, 404},
		{"POST", app + "/chats", `{}`, 429}, // the burst of 4 is spent
		{"GET", "/api/v1/applications", "", 401},
		{"GET", "/metrics", "", 401},
	} {
		if res := requestWith(t, r, c.method, c.path, "", c.body); res.status != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, res.status, res.body, c.status)
		}
	}
	if res := requestWith(t, r, "GET", "/api/v1/applications", "Bearer "+testAdminToken, ""); res.status != 200 {
		t.Errorf("list with the admin token: %d", res.status)
	}
	r.stop(t) // shutdown logs too
	out := logs.String()
	// Tokens are logged by their start, so the test looks where they would be.
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, instachat.RedactToken(a)) || !strings.Contains(out, "status=429") {
		t.Fatalf("the logs lack the request lines this test inspects:\n%s", out)
	}
	for name, secret := range map[string]string{"application": a, "unknown": unknown, "admin": testAdminToken} {
		if strings.Contains(out, secret) {
			t.Errorf("the logs hold the whole %s token:\n%s", name, out)
		}
	}
}

// TestProductionRateLimitIsSharedAcrossProcesses runs two production
// processes on one Redis: the burst is the token's across both, not each's.
func TestProductionRateLimitIsSharedAcrossProcesses(t *testing.T) {
	cfg := productionConfig(t)
	cfg.RateLimit, cfg.RateBurst = 0.01, 4
	p, q := startProduction(t, cfg), startProduction(t, cfg)
	token := createApp(t, p, "a")
	chats := "/api/v1/applications/" + token + "/chats"
	for i := range 4 {
		r := []*running{p, q}[i%2]
		if res := requestWith(t, r, "POST", chats, "", `{}`); res.status != http.StatusAccepted || res.number() != int64(i+1) {
			t.Fatalf("create %d of the burst: %d %s, want 202 chat %d", i+1, res.status, res.body, i+1)
		}
	}
	for _, r := range []*running{p, q} {
		wantLimited(t, requestWith(t, r, "POST", chats, "", `{}`), 4, 100)
	}
	// The refused creates took no number: the next application's first
	// chat is 1, and this one's count settles at 4.
	other := createApp(t, q, "b")
	if res := requestWith(t, p, "POST", "/api/v1/applications/"+other+"/chats", "", `{}`); res.status != http.StatusAccepted || res.number() != 1 {
		t.Fatalf("another application's create: %d %s", res.status, res.body)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		app, err := p.client.FindApplication(t.Context(), token)
		if err == nil && app.ChatsCount != 4 {
			return fmt.Errorf("chats_count %d, want 4", app.ChatsCount)
		}
		return err
	})
}

func TestAdminTokenIsNeverShown(t *testing.T) {
	env := map[string]string{"INSTACHAT_ADMIN_TOKEN": testAdminToken}
	cfg, err := server.LoadConfig("instachat", nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || cfg.AdminToken != testAdminToken {
		t.Fatalf("LoadConfig: %v, admin token %q", err, cfg.AdminToken)
	}
	var dump bytes.Buffer
	for _, o := range server.Options {
		fmt.Fprintf(&dump, "%s=%s\n", o.Env, o.Value(cfg))
	}
	if strings.Contains(dump.String(), testAdminToken) || !strings.Contains(dump.String(), "INSTACHAT_ADMIN_TOKEN=xxxxx\n") {
		t.Errorf("config dump shows the admin token, or not that it is set:\n%s", dump.String())
	}
	// A refused value is not echoed either, from the environment or a flag.
	const short = "tooShort!"
	var stderr bytes.Buffer
	_, envErr := server.LoadConfig("instachat", nil, func(k string) string { return map[string]string{"INSTACHAT_ADMIN_TOKEN": short}[k] }, &stderr)
	_, flagErr := server.LoadConfig("instachat", []string{"-admin-token", short}, func(string) string { return "" }, &stderr)
	for _, err := range []error{envErr, flagErr} {
		if err == nil || strings.Contains(err.Error(), short) || !strings.Contains(err.Error(), "admin-token") &&
			!strings.Contains(err.Error(), "ADMIN_TOKEN") {
			t.Errorf("a refused admin token: %v; want an error naming the setting, not the value", err)
		}
	}
	if strings.Contains(stderr.String(), short) {
		t.Errorf("the refused admin token was written out: %s", stderr.String())
	}
}

func TestRateLimitConfig(t *testing.T) {
	get := func(env map[string]string) func(string) string { return func(k string) string { return env[k] } }
	cfg, err := server.LoadConfig("instachat", nil, get(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, on := cfg.RateLimitPolicy(); on {
		t.Error("rate limiting is on by default")
	}
	for _, c := range []struct {
		rate, burst string
		want        instachat.RateLimit
	}{
		{"10", "", instachat.RateLimit{PerSecond: 10, Burst: 10}}, // one second's worth
		{"0.5", "", instachat.RateLimit{PerSecond: 0.5, Burst: 1}},
		{"2.5", "0", instachat.RateLimit{PerSecond: 2.5, Burst: 3}},
		{"5", "20", instachat.RateLimit{PerSecond: 5, Burst: 20}},
	} {
		cfg, err := server.LoadConfig("instachat", nil, get(map[string]string{"INSTACHAT_RATE_LIMIT": c.rate, "INSTACHAT_RATE_BURST": c.burst}), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got, on := cfg.RateLimitPolicy(); !on || got != c.want {
			t.Errorf("rate %s, burst %q: %+v (on %v), want %+v", c.rate, c.burst, got, on, c.want)
		}
	}
	for _, c := range []struct{ env, v string }{
		{"INSTACHAT_RATE_LIMIT", "-1"}, {"INSTACHAT_RATE_LIMIT", "NaN"}, {"INSTACHAT_RATE_LIMIT", "Inf"},
		{"INSTACHAT_RATE_LIMIT", "x"}, {"INSTACHAT_RATE_LIMIT", "1e-12"}, {"INSTACHAT_RATE_LIMIT", "1e7"},
		{"INSTACHAT_RATE_BURST", "-1"}, {"INSTACHAT_RATE_BURST", "2000000"},
	} {
		if _, err := server.LoadConfig("instachat", nil, get(map[string]string{c.env: c.v}),
			io.Discard); err == nil || !strings.Contains(err.Error(), c.env) {
			t.Errorf("%s=%s: %v, want an error naming it", c.env, c.v, err)
		}
	}
}

// TestRateLimitCoversApplicationsAndSearch: with INSTACHAT_RATE_LIMIT=5 a
// client created 20 applications, each a fresh budget, and searched
// without any limit. With rate limiting on, application creates count per
// client address and searches per token, each on its own budget.
func TestRateLimitCoversApplicationsAndSearch(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.RateLimit, cfg.RateBurst = 0.01, 2 // searches: the same, counted apart
	cfg.ApplicationRateLimit = 0.05        // a burst of 3 (one minute's worth)
	r := startWith(t, cfg, io.Discard)
	var tokens []string
	for i := range 3 {
		res := requestWith(t, r, "POST", "/api/v1/applications", "", `{"name":"a"}`)
		if res.status != http.StatusCreated {
			t.Fatalf("application %d of a burst of 3: %d %s", i+1, res.status, res.body)
		}
		var app struct{ Token string }
		json.Unmarshal(res.body, &app)
		tokens = append(tokens, app.Token)
	}
	wantLimited(t, requestWith(t, r, "POST", "/api/v1/applications", "", `{"name":"a"}`), 3, 20)
	// The admin token is never limited.
	if res := requestWith(t, r, "POST", "/api/v1/applications", "Bearer "+r.Config.AdminToken, `{"name":"a"}`); res.status != http.StatusCreated {
		t.Errorf("application with the admin token past the burst: %d %s", res.status, res.body)
	}

	a := tokens[0]
	chat := "/api/v1/applications/" + a + "/chats"
	for range 2 { // spends the creates' burst of 2
		if res := requestWith(t, r, "POST", chat, "", `{}`); res.status != http.StatusCreated {
			t.Fatalf("create chat: %d %s", res.status, res.body)
		}
	}
	search := chat + "/1/messages/search?q=abc"
	for i := range 2 {
		if res := requestWith(t, r, "GET", search, "", ""); res.status != http.StatusOK {
			t.Fatalf("search %d of a burst of 2, creates spent: %d %s", i+1, res.status, res.body)
		}
	}
	res := requestWith(t, r, "GET", search, "", "")
	wantLimited(t, res, 2, 200)
	if !strings.Contains(string(res.body), "searches") {
		t.Errorf("429 of a search does not say so: %s", res.body)
	}
	if res := requestWith(t, r, "GET", "/api/v1/applications/"+tokens[1]+"/chats", "", ""); res.status != http.StatusOK {
		t.Errorf("another application's read: %d", res.status)
	}
}

// TestProductionApplicationAndSearchLimitsAreShared: on Redis, the budget
// of a client address and of a token's searches hold across processes.
func TestProductionApplicationAndSearchLimitsAreShared(t *testing.T) {
	cfg := productionConfig(t)
	cfg.RateLimit, cfg.RateBurst, cfg.ApplicationRateLimit = 0.01, 2, 0.05
	p, q := startProduction(t, cfg), startProduction(t, cfg)
	var token string
	for i := range 3 {
		res := requestWith(t, []*running{p, q}[i%2], "POST", "/api/v1/applications", "", `{"name":"a"}`)
		if res.status != http.StatusCreated {
			t.Fatalf("application %d of a burst of 3: %d %s", i+1, res.status, res.body)
		}
		var app struct{ Token string }
		json.Unmarshal(res.body, &app)
		token = app.Token
	}
	for _, r := range []*running{p, q} {
		wantLimited(t, requestWith(t, r, "POST", "/api/v1/applications", "", `{"name":"a"}`), 3, 20)
	}
	if res := requestWith(t, q, "POST", "/api/v1/applications/"+token+"/chats", "", `{}`); res.status != http.StatusAccepted {
		t.Fatalf("create chat: %d %s", res.status, res.body)
	}
	p.readable(t, "/api/v1/applications/"+token+"/chats/1")
	search := "/api/v1/applications/" + token + "/chats/1/messages/search?q=abc"
	for i := range 2 {
		if res := requestWith(t, []*running{p, q}[i%2], "GET", search, "", ""); res.status != http.StatusOK {
			t.Fatalf("search %d of a burst of 2: %d %s", i+1, res.status, res.body)
		}
	}
	for _, r := range []*running{p, q} {
		wantLimited(t, requestWith(t, r, "GET", search, "", ""), 2, 200)
	}
}

func TestRequireAdminForApplicationsConfig(t *testing.T) {
	get := func(env map[string]string) func(string) string { return func(k string) string { return env[k] } }
	cfg, err := server.LoadConfig("instachat", nil, get(map[string]string{"INSTACHAT_REQUIRE_ADMIN_FOR_APPLICATIONS": "true"}), io.Discard)
	if err != nil || !cfg.RequireAdminForApplications {
		t.Fatalf("LoadConfig: %v, require %v", err, cfg.RequireAdminForApplications)
	}
	// Embedded: the generated token is the one to use.
	r := startWith(t, cfg, io.Discard)
	res := requestWith(t, r, "POST", "/api/v1/applications", "", `{"name":"a"}`)
	if res.status != http.StatusUnauthorized || !strings.Contains(string(res.body), "INSTACHAT_ADMIN_TOKEN") {
		t.Errorf("create without the admin token: %d %s, want 401 naming INSTACHAT_ADMIN_TOKEN", res.status, res.body)
	}
	if res := requestWith(t, r, "POST", "/api/v1/applications", "Bearer "+r.Config.AdminToken, `{"name":"a"}`); res.status != http.StatusCreated {
		t.Errorf("create with the admin token: %d %s", res.status, res.body)
	}
	if _, err := server.LoadConfig("instachat", nil,
		get(map[string]string{"INSTACHAT_REQUIRE_ADMIN_FOR_APPLICATIONS": "maybe"}), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "INSTACHAT_REQUIRE_ADMIN_FOR_APPLICATIONS") {
		t.Errorf("a value that is not a boolean: %v, want an error naming the setting", err)
	}
	// Production without an admin token would let no one create one: it
	// refuses to start, saying why.
	pc := productionConfig(t)
	pc.AdminToken, pc.RequireAdminForApplications = "", true
	s := server.New(pc, nil)
	if err := s.Open(t.Context()); err == nil || !strings.Contains(err.Error(), "INSTACHAT_ADMIN_TOKEN") {
		s.Close(t.Context())
		t.Errorf("production requiring an admin token it lacks: %v, want a refusal naming INSTACHAT_ADMIN_TOKEN", err)
	}
}

func TestSearchAndApplicationRateLimitConfig(t *testing.T) {
	for _, c := range []struct {
		env                 map[string]string
		search, application instachat.RateLimit
		searchOn, appOn     bool
	}{
		{map[string]string{}, instachat.RateLimit{}, instachat.RateLimit{}, false, false},
		{map[string]string{"INSTACHAT_RATE_LIMIT": "5", "INSTACHAT_RATE_BURST": "20"},
			instachat.RateLimit{PerSecond: 5, Burst: 20}, instachat.RateLimit{PerSecond: 0.1, Burst: 6}, true, true},
		{map[string]string{"INSTACHAT_RATE_LIMIT": "5", "INSTACHAT_SEARCH_RATE_LIMIT": "2.5", "INSTACHAT_APPLICATION_RATE_LIMIT": "0"},
			instachat.RateLimit{PerSecond: 2.5, Burst: 3}, instachat.RateLimit{}, true, false},
		{map[string]string{"INSTACHAT_SEARCH_RATE_LIMIT": "2", "INSTACHAT_APPLICATION_RATE_LIMIT": "1"}, // rate limiting off
			instachat.RateLimit{}, instachat.RateLimit{}, false, false},
	} {
		cfg, err := server.LoadConfig("instachat", nil, func(k string) string { return c.env[k] }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got, on := cfg.SearchRateLimitPolicy(); on != c.searchOn || on && got != c.search {
			t.Errorf("%v: search %+v (on %v), want %+v (on %v)", c.env, got, on, c.search, c.searchOn)
		}
		if got, on := cfg.ApplicationRateLimitPolicy(); on != c.appOn || on && got != c.application {
			t.Errorf("%v: applications %+v (on %v), want %+v (on %v)", c.env, got, on, c.application, c.appOn)
		}
	}
	for _, env := range []string{"INSTACHAT_SEARCH_RATE_LIMIT", "INSTACHAT_APPLICATION_RATE_LIMIT", "INSTACHAT_TRUST_FORWARDED_FOR"} {
		if _, err := server.LoadConfig("instachat", nil,
			func(k string) string { return map[string]string{env: "-1"}[k] }, io.Discard); err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("%s=-1: %v, want an error naming it", env, err)
		}
	}
}
