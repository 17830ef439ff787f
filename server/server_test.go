package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/http/openapitest"
	"github.com/instachat/instachat/internal/testenv"
	"github.com/instachat/instachat/server"
)

// running is one real server on a random port with its own data directory.
type running struct {
	*server.Server
	// hc sends the tests' raw requests; it and client hold each exchange
	// to openapi.json (openapitest.Transport).
	hc     *http.Client
	client *instachathttp.Client
	dir    string
	// created is how chat and message creates answer: 201 when the row is
	// readable at once (embedded), 202 when a worker stores it shortly after
	// (production).
	created int
}

func start(t *testing.T, dir string) *running {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = dir
	s := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return serve(t, s, dir, http.StatusCreated)
}

// serve wraps an opened server for the test and stops it when the test ends.
func serve(t *testing.T, s *server.Server, dir string, created int) *running {
	validated := openapitest.Transport(t, instachathttp.OpenAPI(), nil)
	// Raw requests are bounded, so a server that hangs fails the test
	// instead of stalling it; the client's wait as long as their context.
	hc := &http.Client{Timeout: 15 * time.Second, Transport: validated}
	client := instachathttp.NewClient(s.URL(), &http.Client{Transport: validated})
	r := &running{Server: s, hc: hc, client: client, dir: dir, created: created}
	r.client.AdminToken = s.Config.AdminToken
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	if r.Server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
	r.Server = nil
}

// do sends a raw request and returns the status and the decoded JSON body.
func (r *running) do(t *testing.T, method, path, contentType, body string) (int, map[string]any) {
	t.Helper()
	st, _, v := r.send(t, method, path, contentType, body)
	return st, v
}

// send is do that also returns the answer's header. The list of every
// application is sent with the server's admin token.
func (r *running) send(t *testing.T, method, path, contentType, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, r.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if method == "GET" && strings.TrimSuffix(req.URL.Path, "/") == "/api/v1/applications" {
		req.Header.Set("Authorization", "Bearer "+r.Config.AdminToken)
	}
	res, err := r.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var v map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, raw)
		}
	}
	noInternalIDs(t, method+" "+path, v)
	return res.StatusCode, res.Header, v
}

// noInternalIDs fails when an answer carries a key that looks like an
// internal id anywhere in its tree.
func noInternalIDs(t *testing.T, where string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if k == "id" || strings.HasSuffix(k, "_id") {
				t.Errorf("%s: answer has key %q", where, k)
			}
			noInternalIDs(t, where, x)
		}
	case []any:
		for _, x := range v {
			noInternalIDs(t, where, x)
		}
	}
}

// testClient bounds requests outside the API, such as the console's pages,
// which openapi.json does not describe; API requests go through a
// running's hc or client.
var testClient = &http.Client{Timeout: 15 * time.Second}

const jsonType = "application/json"

func TestEveryRoute(t *testing.T) { everyRoute(t, start(t, t.TempDir())) }

