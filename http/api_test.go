package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/dispatch"
	"github.com/instachat/instachat/http/openapitest"
	"github.com/instachat/instachat/inmem"
	"github.com/instachat/instachat/internal/testenv"
	"github.com/instachat/instachat/search"
)

type testEnv struct {
	client *Client
	// hc is the client of every request the tests send; it holds each
	// exchange to openapi.json.
	hc      *http.Client
	url     string
	store   *memStore
	seq     *inmem.Sequencer
	queue   *memQueue
	indexer *memIndexer
	// dispatcher is the Server's Creator.
	dispatcher *dispatch.Dispatcher
	logs       testenv.Buffer
	// admin is the server's admin token, sent by client and raw.
	admin string
}

// newTestEnv serves both route groups over the in-memory doubles;
// configure adjusts the Server before it is served.
func newTestEnv(t *testing.T, configure ...func(*Server)) *testEnv {
	t.Helper()
	e, s := newDoubles()
	for _, f := range configure {
		f(s)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	e.hc = &http.Client{Transport: openapitest.Transport(t, openapi, srv.Client().Transport)}
	e.url, e.client, e.admin = srv.URL, NewClient(srv.URL, e.hc), s.AdminToken
	e.client.AdminToken = s.AdminToken
	return e
}

// newDoubles returns a Server of both route groups over fresh in-memory
// doubles, which e holds, logging into e.logs, with testAdminToken as its
// admin token.
func newDoubles() (*testEnv, *Server) {
	store, seq := newMemStore(), inmem.NewSequencer()
	e := &testEnv{store: store, seq: seq, queue: &memQueue{store: store}, indexer: &memIndexer{}}
	logger := slog.New(slog.NewTextHandler(&e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.dispatcher = dispatch.New(seq, e.queue)
	e.dispatcher.Store = store
	s := &Server{
		Store:    &search.Indexing{Store: store, Indexer: e.indexer, Logger: logger},
		Creator:  e.dispatcher,
		Searcher: search.New(store, memEngine{store}),
		API:      true, Dispatch: true, AdminToken: testAdminToken,
		Logger: logger,
	}
	return e, s
}

// raw sends a request the client would not, and returns the answer with its
// body read.
func (e *testEnv) raw(t *testing.T, method, path, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if e.admin != "" {
		req.Header.Set("Authorization", "Bearer "+e.admin)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// rawPage reads one page of a list as the server sends it, path being
// under /api/v1: its items, as the JSON has them, and its next cursor.
func rawPage[T any](e *testEnv, path string) ([]*T, string, error) {
	var p page[*T]
	if _, _, err := e.client.Do(context.Background(), http.MethodGet, path, nil, &p); err != nil {
		return nil, "", err
	}
	next := ""
	if p.NextCursor != nil {
		next = *p.NextCursor
	}
	return p.Data, next, nil
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// seed creates an application with chat 1 holding the messages.
func (e *testEnv) seed(t *testing.T, messages ...string) (token string) {
	t.Helper()
	ctx := context.Background()
	app, err := e.client.CreateApplication(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.client.CreateChat(ctx, app.Token, "", ""); err != nil {
		t.Fatal(err)
	}
	for _, body := range messages {
		if _, _, err := e.client.CreateMessage(ctx, app.Token, 1, body, ""); err != nil {
			t.Fatal(err)
		}
	}
	return app.Token
}

// wantCode fails unless err carries the code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := instachat.ErrorCode(err); got != code {
		t.Errorf("error %v: code %q, want %q", err, got, code)
	}
}

func TestApplications(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	app := must[*instachat.Application](t)(e.client.CreateApplication(ctx, "one"))
	if !instachat.ValidToken(app.Token) || app.Name != "one" || app.CreatedAt.IsZero() {
		t.Fatalf("created %+v", app)
	}
	if got := must[*instachat.Application](t)(e.client.FindApplication(ctx, app.Token)); *got != *app {
		t.Errorf("read %+v, want %+v", got, app)
	}
	if got := must[*instachat.Application](t)(e.client.UpdateApplication(ctx, app.Token, "uno")); got.Name != "uno" || got.Token != app.Token {
		t.Errorf("renamed %+v", got)
	}
	resp, body := e.raw(t, "PUT", "/api/v1/applications/"+app.Token, "application/json", `{"name":"eins"}`)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"eins"`) {
		t.Errorf("PUT answered %d %s", resp.StatusCode, body)
	}

	for _, name := range []string{"two", "three"} {
		must[*instachat.Application](t)(e.client.CreateApplication(ctx, name))
	}
	first, next, err := rawPage[instachat.Application](e, "/applications?limit=2")
	if err != nil || len(first) != 2 || first[0].Token != app.Token || next == "" {
		t.Fatalf("first page %v, next %q, %v", first, next, err)
	}
	second, next, err := rawPage[instachat.Application](e, "/applications?limit=2&cursor="+next)
	if err != nil || len(second) != 1 || second[0].Name != "three" || next != "" {
		t.Fatalf("second page %v, next %q, %v", second, next, err)
	}
	if all, err := e.client.ListApplications(ctx, "", 10); err != nil || len(all) != 3 || all[2].Name != "three" {
		t.Fatalf("ListApplications = %v, %v; want the three", all, err)
	}
	if after, err := e.client.ListApplications(ctx, first[1].Token, 2); err != nil || len(after) != 1 || after[0].Name != "three" {
		t.Fatalf("ListApplications after the second = %v, %v; want the third", after, err)
	}
	_, _, err = rawPage[instachat.Application](e, "/applications?limit=2&cursor="+instachat.EncodeCursor(1))
	wantCode(t, err, instachat.EBADREQUEST)
}

func TestCreateApplicationAnswer(t *testing.T) {
	e := newTestEnv(t)
	resp, body := e.raw(t, "POST", "/api/v1/applications", "application/json", `{"name":"a"}`)
	var app instachat.Application
	if err := json.Unmarshal(body, &app); err != nil || resp.StatusCode != 201 {
		t.Fatalf("answered %d %s", resp.StatusCode, body)
	}
	if loc := resp.Header.Get("Location"); loc != "/api/v1/applications/"+app.Token {
		t.Errorf("Location %q", loc)
	}
	for _, field := range []string{`"token"`, `"name"`, `"chats_count"`, `"created_at"`, `"updated_at"`} {
		if !bytes.Contains(body, []byte(field)) {
			t.Errorf("answer %s lacks %s", body, field)
		}
	}
	if bytes.Contains(body, []byte(`"id"`)) {
		t.Errorf("answer %s shows an id", body)
	}
}

// conflictingStore refuses the first conflicts application inserts as
// duplicates.
type conflictingStore struct {
	instachat.Store
	conflicts int
}

func (s *conflictingStore) CreateApplication(ctx context.Context, app *instachat.Application) error {
	if s.conflicts > 0 {
		s.conflicts--
		return instachat.Errorf(instachat.ECONFLICT, "application exists")
	}
	return s.Store.CreateApplication(ctx, app)
}

func TestCreateApplicationRetriesOnceOnConflict(t *testing.T) {
	for conflicts, want := range map[int]string{1: "", 2: instachat.ECONFLICT} {
		e := newTestEnv(t, func(s *Server) {
			d := s.Creator.(*dispatch.Dispatcher)
			d.Store = &conflictingStore{Store: d.Store, conflicts: conflicts}
		})
		app, err := e.client.CreateApplication(context.Background(), "a")
		wantCode(t, err, want)
		if err == nil && must[*instachat.Application](t)(e.client.FindApplication(context.Background(), app.Token)).Name != "a" {
			t.Errorf("after %d conflicts: application not stored", conflicts)
		}
	}
}

func TestChatsAndMessages(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	app := must[*instachat.Application](t)(e.client.CreateApplication(ctx, "a"))

	c := &instachat.Chat{}
	status, _, err := e.client.Do(ctx, http.MethodPost, AppPath(app.Token)+"/chats", map[string]string{"name": "general"}, c)
	if err != nil || status != 201 || c.Number != 1 || c.Name != "general" {
		t.Fatalf("created chat %+v, %d, %v", c, status, err)
	}
	c.Token = app.Token
	if got := must[*instachat.Chat](t)(e.client.FindChat(ctx, app.Token, 1)); *got != *c {
		t.Errorf("read chat %+v, want %+v", got, c)
	}
	if got := must[*instachat.Chat](t)(e.client.UpdateChat(ctx, app.Token, 1, "")); got.Name != "" || got.Token != app.Token {
		t.Errorf("renamed chat %+v", got)
	}
	if c, replayed, err := e.client.CreateChat(ctx, app.Token, "", ""); err != nil || replayed || c.Number != 2 || c.Token != app.Token {
		t.Fatalf("created chat %+v, %v, %v", c, replayed, err)
	}
	chats, next, err := rawPage[instachat.Chat](e, "/applications/"+app.Token+"/chats?limit=1")
	if err != nil || len(chats) != 1 || next == "" {
		t.Fatalf("chats %v, %q, %v", chats, next, err)
	}
	if chats, next, err = rawPage[instachat.Chat](e, "/applications/"+app.Token+"/chats?limit=1&cursor="+next); err != nil ||
		len(chats) != 1 || chats[0].Number != 2 || next != "" {
		t.Fatalf("chats %v, %q, %v", chats, next, err)
	}
	if chats, err = e.client.ListChats(ctx, app.Token, 1, 1); err != nil || len(chats) != 1 || chats[0].Number != 2 || chats[0].Token != app.Token {
		t.Fatalf("ListChats after 1 = %v, %v", chats, err)
	}

	m := &instachat.Message{}
	status, _, err = e.client.Do(ctx, http.MethodPost, ChatPath(app.Token, 1)+"/messages", map[string]string{"body": "hello"}, m)
	if err != nil || status != 201 || m.Number != 1 || m.Body != "hello" {
		t.Fatalf("created message %+v, %d, %v", m, status, err)
	}
	m.Token, m.Chat = app.Token, 1
	if got := must[*instachat.Message](t)(e.client.FindMessage(ctx, app.Token, 1, 1)); *got != *m {
		t.Errorf("read message %+v, want %+v", got, m)
	}
	msgs, err := e.client.ListMessages(ctx, app.Token, 1, 0, 20)
	if err != nil || len(msgs) != 1 || msgs[0].Chat != 1 {
		t.Fatalf("messages %v, %v", msgs, err)
	}
	if _, next, err := rawPage[instachat.Message](e, "/applications/"+app.Token+"/chats/1/messages"); err != nil || next != "" {
		t.Fatalf("the only page of messages: next %q, %v", next, err)
	}
	edited := must[*instachat.Message](t)(e.client.UpdateMessage(ctx, app.Token, 1, 1, "hello again"))
	if edited.Body != "hello again" || edited.Token != app.Token || edited.Chat != 1 || edited.UpdatedAt.Before(m.UpdatedAt) {
		t.Errorf("edited %+v", edited)
	}
	if len(e.indexer.indexed) != 1 || e.indexer.indexed[0].Body != "hello again" {
		t.Errorf("indexed %v, want the edit", e.indexer.indexed)
	}
	if len(e.queue.published) != 3 {
		t.Errorf("published %d creates, want 3", len(e.queue.published))
	}
}

func TestCreateAnswers(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.CreatedStatus = http.StatusAccepted })
	app := must[*instachat.Application](t)(e.client.CreateApplication(context.Background(), "a"))
	base := "/api/v1/applications/" + app.Token
	tests := []struct{ path, body, location string }{
		{base + "/chats", "", base + "/chats/1"}, // no body: an unnamed chat
		{base + "/chats", `{}`, base + "/chats/2"},
		{base + "/chats", `{"name":"x"}`, base + "/chats/3"},
		{base + "/chats/1/messages", `{"body":"hi"}`, base + "/chats/1/messages/1"},
	}
	for _, tt := range tests {
		resp, body := e.raw(t, "POST", tt.path, "", tt.body)
		if resp.StatusCode != 202 || resp.Header.Get("Location") != tt.location {
			t.Errorf("POST %s %q: %d Location %q, want 202 %q (%s)", tt.path, tt.body, resp.StatusCode, resp.Header.Get("Location"), tt.location, body)
		}
	}
}

func TestRequestErrors(t *testing.T) {
	e := newTestEnv(t, func(s *Server) {
		s.Limits = instachat.Limits{MaxNameChars: 3, MaxBodyBytes: 8}
		s.Creator.(*dispatch.Dispatcher).Limits = s.Limits // the dispatcher validates what it creates
	})
	base := "/api/v1/applications/" + e.seed(t)
	unknown := "/api/v1/applications/" + instachat.NewToken()
	tests := []struct {
		method, path, contentType, body string
		status                          int
	}{
		{"POST", "/api/v1/applications", "", ``, 422},
		{"POST", "/api/v1/applications", "", `{"name":null}`, 422},
		{"POST", "/api/v1/applications", "", `{"name":"  "}`, 422},
		{"POST", "/api/v1/applications", "", `{"name":"abcd"}`, 422},
		{"POST", "/api/v1/applications", "", `{"name":5}`, 422},
		{"POST", "/api/v1/applications", "", `{"name":"a"`, 400},
		{"POST", "/api/v1/applications", "", `{"name":"a","id":7}`, 400},
		{"POST", "/api/v1/applications", "text/plain", `{"name":"a"}`, 415},
		{"POST", "/api/v1/applications", "", `{"name":"` + strings.Repeat("a", 128<<10) + `"}`, 413},
		{"PATCH", base, "", `{}`, 422},
		{"PATCH", unknown, "", `{"name":"a"}`, 404},
		{"GET", "/api/v1/applications?limit=0", "", ``, 400},
		{"POST", base + "/chats", "", `{"name":"abcd"}`, 422},
		{"POST", base + "/chats", "", `{"name":1}`, 422},
		{"POST", unknown + "/chats", "", ``, 404},
		{"GET", unknown + "/chats", "", ``, 404},
		{"GET", base + "/chats/2", "", ``, 404},
		{"GET", base + "/chats/0", "", ``, 400},
		{"GET", base + "/chats?cursor=x", "", ``, 400},
		{"GET", base + "/chats?cursor=%%%", "", ``, 400},
		{"PUT", base + "/chats/1", "", `{}`, 422},
		{"PUT", base + "/chats/2", "", `{"name":""}`, 404},
		{"POST", base + "/chats/1/messages", "", `{}`, 422},
		{"POST", base + "/chats/1/messages", "", `{"body":""}`, 422},
		{"POST", base + "/chats/1/messages", "", `{"body":"123456789"}`, 422},
		{"POST", base + "/chats/1/messages", "", "{\"body\":\"\xc3\x28\"}", 422},
		{"POST", base + "/chats/2/messages", "", `{"body":"hi"}`, 404},
		{"GET", base + "/chats/2/messages", "", ``, 404},
		{"GET", base + "/chats/1/messages/1", "", ``, 404},
		{"GET", base + "/chats/1/messages/-1", "", ``, 400},
		{"PATCH", base + "/chats/1/messages/1", "", `{"body":"hi"}`, 404},
		{"PATCH", base + "/chats/1/messages/1", "", `{"body":" "}`, 422},
		{"GET", base + "/chats/1/messages/search", "", ``, 400},
		{"GET", base + "/chats/1/messages/search?q=a&limit=101", "", ``, 400},
		{"GET", base + "/chats/1/messages/search?q=a&cursor=" + instachat.EncodeCursor(1<<40), "", ``, 400},
		{"GET", base + "/chats/2/messages/search?q=a", "", ``, 404},
	}
	for _, tt := range tests {
		resp, body := e.raw(t, tt.method, tt.path, tt.contentType, tt.body)
		var eb errorBody
		if resp.StatusCode != tt.status || json.Unmarshal(body, &eb) != nil || statusOf[eb.Error.Code] != tt.status {
			t.Errorf("%s %s %.40q: %d %s, want %d", tt.method, tt.path, tt.body, resp.StatusCode, body, tt.status)
		}
	}
}

// An absent backend panics when called, which the middleware turns into 500:
// so 404 and 400 here prove that malformed paths touch no backend.
func TestMalformedPathsTouchNoBackend(t *testing.T) {
	h := (&Server{API: true, Dispatch: true}).Handler()
	token := instachat.NewToken()
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/api/v1/applications/short", 404},
		{"PATCH", "/api/v1/applications/" + strings.Repeat("!", 22), 404},
		{"POST", "/api/v1/applications/short/chats", 404},
		{"GET", "/api/v1/applications/short/chats/1/messages", 404},
		{"GET", "/api/v1/applications/" + token + "/chats/+1", 400},
		{"POST", "/api/v1/applications/" + token + "/chats/x/messages", 400},
		{"GET", "/api/v1/applications/" + token + "/chats/1/messages/99999999999999999999", 400},
		{"GET", "/api/v1/applications/" + token + "/chats/0/messages/search?q=a", 400},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, strings.NewReader(`{"name":"a"}`)))
		if w.Code != tt.status || tt.status == 400 && !strings.Contains(w.Body.String(), "bad parameter") {
			t.Errorf("%s %s: %d %s, want %d", tt.method, tt.path, w.Code, w.Body, tt.status)
		}
	}
}

func TestSearch(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	token := e.seed(t, "Hello world", "unrelated", "help wanted", "say hello")
	var got []int64
	cursor := ""
	for pages := 0; ; pages++ {
		msgs, next, err := rawPage[instachat.Message](e, "/applications/"+token+"/chats/1/messages/search?q=HEL&limit=2&cursor="+cursor)
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %v", pages, err)
		}
		for _, m := range msgs {
			got = append(got, m.Number)
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	if want := []int64{1, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("found %v page by page, want %v", got, want)
	}
	got = nil
	for offset := 0; ; offset += 2 {
		msgs, err := e.client.SearchMessages(ctx, instachat.SearchQuery{Token: token, Chat: 1, Terms: []string{"HEL"}, Offset: offset, Limit: 2})
		if err != nil || offset > 6 {
			t.Fatalf("offset %d: %v", offset, err)
		}
		for _, m := range msgs {
			if m.Token != token || m.Chat != 1 {
				t.Errorf("result %+v lacks its chat", m)
			}
			got = append(got, m.Number)
		}
		if len(msgs) < 2 {
			break
		}
	}
	if want := []int64{1, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	_, err := e.client.SearchMessages(ctx, instachat.SearchQuery{Token: token, Chat: 1, Terms: strings.Fields(" "), Limit: 20})
	wantCode(t, err, instachat.EBADREQUEST)
	_, err = e.client.SearchMessages(ctx, instachat.SearchQuery{Token: token, Chat: 2, Terms: strings.Fields("hello"), Limit: 20})
	wantCode(t, err, instachat.ENOTFOUND)
}

func TestEditSucceedsWhenIndexingFails(t *testing.T) {
	e := newTestEnv(t)
	e.indexer.err = errors.New("index down")
	ctx := context.Background()
	token := e.seed(t, "hi")
	if m := must[*instachat.Message](t)(e.client.UpdateMessage(ctx, token, 1, 1, "bye")); m.Body != "bye" {
		t.Errorf("edited %+v", m)
	}
	if !strings.Contains(e.logs.String(), "index down") {
		t.Errorf("indexing failure not logged: %s", e.logs.String())
	}
}

// failingStore fails every read of an application with a driver-like error.
type failingStore struct {
	instachat.Store
	err error
}

func (s failingStore) FindApplication(context.Context, string) (*instachat.Application, error) {
	return nil, s.err
}

func TestInternalErrorsDoNotLeak(t *testing.T) {
	e := newTestEnv(t, func(s *Server) {
		s.Store = failingStore{s.Store, errors.New("sql: no such column apps.secret_id")}
	})
	_, err := e.client.FindApplication(context.Background(), instachat.NewToken())
	var ierr *instachat.Error
	if !errors.As(err, &ierr) || ierr.Code != instachat.EINTERNAL || ierr.Message != "internal error" {
		t.Errorf("answered %v, want internal error", err)
	}
	if !strings.Contains(e.logs.String(), "secret_id") {
		t.Errorf("cause not logged: %s", e.logs.String())
	}
}

func TestUnavailable(t *testing.T) {
	e := newTestEnv(t)
	token := e.seed(t)
	e.queue.err = instachat.Errorf(instachat.EUNAVAILABLE, "queue is full")
	resp, body := e.raw(t, "POST", "/api/v1/applications/"+token+"/chats", "", "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !bytes.Contains(body, []byte(`"unavailable"`)) {
		t.Errorf("answered %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

func TestPanicAnswersJSON500(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{API: true, Store: struct{ instachat.Store }{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/applications/"+instachat.NewToken(), nil))
	if w.Code != 500 || w.Body.String() != `{"error":{"code":"internal","message":"internal error"}}`+"\n" {
		t.Errorf("answered %d %s", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "nil pointer") {
		t.Errorf("panic not logged: %s", logs.String())
	}
}

func TestRequestLogShortensToken(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{API: true, Store: newMemStore(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	token := instachat.NewToken()
	s.Handler().ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/api/v1/applications/"+token, nil))
	line := logs.String()
	for _, want := range []string{"method=GET", `route="GET /api/v1/applications/{token}"`, "status=404", "duration=", "token=" + token[:6] + "…"} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, token) {
		t.Errorf("log %q holds the whole token", line)
	}
}

// TestHealthz checks that /healthz says only "ok" or "unavailable" of each
// check: /healthz is open to anyone, and a check's error names addresses
// and internals (dial tcp 10.0.0.7:9092: connect: connection refused),
// which go to the log only.
func TestHealthz(t *testing.T) {
	ok := func(context.Context) error { return nil }
	down := func(context.Context) error { return errors.New("dial tcp 10.0.0.7:9092: connection refused") }
	tests := []struct {
		checks map[string]func(context.Context) error
		status int
		body   string
	}{
		{nil, 200, `{"checks":{},"status":"ok"}`},
		{map[string]func(context.Context) error{"store": ok, "queue": ok}, 200, `{"checks":{"queue":"ok","store":"ok"},"status":"ok"}`},
		{map[string]func(context.Context) error{"store": ok, "queue": down}, 503, `{"checks":{"queue":"unavailable","store":"ok"},"status":"unavailable"}`},
	}
	for _, tt := range tests {
		var logs testenv.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, nil))
		w := httptest.NewRecorder()
		(&Server{Checks: tt.checks, Logger: logger}).Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
		if w.Code != tt.status || strings.TrimSpace(w.Body.String()) != tt.body {
			t.Errorf("answered %d %s, want %d %s", w.Code, w.Body, tt.status, tt.body)
		}
		if failed := tt.status != 200; failed != strings.Contains(logs.String(), "check=queue") ||
			failed != strings.Contains(logs.String(), "10.0.0.7:9092: connection refused") {
			t.Errorf("answered %d; log %q, want the failed check and its error logged, and nothing else", w.Code, logs.String())
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	w := httptest.NewRecorder()
	(&Server{}).Handler().ServeHTTP(w, httptest.NewRequest("GET", "/openapi.json", nil))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || !bytes.Equal(w.Body.Bytes(), openapi) {
		t.Errorf("answered %d %q", w.Code, w.Header().Get("Content-Type"))
	}
}
