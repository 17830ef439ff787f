package elasticsearch_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/elasticsearch"
	"github.com/instachat/instachat/search"
	"github.com/instachat/instachat/sqlite"
)

// These tests replay answers written from the Elasticsearch 8 documentation
// (see testdata/README.md) and check both sides of the conversation: what
// the package sends, and how it reads what comes back.

// token is the application of the messages the recorded answers speak of.
const token = "kQ3vT7mW2xYz8bN4pR6sLg"

// messages returns those messages, with times in a zone other than UTC so
// that the conversion to the index's UTC strings shows.
func messages() []*instachat.Message {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	return []*instachat.Message{
		{Token: token, Chat: 1, Number: 1, Body: "hello world", CreatedAt: at("2024-05-01T12:00:00.000001+02:00"),
			UpdatedAt: at("2024-05-01T12:00:00.000001+02:00")},
		{Token: token, Chat: 1, Number: 2, Body: "Hi-five", CreatedAt: at("2024-05-01T12:00:01.000002+02:00"),
			UpdatedAt: at("2024-05-01T12:05:00.250003+02:00")},
		{Token: token, Chat: 1, Number: 3, Body: "école", CreatedAt: at("2024-05-01T12:00:02.000003+02:00"),
			UpdatedAt: at("2024-05-01T12:00:02.000003+02:00")},
	}
}

// storeWithMessages returns a sqlite store holding the application of
// token, its chat 1 and the messages.
func storeWithMessages(t *testing.T) *sqlite.DB {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "instachat.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	if err := store.CreateApplication(t.Context(), &instachat.Application{Token: token, Name: "a", CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	creates := []instachat.Create{{Chat: &instachat.Chat{Token: token, Number: 1, CreatedAt: at, UpdatedAt: at}}}
	for _, m := range messages() {
		creates = append(creates, instachat.Create{Message: m})
	}
	if err := store.ApplyCreates(t.Context(), creates); err != nil {
		t.Fatal(err)
	}
	return store
}

// cluster replays recorded answers, by "METHOD /path", and keeps the
// requests it receives.
type cluster struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	answers  map[string]string   // file in testdata
	next     map[string][]string // files answered, one a request, before answers'
	requests []request
}

type request struct {
	Route       string // "METHOD /path"
	Query       string
	ContentType string
	Auth        string // "user:password" of basic authentication
	Body        []byte
}

func replay(t *testing.T, answers map[string]string) *cluster {
	// go-elasticsearch turns its compatibility mode on when this variable
	// is true, whatever Open asks, and then labels every body
	// application/vnd.elasticsearch+json; the tests check what is sent
	// without it.
	t.Setenv("ELASTIC_CLIENT_APIVERSIONING", "")
	c := &cluster{t: t, answers: map[string]string{}}
	maps.Copy(c.answers, answers)
	c.srv = httptest.NewServer(c)
	t.Cleanup(c.srv.Close)
	return c
}

func (c *cluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		c.t.Errorf("reading a request body: %v", err)
	}
	route := r.Method + " " + r.URL.Path
	user, password, _ := r.BasicAuth()
	c.mu.Lock()
	c.requests = append(c.requests, request{route, r.URL.RawQuery, r.Header.Get("Content-Type"), user + ":" + password, body})
	name, ok := c.answers[route]
	if files := c.next[route]; len(files) > 0 {
		name, ok, c.next[route] = files[0], true, files[1:]
	}
	c.mu.Unlock()
	if !ok {
		c.t.Errorf("unexpected request %s", route)
		http.Error(w, "no recorded answer", http.StatusNotImplemented)
		return
	}
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		c.t.Error(err)
		return
	}
	defer f.Close()
	res, err := http.ReadResponse(bufio.NewReader(f), nil)
	if err != nil {
		c.t.Errorf("testdata/%s: %v", name, err)
		return
	}
	maps.Copy(w.Header(), res.Header)
	w.WriteHeader(res.StatusCode)
	io.Copy(w, res.Body)
}

func (c *cluster) answer(route, file string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answers[route] = file
}

// answerInTurn answers the next requests of route with files, one each,
// then goes back to answer's.
func (c *cluster) answerInTurn(route string, files ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == nil {
		c.next = map[string][]string{}
	}
	c.next[route] = files
}

// take returns the requests received since the last take.
func (c *cluster) take() []request {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.requests
	c.requests = nil
	return r
}

// routes returns "METHOD /path", with "?query" when there is one, so that
// comparing routes checks the query parameters too.
func routes(reqs []request) []string {
	var rs []string
	for _, r := range reqs {
		if r.Query != "" {
			r.Route += "?" + r.Query
		}
		rs = append(rs, r.Route)
	}
	return rs
}