// everyRoute calls every route once. A create answers r.created with the
// Location of the new resource; a 202 is followed until that Location reads,
// as a client would, so the rows after it see the resource.
func everyRoute(t *testing.T, r *running) {
	base := "/api/v1/applications"
	created := r.created

	st, app := r.do(t, "POST", base, jsonType, `{"name":"Acme"}`)
	if st != http.StatusCreated || app["name"] != "Acme" || app["chats_count"] != 0.0 {
		t.Fatalf("create application: %d %v", st, app)
	}
	tok := app["token"].(string)
	if !instachat.ValidToken(tok) {
		t.Fatalf("token %q is not 22 URL-safe characters", tok)
	}
	for _, c := range []struct {
		method, path, body string
		want               int
		check              func(map[string]any) bool
	}{
		{"GET", base, "", 200, func(v map[string]any) bool { return len(v["data"].([]any)) >= 1 }},
		{"GET", base + "/" + tok, "", 200, func(v map[string]any) bool { return v["token"] == tok }},
		{"PATCH", base + "/" + tok, `{"name":"Acme 2"}`, 200, func(v map[string]any) bool { return v["name"] == "Acme 2" }},
		{"PUT", base + "/" + tok, `{"name":"Acme 3"}`, 200, func(v map[string]any) bool { return v["name"] == "Acme 3" }},
		{"POST", base + "/" + tok + "/chats", `{"name":"general"}`, created,
			func(v map[string]any) bool { return v["number"] == 1.0 && v["name"] == "general" }},
		{"POST", base + "/" + tok + "/chats", "", created, func(v map[string]any) bool { return v["number"] == 2.0 }},
		{"GET", base + "/" + tok + "/chats", "", 200, func(v map[string]any) bool { return len(v["data"].([]any)) == 2 }},
		{"GET", base + "/" + tok + "/chats/1", "", 200, func(v map[string]any) bool { return v["name"] == "general" }},
		{"PATCH", base + "/" + tok + "/chats/1", `{"name":"random"}`, 200, func(v map[string]any) bool { return v["name"] == "random" }},
		{"PUT", base + "/" + tok + "/chats/1", `{"name":"lobby"}`, 200, func(v map[string]any) bool { return v["name"] == "lobby" }},
		{"POST", base + "/" + tok + "/chats/1/messages", `{"body":"Supercalifragilistic day"}`, created,
			func(v map[string]any) bool { return v["number"] == 1.0 }},
		{"POST", base + "/" + tok + "/chats/1/messages", `{"body":"hello there"}`, created, func(v map[string]any) bool { return v["number"] == 2.0 }},
		{"GET", base + "/" + tok + "/chats/1/messages", "", 200,
			func(v map[string]any) bool { return len(v["data"].([]any)) == 2 && v["next_cursor"] == nil }},
		{"GET", base + "/" + tok + "/chats/1/messages/2", "", 200, func(v map[string]any) bool { return v["body"] == "hello there" }},
		{"PATCH", base + "/" + tok + "/chats/1/messages/2", `{"body":"hello world"}`, 200,
			func(v map[string]any) bool { return v["body"] == "hello world" }},
		{"PUT", base + "/" + tok + "/chats/1/messages/2", `{"body":"goodbye world"}`, 200,
			func(v map[string]any) bool { return v["body"] == "goodbye world" }},
		{"GET", base + "/" + tok + "/chats/1/messages/search?q=califrag", "", 200, func(v map[string]any) bool {
			d := v["data"].([]any)
			return len(d) == 1 && d[0].(map[string]any)["number"] == 1.0
		}},
		{"GET", base + "/" + tok + "/chats/1", "", 200, func(v map[string]any) bool { return v["messages_count"] == 2.0 }},
		{"GET", base + "/" + tok, "", 200, func(v map[string]any) bool { return v["chats_count"] == 2.0 }},
		{"GET", "/healthz", "", 200, func(v map[string]any) bool { return v["status"] == "ok" }},
		{"GET", "/openapi.json", "", 200, func(v map[string]any) bool { return strings.HasPrefix(fmt.Sprint(v["openapi"]), "3.") }},
	} {
		ct := ""
		if c.body != "" {
			ct = jsonType
		}
		st, h, v := r.send(t, c.method, c.path, ct, c.body)
		if st != c.want || !c.check(v) {
			t.Errorf("%s %s: %d %v, want %d", c.method, c.path, st, v, c.want)
		}
		if c.method == "POST" && c.path != base && st == created {
			loc := h.Get("Location")
			if want := c.path + "/" + fmt.Sprint(v["number"]); loc != want {
				t.Errorf("POST %s: Location %q, want %q", c.path, loc, want)
			}
			r.readable(t, loc)
		}
	}
}

// readable waits until path answers 200: at once after a 201, shortly after
// a 202.
func (r *running) readable(t *testing.T, path string) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, func() error {
		if st, v := r.do(t, "GET", path, "", ""); st != http.StatusOK {
			return fmt.Errorf("GET %s: %d %v", path, st, v)
		}
		return nil
	})
}