// open opens the index on a cluster where it exists with this package's
// mapping, and forgets the requests that took.
func open(t *testing.T, answers map[string]string) (*elasticsearch.Index, *cluster) {
	t.Helper()
	c := replay(t, answers)
	c.answer("HEAD /instachat-messages", "index_exists.http")
	c.answer("GET /instachat-messages/_mapping", "mapping.http")
	x, err := elasticsearch.Open(t.Context(), elasticsearch.Config{URL: c.srv.URL, Refresh: "wait_for"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	c.take()
	return x, c
}

// jsonEqual fails the test unless got and want hold the same JSON value.
func jsonEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := errors.Join(json.Unmarshal(got, &g), json.Unmarshal(want, &w)); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := instachat.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
	if code == instachat.EUNAVAILABLE && instachat.ErrorMessage(err) != "search unavailable" {
		t.Errorf("%s: client message %q, want %q", what, instachat.ErrorMessage(err), "search unavailable")
	}
}

func TestOpen(t *testing.T) {
	const (
		head    = "HEAD /instachat-messages"
		put     = "PUT /instachat-messages"
		mapping = "GET /instachat-messages/_mapping"
	)
	for _, tc := range []struct {
		name    string
		answers map[string]string
		want    []string // routes requested, in order
		err     string   // part of the error; "" when Open succeeds
	}{
		{"creates a missing index", map[string]string{head: "index_missing.http", put: "index_created.http"},
			[]string{head, put}, ""},
		{"verifies an existing index", map[string]string{head: "index_exists.http", mapping: "mapping.http"},
			[]string{head, mapping}, ""},
		{"verifies the index another process created meanwhile",
			map[string]string{head: "index_missing.http", put: "index_already_exists.http", mapping: "mapping.http"},
			[]string{head, put, mapping}, ""},
		{"refuses an index mapped otherwise", map[string]string{head: "index_exists.http", mapping: "mapping_dynamic.http"},
			[]string{head, mapping}, `index "instachat-messages" exists with another mapping`},
		// go-elasticsearch checks the first successful answer for it.
		{"refuses a server without X-Elastic-Product", map[string]string{head: "not_elasticsearch.http"},
			[]string{head}, "not Elasticsearch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := replay(t, tc.answers)
			_, err := elasticsearch.Open(t.Context(), elasticsearch.Config{URL: c.srv.URL})
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("Open: error %v, want one containing %q", err, tc.err)
			}
			reqs := c.take()
			if got := routes(reqs); !slices.Equal(got, tc.want) {
				t.Fatalf("requests %q, want %q", got, tc.want)
			}
			for _, r := range reqs {
				if r.Route != put {
					continue
				}
				if r.ContentType != "application/json" {
					t.Errorf("create index: Content-Type %q, want application/json", r.ContentType)
				}
				want, err := os.ReadFile("testdata/index.json")
				if err != nil {
					t.Fatal(err)
				}
				jsonEqual(t, "create index body (a change here needs a new index in every deployment)", r.Body, want)
			}
		})
	}
}