// appWithChat creates an application named app holding one chat, number 1,
// named chat, as most tests begin.
func (r *running) appWithChat(t *testing.T, app, chat string) *instachat.Application {
	t.Helper()
	a, err := r.client.CreateApplication(t.Context(), app)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.client.CreateChat(t.Context(), a.Token, chat, ""); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestCreateAnswersLocation(t *testing.T) {
	r := start(t, t.TempDir())
	app, err := r.client.CreateApplication(context.Background(), "loc")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", r.URL()+"/api/v1/applications/"+app.Token+"/chats", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := "/api/v1/applications/" + app.Token + "/chats/1"; res.StatusCode != 201 || res.Header.Get("Location") != want {
		t.Fatalf("status %d, Location %q, want 201 and %q", res.StatusCode, res.Header.Get("Location"), want)
	}
}

func TestHostileInput(t *testing.T) {
	r := start(t, t.TempDir())
	ctx := context.Background()
	app := r.appWithChat(t, "hostile", "")
	if _, _, err := r.client.CreateMessage(ctx, app.Token, 1, "first", ""); err != nil {
		t.Fatal(err)
	}
	apps := "/api/v1/applications"
	chat := apps + "/" + app.Token + "/chats/1"
	unknown := instachat.NewToken()
	big := strings.Repeat("x", 64<<10+1)
	for _, c := range []struct {
		name, method, path, ct, body string
		want                         int
	}{
		{"malformed json", "POST", apps, jsonType, `{"name":`, 400},
		{"trailing data", "POST", apps, jsonType, `{"name":"a"} {}`, 400},
		{"not an object", "POST", apps, jsonType, `["a"]`, 422},
		{"wrong type", "POST", apps, jsonType, `{"name":5}`, 422},
		{"null name", "POST", apps, jsonType, `{"name":null}`, 422},
		{"missing name", "POST", apps, jsonType, `{}`, 422},
		{"empty name", "POST", apps, jsonType, `{"name":""}`, 422},
		{"blank name", "POST", apps, jsonType, `{"name":"   "}`, 422},
		{"name too long", "POST", apps, jsonType, `{"name":"` + strings.Repeat("é", 256) + `"}`, 422},
		{"invalid utf-8", "POST", apps, jsonType, "{\"name\":\"\xff\xfe\"}", 422},
		{"not json content type", "POST", apps, "text/plain", `{"name":"a"}`, 415},
		{"form content type", "POST", apps, "application/x-www-form-urlencoded", `name=a`, 415},
		{"request too large", "POST", chat + "/messages", jsonType, `{"body":"` + strings.Repeat("a", 1<<20) + `"}`, 413},
		{"body too long", "POST", chat + "/messages", jsonType, `{"body":"` + big + `"}`, 422},
		{"empty body", "POST", chat + "/messages", jsonType, `{"body":""}`, 422},
		{"body wrong type", "POST", chat + "/messages", jsonType, `{"body":["x"]}`, 422},
		{"body invalid utf-8", "POST", chat + "/messages", jsonType, "{\"body\":\"a\xc3\x28\"}", 422},
		{"chat name wrong type", "POST", apps + "/" + app.Token + "/chats", jsonType, `{"name":true}`, 422},
		{"unknown token", "GET", apps + "/" + unknown, "", "", 404},
		{"malformed token", "GET", apps + "/not-a-token", "", "", 404},
		{"unknown token create chat", "POST", apps + "/" + unknown + "/chats", "", "", 404},
		{"unknown token create message", "POST", apps + "/" + unknown + "/chats/1/messages", jsonType, `{"body":"x"}`, 404},
		{"unknown chat", "GET", apps + "/" + app.Token + "/chats/99", "", "", 404},
		{"unknown chat create message", "POST", apps + "/" + app.Token + "/chats/99/messages", jsonType, `{"body":"x"}`, 404},
		{"unknown message", "GET", chat + "/messages/99", "", "", 404},
		{"non-numeric chat", "GET", apps + "/" + app.Token + "/chats/abc", "", "", 400},
		{"zero chat", "GET", apps + "/" + app.Token + "/chats/0", "", "", 400},
		{"negative chat", "GET", apps + "/" + app.Token + "/chats/-1", "", "", 400},
		{"huge chat", "GET", apps + "/" + app.Token + "/chats/99999999999999999999999", "", "", 400},
		{"max int64 chat", "GET", apps + "/" + app.Token + "/chats/9223372036854775807", "", "", 404},
		{"non-numeric message", "GET", chat + "/messages/x1", "", "", 400},
		{"zero message", "GET", chat + "/messages/0", "", "", 400},
		{"bad limit", "GET", chat + "/messages?limit=0", "", "", 400},
		{"limit over max", "GET", chat + "/messages?limit=101", "", "", 400},
		{"limit not a number", "GET", chat + "/messages?limit=ten", "", "", 400},
		{"bad cursor", "GET", chat + "/messages?cursor=%%%", "", "", 400},
		{"forged cursor", "GET", chat + "/messages?cursor=bm90LWEtbnVtYmVy", "", "", 400},
		{"empty search", "GET", chat + "/messages/search?q=", "", "", 400},
		{"missing search", "GET", chat + "/messages/search", "", "", 400},
		{"search unknown chat", "GET", apps + "/" + app.Token + "/chats/42/messages/search?q=abc", "", "", 404},
		{"unknown route", "GET", "/api/v1/nothing", "", "", 404},
		{"unknown root route", "GET", "/wp-login.php", "", "", 404},
		{"wrong method on collection", "DELETE", apps, "", "", 405},
		{"wrong method on message", "POST", chat + "/messages/1", jsonType, `{"body":"x"}`, 405},
		{"wrong method on search", "POST", chat + "/messages/search", "", "", 405},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, v := r.do(t, c.method, c.path, c.ct, c.body)
			if st != c.want {
				t.Fatalf("status %d, want %d (%v)", st, c.want, v)
			}
			e, _ := v["error"].(map[string]any)
			if e == nil || e["code"] == "" || e["message"] == "" {
				t.Fatalf("error answer %v is not {\"error\":{\"code\",\"message\"}}", v)
			}
			if msg := fmt.Sprint(e["message"]); strings.Contains(strings.ToLower(msg), "sql") {
				t.Fatalf("error message leaks internals: %q", msg)
			}
		})
	}
	// Nothing above may have corrupted anything: the server is healthy and
	// the chat holds exactly its one message.
	if st, _ := r.do(t, "GET", "/healthz", "", ""); st != 200 {
		t.Fatalf("healthz %d after hostile input", st)
	}
	msgs, err := r.client.ListMessages(ctx, app.Token, 1, 0, 100)
	if err != nil || len(msgs) != 1 || msgs[0].Body != "first" {
		t.Fatalf("messages after hostile input: %v %v", msgs, err)
	}
}

func TestPaginationWalk(t *testing.T) {
	r := start(t, t.TempDir())
	ctx := context.Background()
	var tokens []string
	for i := 0; i < 7; i++ {
		app, err := r.client.CreateApplication(ctx, fmt.Sprint("app ", i))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, app.Token)
	}
	var seen []string
	for after, pages := "", 0; ; pages++ {
		page, err := r.client.ListApplications(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			seen = append(seen, a.Token)
		}
		if len(page) < 3 {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		after = page[len(page)-1].Token
	}
	if strings.Join(seen, ",") != strings.Join(tokens, ",") {
		t.Fatalf("applications walked %v, want creation order %v", seen, tokens)
	}

	tok := tokens[0]
	if _, _, err := r.client.CreateChat(ctx, tok, "c", ""); err != nil {
		t.Fatal(err)
	}
	const n = 45
	for i := 1; i <= n; i++ {
		if _, _, err := r.client.CreateMessage(ctx, tok, 1, fmt.Sprint("message ", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	for after := int64(0); ; {
		page, err := r.client.ListMessages(ctx, tok, 1, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 10 {
			t.Fatalf("page of %d over the limit", len(page))
		}
		for _, m := range page {
			got = append(got, m.Number)
		}
		if len(page) < 10 {
			break
		}
		after = page[len(page)-1].Number
	}
	assertRange(t, "walked messages", got, n)

	// Search pages by rank; the walk still yields every match once.
	var found []int64
	for offset := 0; ; offset += 7 {
		page, err := r.client.SearchMessages(ctx, instachat.SearchQuery{Token: tok, Chat: 1, Terms: []string{"message"}, Offset: offset, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			found = append(found, m.Number)
		}
		if len(page) < 7 {
			break
		}
	}
	slices.Sort(found)
	assertRange(t, "walked search results", found, n)
}

func TestConcurrentCreatesAreNumberedOneToN(t *testing.T) {
	concurrentCreates(t, start(t, t.TempDir()))
}

// concurrentCreates has 24 chats created at once, then 32 clients create 100
// messages each into 4 of them. Every chat must answer exactly 1..n, store
// exactly what was answered, and count it exactly within 5 seconds.
func concurrentCreates(t *testing.T, r *running) {
	ctx := context.Background()
	app, err := r.client.CreateApplication(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}

	const chats = 24
	chatNumbers := make(chan int64, chats)
	var wg sync.WaitGroup
	for i := 0; i < chats; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := r.client.CreateChat(ctx, app.Token, "", "")
			if err != nil {
				t.Error(err)
				return
			}
			chatNumbers <- c.Number
		}()
	}
	wg.Wait()
	close(chatNumbers)
	var got []int64
	for n := range chatNumbers {
		got = append(got, n)
	}
	slices.Sort(got)
	assertRange(t, "chat numbers", got, chats)

	const clients, each, target = 32, 100, 4
	answered, _, _ := createConcurrently(ctx, t, r, app.Token, clients, each, target, "", nil)
	if t.Failed() {
		t.FailNow()
	}
	total := 0
	for chat := int64(1); chat <= target; chat++ {
		total += len(answered[chat])
	}
	if total != clients*each {
		t.Fatalf("%d messages answered, want %d", total, clients*each)
	}

	// Counts are exact within 5 seconds of the last create.
	testenv.Eventually(t, 5*time.Second, func() error {
		if a, err := r.client.FindApplication(ctx, app.Token); err != nil || a.ChatsCount != chats {
			return fmt.Errorf("application: %+v %v, want chats_count %d", a, err, chats)
		}
		return nil
	})
	settled(t, r, app.Token, answered, 5*time.Second)
}

// settled waits, at most within, until every chat of answered counts what it
// answered, then checks that the chat stores exactly the answered messages.
func settled(t *testing.T, r *running, token string, answered []answers, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	testenv.Eventually(t, within, func() error {
		for chat := 1; chat < len(answered); chat++ {
			c, err := r.client.FindChat(ctx, token, int64(chat))
			if err != nil {
				return err
			}
			if want := int64(len(answered[chat])); c.MessagesCount != want {
				return fmt.Errorf("chat %d: messages_count %d, want %d", chat, c.MessagesCount, want)
			}
		}
		return nil
	})
	t.Logf("counts exact %v after the last create", time.Since(start).Round(time.Millisecond))
	for chat := 1; chat < len(answered); chat++ {
		rows, err := r.client.AllMessages(ctx, token, int64(chat))
		if err != nil {
			t.Fatal(err)
		}
		if err := answered[chat].exactlyOnce(rows); err != nil {
			t.Errorf("chat %d: %v", chat, err)
		}
	}
}

// createConcurrently has clients create each messages at once, round robin
// over chats 1..chats of the application, with bodies unique by tag. It adds
// what they were answered to answered (by chat; nil for a new one), returns
// it, and the lowest and highest number answered by chat. Every create must
// be answered 2xx, never with a number answered before: t fails otherwise,
// and the caller stops it (so that it may run on a goroutine of its own).
func createConcurrently(ctx context.Context, t *testing.T, r *running, token string, clients, each, chats int,
	tag string, answered []answers) (_ []answers, lowest, highest []int64) {
	t.Helper()
	if answered == nil {
		answered = make([]answers, chats+1)
		for c := range answered {
			answered[c] = answers{}
		}
	}
	lowest, highest = slices.Repeat([]int64{math.MaxInt64}, chats+1), make([]int64, chats+1)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range each {
				chat := int64((c+i)%chats + 1)
				body := fmt.Sprintf("%sclient %d says %d", tag, c, i)
				m, _, err := r.client.CreateMessage(ctx, token, chat, body, "")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				err = answered[chat].add(m.Number, body)
				lowest[chat], highest[chat] = min(lowest[chat], m.Number), max(highest[chat], m.Number)
				mu.Unlock()
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	return answered, lowest, highest
}

// answers are the messages one chat answered, body by number.
type answers map[int64]string

// add records an answered create; a number answered twice is an error.
func (a answers) add(number int64, body string) error {
	if prev, ok := a[number]; ok {
		return fmt.Errorf("number %d answered twice: %q and %q", number, prev, body)
	}
	a[number] = body
	return nil
}

// exactlyOnce reports how rows, a chat's stored messages, differ from the
// answers: every answered message stored once with its body, nothing else,
// and the numbers exactly 1..n.
func (a answers) exactlyOnce(rows []*instachat.Message) error {
	errs := a.differences(rows)
	for n := int64(1); n <= int64(len(a)); n++ {
		if _, ok := a[n]; !ok {
			errs = append(errs, fmt.Errorf("numbers are not exactly 1..%d: %d is missing", len(a), n))
			break
		}
	}
	return joinDifferences(errs)
}

// storedOnce is exactlyOnce where the numbers may have gaps: those a
// refused create took.
func (a answers) storedOnce(rows []*instachat.Message) error {
	return joinDifferences(a.differences(rows))
}

// differences lists how rows differ from the answers: a message stored
// twice, stored but never answered, stored with another body, or answered
// but not stored.
func (a answers) differences(rows []*instachat.Message) []error {
	seen := map[int64]bool{}
	var errs []error
	for _, m := range rows {
		body, ok := a[m.Number]
		switch {
		case seen[m.Number]:
			errs = append(errs, fmt.Errorf("message %d stored twice", m.Number))
		case !ok:
			errs = append(errs, fmt.Errorf("message %d (%q) stored but never answered", m.Number, m.Body))
		case m.Body != body:
			errs = append(errs, fmt.Errorf("message %d stored as %q, answered as %q", m.Number, m.Body, body))
		}
		seen[m.Number] = true
	}
	for n := range a {
		if !seen[n] {
			errs = append(errs, fmt.Errorf("message %d answered but not stored", n))
		}
	}
	return errs
}

// joinDifferences joins the first three differences and counts the rest.
func joinDifferences(errs []error) error {
	if len(errs) > 3 {
		errs = append(errs[:3], fmt.Errorf("and %d more differences", len(errs)-3))
	}
	return errors.Join(errs...)
}

func TestExactlyOnceCatchesEveryDifference(t *testing.T) {
	msg := func(n int64, body string) *instachat.Message { return &instachat.Message{Number: n, Body: body} }
	a := answers{1: "one", 2: "two", 3: "three"}
	if err := a.add(2, "again"); err == nil {
		t.Error("a number answered twice went unnoticed")
	}
	if err := a.exactlyOnce([]*instachat.Message{msg(1, "one"), msg(2, "two"), msg(3, "three")}); err != nil {
		t.Fatalf("the rows answered are refused: %v", err)
	}
	for name, rows := range map[string][]*instachat.Message{
		"duplicate": {msg(1, "one"), msg(2, "two"), msg(2, "two"), msg(3, "three")},
		"lost":      {msg(1, "one"), msg(3, "three")},
		"extra":     {msg(1, "one"), msg(2, "two"), msg(3, "three"), msg(4, "four")},
		"body":      {msg(1, "one"), msg(2, "TWO"), msg(3, "three")},
	} {
		if err := a.exactlyOnce(rows); err == nil {
			t.Errorf("%s: not caught", name)
		}
		if err := a.storedOnce(rows); err == nil {
			t.Errorf("%s: not caught where gaps are allowed", name)
		}
	}
	gap := answers{1: "one", 3: "three"}
	if err := gap.exactlyOnce([]*instachat.Message{msg(1, "one"), msg(3, "three")}); err == nil {
		t.Error("a gap in the numbers went unnoticed")
	}
	if err := gap.storedOnce([]*instachat.Message{msg(1, "one"), msg(3, "three")}); err != nil {
		t.Errorf("a gap is refused where gaps are allowed: %v", err)
	}
}

func TestRestartKeepsDataAndNumberingContinues(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	r := start(t, dir)
	app, err := r.client.CreateApplication(ctx, "durable")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, _, err := r.client.CreateChat(ctx, app.Token, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		if _, _, err := r.client.CreateMessage(ctx, app.Token, 2, fmt.Sprint("before ", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	r.stop(t)

	r = start(t, dir)
	m, _, err := r.client.CreateMessage(ctx, app.Token, 2, "after", "")
	if err != nil || m.Number != 6 {
		t.Fatalf("first message after restart: %+v %v, want number 6", m, err)
	}
	c, _, err := r.client.CreateChat(ctx, app.Token, "", "")
	if err != nil || c.Number != 3 {
		t.Fatalf("first chat after restart: %+v %v, want number 3", c, err)
	}
	if _, _, err := r.client.CreateMessage(ctx, app.Token, 1, "chat one still exists", ""); err != nil {
		t.Fatalf("chat created before restart is unknown after it: %v", err)
	}
	msgs, err := r.client.ListMessages(ctx, app.Token, 2, 0, 100)
	if err != nil || len(msgs) != 6 || msgs[0].Body != "before 0" {
		t.Fatalf("messages after restart: %d %v", len(msgs), err)
	}
}

func TestSearchThroughTheAPI(t *testing.T) { searchThroughTheAPI(t, start(t, t.TempDir())) }

// searchThroughTheAPI checks what a search finds: substrings, case, prefixes,
// every term, never another chat's messages, and edits.
func searchThroughTheAPI(t *testing.T, r *running) {
	ctx := context.Background()
	app, _ := r.client.CreateApplication(ctx, "search")
	other, _ := r.client.CreateApplication(ctx, "other")
	for _, tok := range []string{app.Token, app.Token, other.Token} {
		if _, _, err := r.client.CreateChat(ctx, tok, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	bodies := []string{
		"Supercalifragilistic expialidocious", // 1
		"Hi there, how are you",               // 2
		"this is unrelated",                   // 3
		"HELLO World",                         // 4
		"hello darkness my old friend",        // 5
	}
	for _, b := range bodies {
		if _, _, err := r.client.CreateMessage(ctx, app.Token, 1, b, ""); err != nil {
			t.Fatal(err)
		}
	}
	// The same words elsewhere must never leak into chat 1's results.
	for _, tok := range []string{app.Token, other.Token} {
		chat := int64(2)
		if tok == other.Token {
			chat = 1
		}
		if _, _, err := r.client.CreateMessage(ctx, tok, chat, "hello world califrag hi", ""); err != nil {
			t.Fatal(err)
		}
		r.readable(t, fmt.Sprintf("/api/v1/applications/%s/chats/%d/messages/1", tok, chat))
	}
	for n := range len(bodies) {
		r.readable(t, fmt.Sprintf("/api/v1/applications/%s/chats/1/messages/%d", app.Token, n+1))
	}
	search := func(q string) []int64 {
		t.Helper()
		page, err := r.client.SearchMessages(ctx, instachat.SearchQuery{Token: app.Token, Chat: 1, Terms: strings.Fields(q), Limit: 100})
		if err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		var nums []int64
		for _, m := range page {
			nums = append(nums, m.Number)
		}
		slices.Sort(nums)
		return nums
	}
	for q, want := range map[string]string{
		"califrag":    "[1]",   // substring inside a word
		"CALIFRAG":    "[1]",   // case
		"hi":          "[2]",   // short term: word prefix only, not "this"
		"hel":         "[4 5]", // prefix
		"hello world": "[4]",   // every term must match
		"orld hello":  "[4]",   // order does not matter
		"absent":      "[]",
	} {
		if got := fmt.Sprint(search(q)); got != want {
			t.Errorf("search %q = %s, want %s", q, got, want)
		}
	}
	if _, err := r.client.UpdateMessage(ctx, app.Token, 1, 4, "goodbye moon"); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(search("hello world")); got != "[]" {
		t.Errorf("after edit, search old text = %s, want []", got)
	}
	if got := fmt.Sprint(search("moon")); got != "[4]" {
		t.Errorf("after edit, search new text = %s, want [4]", got)
	}
}

func assertRange(t *testing.T, what string, nums []int64, n int) {
	t.Helper()
	if len(nums) != n {
		t.Fatalf("%s: %d numbers, want %d", what, len(nums), n)
	}
	for i, v := range nums {
		if v != int64(i+1) {
			t.Fatalf("%s: position %d holds %d: not exactly 1..%d (%v)", what, i, v, n, nums)
		}
	}
}