func TestOpenSendsTheURLsCredentials(t *testing.T) {
	c := replay(t, map[string]string{"HEAD /instachat-messages": "index_exists.http", "GET /instachat-messages/_mapping": "mapping.http"})
	u, err := url.Parse(c.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("instachat", "p@ss:word")
	if _, err := elasticsearch.Open(t.Context(), elasticsearch.Config{URL: u.String()}); err != nil {
		t.Fatalf("Open: %v", err)
	}
	for _, r := range c.take() {
		if r.Auth != "instachat:p@ss:word" {
			t.Errorf("%s: basic authentication %q, want instachat:p@ss:word", r.Route, r.Auth)
		}
	}
}

func TestOpenRefusesABadConfig(t *testing.T) {
	for _, cfg := range []elasticsearch.Config{
		{URL: "localhost:9200"},
		{URL: "http://localhost:9200", Refresh: "sometimes"},
		{URL: "http://localhost:9200", Index: "messages?pretty"},
	} {
		if _, err := elasticsearch.Open(t.Context(), cfg); err == nil {
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func TestIndexMessages(t *testing.T) {
	x, c := open(t, map[string]string{"POST /instachat-messages/_bulk": "bulk_conflict.http"})
	if err := x.IndexMessages(t.Context(), nil); err != nil || len(c.take()) != 0 {
		t.Errorf("IndexMessages of no messages: error %v or a request sent", err)
	}
	if err := x.IndexMessages(t.Context(), messages()); err != nil {
		t.Fatalf("IndexMessages answered with a version conflict: %v; the index holds a later edit, which is success", err)
	}
	reqs := c.take()
	if len(reqs) != 1 {
		t.Fatalf("requests %q, want one bulk request", routes(reqs))
	}
	r := reqs[0]
	if route := routes(reqs)[0]; route != "POST /instachat-messages/_bulk?refresh=wait_for" || r.ContentType != "application/x-ndjson" {
		t.Errorf("bulk request %s with Content-Type %q, want POST /instachat-messages/_bulk?refresh=wait_for with application/x-ndjson",
			route, r.ContentType)
	}
	if !bytes.HasSuffix(r.Body, []byte("\n")) {
		t.Errorf("bulk body does not end with a newline, which Elasticsearch requires")
	}
	// One action, then one document per message; the version is UpdatedAt
	// in microseconds, and the times are UTC.
	want := []string{
		`{"index": {"_id": "kQ3vT7mW2xYz8bN4pR6sLg/1/1", "version": 1714557600000001, "version_type": "external"}}`,
		`{"token": "kQ3vT7mW2xYz8bN4pR6sLg", "chat": 1, "number": 1, "body": "hello world",` +
			` "created_at": "2024-05-01T10:00:00.000001Z", "updated_at": "2024-05-01T10:00:00.000001Z"}`,
		`{"index": {"_id": "kQ3vT7mW2xYz8bN4pR6sLg/1/2", "version": 1714557900250003, "version_type": "external"}}`,
		`{"token": "kQ3vT7mW2xYz8bN4pR6sLg", "chat": 1, "number": 2, "body": "Hi-five",` +
			` "created_at": "2024-05-01T10:00:01.000002Z", "updated_at": "2024-05-01T10:05:00.250003Z"}`,
		`{"index": {"_id": "kQ3vT7mW2xYz8bN4pR6sLg/1/3", "version": 1714557602000003, "version_type": "external"}}`,
		`{"token": "kQ3vT7mW2xYz8bN4pR6sLg", "chat": 1, "number": 3, "body": "école",` +
			` "created_at": "2024-05-01T10:00:02.000003Z", "updated_at": "2024-05-01T10:00:02.000003Z"}`,
	}
	lines := strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("bulk body has %d lines, want %d:\n%s", len(lines), len(want), r.Body)
	}
	for i, line := range lines {
		jsonEqual(t, fmt.Sprintf("bulk line %d", i+1), []byte(line), []byte(want[i]))
	}
}

func TestIndexMessagesFailsOnRefusedItems(t *testing.T) {
	for _, tc := range []struct {
		answer string
		code   string
		want   []string // parts of the error
	}{
		{"bulk_failed.http", instachat.EINTERNAL, []string{"1 of 3 messages", instachat.RedactToken(token) + "/1/3", "document_parsing_exception"}},
		{"bulk_rejected.http", instachat.EUNAVAILABLE,
			[]string{"2 of 3 messages", instachat.RedactToken(token) + "/1/2", "es_rejected_execution_exception"}},
	} {
		x, _ := open(t, map[string]string{"POST /instachat-messages/_bulk": tc.answer})
		err := x.IndexMessages(t.Context(), messages())
		wantCode(t, tc.answer, err, tc.code)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to mention %q", tc.answer, err, w)
			}
		}
		// The error ends in logs, where tokens never appear whole.
		if err != nil && strings.Contains(err.Error(), token) {
			t.Errorf("%s: error %v holds the whole token", tc.answer, err)
		}
	}
}

func TestSearchMessageNumbers(t *testing.T) {
	x, c := open(t, map[string]string{"POST /instachat-messages/_search": "search.http"})
	// Short and long are counted in characters, not bytes: "éc" is short,
	// "日本語" long.
	terms, err := instachat.ParseSearchTerms("Hello éc 日本語 x")
	if err != nil {
		t.Fatal(err)
	}
	got, err := x.SearchMessageNumbers(t.Context(), instachat.SearchQuery{Token: token, Chat: 1, Terms: terms, Offset: 10, Limit: 5})
	if err != nil {
		t.Fatalf("SearchMessageNumbers: %v", err)
	}
	reqs := c.take()
	if got := routes(reqs); len(reqs) != 1 || got[0] != "POST /instachat-messages/_search" || reqs[0].ContentType != "application/json" {
		t.Fatalf("requests %q, want one POST /instachat-messages/_search with a JSON body", routes(reqs))
	}
	jsonEqual(t, "search body", reqs[0].Body, []byte(`{
		"query": {"bool": {
			"filter": [{"term": {"token": "kQ3vT7mW2xYz8bN4pR6sLg"}}, {"term": {"chat": 1}}],
			"must": [
				{"match_phrase": {"body.ngram": "hello"}},
				{"term": {"body.start": "éc"}},
				{"match_phrase": {"body.ngram": "日本語"}},
				{"term": {"body.start": "x"}}
			],
			"should": [{"term": {"body": "hello"}}, {"term": {"body": "éc"}}, {"term": {"body": "日本語"}}, {"term": {"body": "x"}}]
		}},
		"sort": [{"_score": "desc"}, {"number": "asc"}],
		"from": 10,
		"size": 5,
		"_source": false,
		"track_total_hits": false
	}`))

	// The hits in the answer's order, numbers and scores from their sort
	// values: nothing of a document's body is read.
	want := []instachat.SearchHit{{Number: 2, Score: 2.0794415}, {Number: 1, Score: 1.1507283}}
	if !slices.Equal(got, want) {
		t.Errorf("SearchMessageNumbers = %+v, want %+v", got, want)
	}
}

// TestSearchServesTheStoredRows: the index found messages 2 and 1 (the
// recorded answer), and the API answers with the rows the store holds now,
// in the index's order — not with what the index held. This package used
// to build results from each hit's _source, so an edit the index had not
// taken yet showed the old body.
func TestSearchServesTheStoredRows(t *testing.T) {
	x, _ := open(t, map[string]string{"POST /instachat-messages/_search": "search.http"})
	store := storeWithMessages(t)
	msgs := messages()
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	edited, err := store.UpdateMessage(t.Context(), token, 1, 2, "an edit the index has not taken", at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got, err := search.New(store, x).SearchMessages(t.Context(), instachat.SearchQuery{Token: token, Chat: 1, Terms: []string{"hi"}, Limit: 5})
	if err != nil {
		t.Fatalf("SearchMessages: %v", err)
	}
	if len(got) != 2 || got[0].Number != 2 || got[1].Number != 1 {
		t.Fatalf("SearchMessages = %d messages %v; want 2 then 1, the index's order", len(got), got)
	}
	if got[0].Body != edited.Body || !got[0].UpdatedAt.Equal(edited.UpdatedAt) {
		t.Errorf("message 2 = %q updated %v; want the stored edit %q of %v", got[0].Body, got[0].UpdatedAt, edited.Body, edited.UpdatedAt)
	}
	if got[1].Body != msgs[0].Body || !got[1].CreatedAt.Equal(msgs[0].CreatedAt) {
		t.Errorf("message 1 = %+v; want the stored %+v", *got[1], *msgs[0])
	}
}

// TestSearchRefusesAHitWithoutItsSortValues: the number comes from the
// hit's sort values, so an answer without them (not one to the sort this
// package sends) is an error, not a hit numbered 0.
func TestSearchRefusesAHitWithoutItsSortValues(t *testing.T) {
	x, _ := open(t, map[string]string{"POST /instachat-messages/_search": "search_no_sort.http"})
	hits, err := x.SearchMessageNumbers(t.Context(), instachat.SearchQuery{Token: token, Chat: 1, Terms: []string{"hi"}, Limit: 5})
	if err == nil || instachat.ErrorCode(err) != instachat.EINTERNAL || strings.Contains(err.Error(), token) {
		t.Errorf("search answered without sort values = %v, %v; want an internal error that does not quote the token", hits, err)
	}
}

func TestSearchMessagesStopsAtTheResultWindow(t *testing.T) {
	x, c := open(t, map[string]string{"POST /instachat-messages/_search": "search.http"})
	search := func(offset int) {
		t.Helper()
		if _, err := x.SearchMessageNumbers(t.Context(),
			instachat.SearchQuery{Token: token, Chat: 1, Terms: []string{"hi"}, Offset: offset, Limit: 5}); err != nil {
			t.Fatalf("SearchMessageNumbers at offset %d: %v", offset, err)
		}
	}
	search(9998)
	var page struct{ From, Size int }
	if reqs := c.take(); len(reqs) != 1 || json.Unmarshal(reqs[0].Body, &page) != nil || page.From != 9998 || page.Size != 2 {
		t.Errorf("at offset 9998, limit 5: sent %+v, want from 9998 and size 2, the rest of the window", page)
	}
	search(10000)
	if reqs := c.take(); len(reqs) != 0 {
		t.Errorf("at offset 10000: sent %q, want nothing: Elasticsearch refuses a page past the window", routes(reqs))
	}
}

func TestErrorAnswers(t *testing.T) {
	x, c := open(t, nil)
	for _, tc := range []struct {
		answer, code string
		sent         int // times the search was sent
	}{
		{"search_unavailable.http", instachat.EUNAVAILABLE, 2}, // retried once
		{"index_not_found.http", instachat.EINTERNAL, 1},       // a broken setup, not an outage
	} {
		c.answer("POST /instachat-messages/_search", tc.answer)
		_, err := x.SearchMessageNumbers(t.Context(), instachat.SearchQuery{Token: token, Chat: 1, Terms: []string{"hello"}, Limit: 5})
		wantCode(t, "search answered with "+tc.answer, err, tc.code)
		if n := len(c.take()); n != tc.sent {
			t.Errorf("search answered with %s: sent %d times, want %d", tc.answer, n, tc.sent)
		}
	}
}

func TestConnectionRefused(t *testing.T) {
	x, c := open(t, nil)
	c.srv.Close()
	ctx := t.Context()
	for _, call := range []struct {
		name string
		do   func() error
	}{
		{"Open", func() error { _, err := elasticsearch.Open(ctx, elasticsearch.Config{URL: c.srv.URL}); return err }},
		{"IndexMessages", func() error { return x.IndexMessages(ctx, messages()) }},
		{"SearchMessages", func() error {
			_, err := x.SearchMessageNumbers(ctx, instachat.SearchQuery{Token: token, Chat: 1, Terms: []string{"hello"}, Limit: 5})
			return err
		}},
		{"Ping", func() error { return x.Ping(ctx) }},
	} {
		wantCode(t, call.name+" with the connection refused", call.do(), instachat.EUNAVAILABLE)
	}
}

func TestPingAndDeleteIndex(t *testing.T) {
	x, c := open(t, map[string]string{"HEAD /": "ping.http", "DELETE /instachat-messages": "index_deleted.http"})
	if err := x.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if err := x.DeleteIndex(t.Context()); err != nil {
		t.Errorf("DeleteIndex: %v", err)
	}
	c.answer("DELETE /instachat-messages", "index_not_found.http")
	if err := x.DeleteIndex(t.Context()); err != nil {
		t.Errorf("DeleteIndex of a missing index: %v", err)
	}
	if got, want := routes(c.take()), []string{"HEAD /", "DELETE /instachat-messages", "DELETE /instachat-messages"}; !slices.Equal(got, want) {
		t.Errorf("requests %q, want %q", got, want)
	}
}

// TestDeleteMessagesIndexesTombstones: a deleted message's document is
// replaced by a body-less one versioned by the deletion time, so that the
// body leaves the index and an index request carrying it later, with its
// older version, is refused (a conflict, which the recorded answer holds
// for one item and which counts as success).
func TestDeleteMessagesIndexesTombstones(t *testing.T) {
	x, c := open(t, map[string]string{"POST /instachat-messages/_bulk": "bulk_conflict.http"})
	deletedAt := time.Date(2024, 5, 2, 8, 0, 0, 7000, time.UTC)
	var tombstones []*instachat.Message
	for _, m := range messages() {
		m.DeletedAt = &deletedAt
		tombstones = append(tombstones, m)
	}
	if err := x.DeleteMessages(t.Context(), tombstones); err != nil {
		t.Fatalf("DeleteMessages: %v", err)
	}
	reqs := c.take()
	if len(reqs) != 1 || routes(reqs)[0] != "POST /instachat-messages/_bulk?refresh=wait_for" {
		t.Fatalf("requests %q, want one bulk request", routes(reqs))
	}
	lines := strings.Split(strings.TrimSuffix(string(reqs[0].Body), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("bulk body has %d lines, want 6:\n%s", len(lines), reqs[0].Body)
	}
	jsonEqual(t, "the first action", []byte(lines[0]),
		[]byte(`{"index": {"_id": "kQ3vT7mW2xYz8bN4pR6sLg/1/1", "version": 1714636800000007, "version_type": "external"}}`))
	jsonEqual(t, "the first tombstone", []byte(lines[1]), []byte(`{"token": "kQ3vT7mW2xYz8bN4pR6sLg", "chat": 1, "number": 1, "body": "",`+
		` "created_at": "2024-05-01T10:00:00.000001Z", "updated_at": "2024-05-02T08:00:00.000007Z"}`))
	for i, line := range lines {
		if strings.Contains(line, "hello") || strings.Contains(line, "Hi-five") || strings.Contains(line, "école") {
			t.Errorf("bulk line %d still holds a body: %s", i+1, line)
		}
	}
	if tombstones[0].Body != "hello world" {
		t.Errorf("DeleteMessages changed the messages it was given")
	}
}
