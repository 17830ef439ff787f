package http

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/instachat/instachat"
)

// Fuzz targets for hostile input: request bodies, path parameters and
// search queries, each through the whole handler over the doubles. Their
// seed corpora are in testdata/fuzz; .ci/run fuzzes each for a few seconds.

// fuzzToken is the application every fuzz server holds: fixed, so that a
// crasher replays the same way.
const fuzzToken = "fuzzFUZZfuzzFUZZfuzz_-"

// fuzzLimits are small, so that the fuzzer reaches every limit.
var fuzzLimits = instachat.Limits{MaxNameChars: 8, MaxBodyBytes: 32}

// fuzzServer serves fresh doubles holding application fuzzToken with chat 1,
// whose messages are those given.
func fuzzServer(t *testing.T, messages ...string) http.Handler {
	t.Helper()
	e, s := newDoubles()
	s.Limits, s.MaxRequestBytes, e.dispatcher.Limits = fuzzLimits, 256, fuzzLimits
	s.Logger = slog.New(slog.DiscardHandler)
	ctx := context.Background()
	if err := e.store.CreateApplication(ctx, &instachat.Application{Token: fuzzToken, Name: "fuzz"}); err != nil {
		t.Fatal(err)
	}
	if err := e.seq.AddApplication(ctx, fuzzToken); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.dispatcher.CreateChat(ctx, fuzzToken, "", ""); err != nil {
		t.Fatal(err)
	}
	for _, body := range messages {
		if _, _, err := e.dispatcher.CreateMessage(ctx, fuzzToken, 1, body, ""); err != nil {
			t.Fatal(err)
		}
	}
	return s.Handler()
}

// readRequest parses a request from the wire as net/http's server does;
// false means the server would refuse it before any handler ran.
func readRequest(method, target, body string) (*http.Request, bool) {
	raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		method, target, len(body), body)
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	return r, err == nil
}

// checkAnswer fails unless w's status is one of allowed and, for an error,
// the body is the JSON error shape with a code that maps to that status.
// It returns the error code, "" for a success.
func checkAnswer(t *testing.T, w *httptest.ResponseRecorder, allowed ...int) string {
	t.Helper()
	if w.Code >= 500 || !slices.Contains(allowed, w.Code) {
		t.Fatalf("answered %d %s, want one of %v", w.Code, w.Body, allowed)
	}
	if w.Code < 400 {
		return ""
	}
	var eb errorBody
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil || dec.More() || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("answered %d %q (Content-Type %q): not the JSON error shape (%v)", w.Code, w.Body, w.Header().Get("Content-Type"), err)
	}
	if statusOf[eb.Error.Code] != w.Code || eb.Error.Message == "" {
		t.Fatalf("answered %d with error %+v", w.Code, eb.Error)
	}
	return eb.Error.Code
}

// bodyRoutes are the routes that decode a body, one per handler; field is
// the string the body carries.
var bodyRoutes = []struct{ method, path, field string }{
	{"POST", "/api/v1/applications", "name"},
	{"PATCH", "/api/v1/applications/" + fuzzToken, "name"},
	{"POST", "/api/v1/applications/" + fuzzToken + "/chats", "name"},
	{"PUT", "/api/v1/applications/" + fuzzToken + "/chats/1", "name"},
	{"POST", "/api/v1/applications/" + fuzzToken + "/chats/1/messages", "body"},
	{"PATCH", "/api/v1/applications/" + fuzzToken + "/chats/1/messages/1", "body"},
}

// textAnswer is the string field of an answered application, chat or
// message.
type textAnswer struct {
	Name *string `json:"name"`
	Body *string `json:"body"`
}

func (a textAnswer) field(name string) *string {
	if name == "name" {
		return a.Name
	}
	return a.Body
}

// answered returns the named field of a JSON answer, false if it has none.
func answered(b []byte, field string) (string, bool) {
	var a textAnswer
	if err := json.Unmarshal(b, &a); err != nil || a.field(field) == nil {
		return "", false
	}
	return *a.field(field), true
}

// FuzzRequestBody sends arbitrary bodies and Content-Types to every route
// that decodes one. Every answer is a success or a client error in the JSON
// error shape, and an accepted body is stored as encoding/json decodes it:
// the answer and a later read both show exactly that string.
func FuzzRequestBody(f *testing.F) {
	seeds := []struct{ contentType, body string }{{"", `{"name":"a\u0000b"}`}, {"", `{"name":"\ud800"}`}, {"", `{"NAME":"x"}`},
		{"", `{"name":"a","name":"b"}`}, {"", `{"name":"` + strings.Repeat("é", 17) + `"}`}, {"", `{"name":"  "}`}, {"", `{"name":" a\t"}`},
		{"", "\ufeff{}"}, {"", `{"name":"a"}]`}, {"application/json; charset=utf-8", `{"name":"<\u003e"}`}}
	for _, c := range decodeCases {
		seeds = append(seeds, struct{ contentType, body string }{c.contentType, c.body})
	}
	for i, rt := range bodyRoutes {
		for _, seed := range seeds {
			f.Add(uint8(i), seed.contentType, []byte(strings.ReplaceAll(seed.body, `"name"`, `"`+rt.field+`"`)))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, contentType string, body []byte) {
		rt := bodyRoutes[int(route)%len(bodyRoutes)]
		h := fuzzServer(t, "hello")
		r := httptest.NewRequest(rt.method, rt.path, bytes.NewReader(body))
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		want := http.StatusOK
		if rt.method == "POST" {
			want = http.StatusCreated
		}
		if checkAnswer(t, w, want, 400, 404, 405, 413, 415, 422) != "" {
			return
		}

		// The reference decoding: encoding/json, an empty body being {}.
		var sent textAnswer
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &sent); err != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", body, err)
			}
		}
		expected := ""
		if p := sent.field(rt.field); p != nil {
			expected = *p
		}
		var err error
		if rt.field == "name" {
			err = fuzzLimits.ValidateName(expected, false)
		} else {
			err = fuzzLimits.ValidateBody(expected)
		}
		if err != nil {
			t.Fatalf("accepted %q, whose %s %q is not valid: %v", body, rt.field, expected, err)
		}
		if got, ok := answered(w.Body.Bytes(), rt.field); !ok || got != expected {
			t.Fatalf("accepted %q, answered %s, want %s %q", body, w.Body, rt.field, expected)
		}
		// A create is read back from its Location, an update from its path.
		at := rt.path
		if rt.method == "POST" {
			at = w.Header().Get("Location")
		}
		read := httptest.NewRecorder()
		h.ServeHTTP(read, httptest.NewRequest("GET", at, nil))
		if got, ok := answered(read.Body.Bytes(), rt.field); !ok || read.Code != 200 || got != expected {
			t.Fatalf("accepted %q, then GET %s answered %d %s, want %s %q", body, at, read.Code, read.Body, rt.field, expected)
		}
	})
}

// pathRoutes are the routes with path parameters, each with a query and a
// body it accepts; every parameter is filled in from the fuzzer's input.
var pathRoutes = []struct{ method, pattern, query, body string }{
	{"GET", appPath, "", ""},
	{"PATCH", appPath, "", `{"name":"n"}`},
	{"GET", appPath + "/chats", "", ""},
	{"POST", appPath + "/chats", "", `{"name":"n"}`},
	{"GET", chatPath, "", ""},
	{"PUT", chatPath, "", `{"name":"n"}`},
	{"GET", chatPath + "/messages", "?limit=1", ""},
	{"POST", chatPath + "/messages", "", `{"body":"b"}`},
	{"GET", chatPath + "/messages/search", "?q=hello", ""},
	{"GET", messagePath, "", ""},
	{"PATCH", messagePath, "", `{"body":"b"}`},
}

// canonicalNumber is the reference for parseNumber: a positive int64 with
// exactly one spelling, its own.
func canonicalNumber(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n > 0 && strconv.FormatInt(n, 10) == s
}

// cleanPath is net/http's: what ServeMux redirects a request path to.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// FuzzPathParams puts arbitrary segments where routes take {token}, {chat}
// and {message}, and sends the request as the server would parse it off the
// wire. A path ServeMux would redirect is answered 400; a number is
// accepted only in its canonical spelling as a positive int64; any other is
// answered 400 without reaching a backend; a token that cannot be one is
// 404; and a request naming the seeded resources succeeds.
func FuzzPathParams(f *testing.F) {
	for i := range pathRoutes {
		for _, seg := range [][3]string{
			{fuzzToken, "1", "1"}, {fuzzToken, "2", "1"}, {fuzzToken, "1", "2"}, {"AAAAAAAAAAAAAAAAAAAAAA", "1", "1"},
			{"short", "1", "1"}, {fuzzToken, "01", "1"}, {fuzzToken, "1", "+1"}, {fuzzToken, "0", "-1"},
			{fuzzToken, "9223372036854775807", "9223372036854775808"}, {fuzzToken, "1e3", "0x1"}, {fuzzToken, "%31", "1%00"},
			{fuzzToken, "..", "."}, {"%2e%2E", "1", "search"}, {fuzzToken, "1", "%2F"}, {fuzzToken, "１", "١"},
		} {
			f.Add(uint8(i), seg[0], seg[1], seg[2])
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, token, chat, message string) {
		for _, s := range []string{chat, message} {
			if n, ok := parseNumber(s); ok != canonicalNumber(s) || ok && strconv.FormatInt(n, 10) != s {
				t.Fatalf("parseNumber(%q) = %d, %v", s, n, ok)
			}
		}
		rt := pathRoutes[int(route)%len(pathRoutes)]
		for _, s := range []string{token, chat, message} {
			if strings.ContainsAny(s, "/?#") {
				return // not one segment: another route's business
			}
		}
		target := strings.NewReplacer("{token}", token, "{chat}", chat, "{message}", message).Replace(rt.pattern) + rt.query
		r, ok := readRequest(rt.method, target, rt.body)
		if !ok {
			return
		}
		w := httptest.NewRecorder()
		fuzzServer(t, "hello").ServeHTTP(w, r)
		escaped := r.URL.EscapedPath()
		if cleanPath(escaped) != escaped {
			// ServeMux would redirect it; the API refuses it instead.
			if checkAnswer(t, w, 400); w.Header().Get("Location") != "" || !strings.Contains(w.Body.String(), "path is not clean") {
				t.Fatalf("%s %s: answered %d %s (Location %q), want 400 for an unclean path", rt.method, target, w.Code, w.Body, w.Header().Get("Location"))
			}
			return
		}
		code := checkAnswer(t, w, 200, 201, 400, 404)

		// What the mux hands the handler: each segment unescaped.
		values := map[string]string{}
		patternSegs, segs := strings.Split(rt.pattern, "/"), strings.Split(escaped, "/")
		if len(segs) != len(patternSegs) {
			// A %2F became a slash: url.URL escapes the path afresh when
			// the request's own escaping is not one it would produce.
			return
		}
		for i, p := range patternSegs {
			if name, ok := strings.CutPrefix(p, "{"); ok {
				v, err := url.PathUnescape(segs[i])
				if err != nil {
					t.Fatalf("segment %q of a request the server parsed: %v", segs[i], err)
				}
				values[strings.TrimSuffix(name, "}")] = v
			}
		}
		var want int
		var wantMessage string
		switch {
		case slices.ContainsFunc(slices.Collect(maps.Values(values)), func(v string) bool { return v == "" || v == "/" }):
			// A trailing slash, or a segment ServeMux reads as one: no
			// wildcard matches it, so no route does.
			want = 404
		case !instachat.ValidToken(values["token"]):
			want = 404
		case rt.method == "GET" && rt.pattern == messagePath && values["message"] == "search":
			want = 400 // the search route, asked without q
		case values["chat"] != "" && !canonicalNumber(values["chat"]):
			want, wantMessage = 400, "bad parameter: chat"
		case values["message"] != "" && !canonicalNumber(values["message"]):
			want, wantMessage = 400, "bad parameter: message"
		case values["token"] != fuzzToken || values["chat"] != "" && values["chat"] != "1" || values["message"] != "" && values["message"] != "1":
			want = 404
		case rt.method == "POST":
			want = 201
		default:
			want = 200
		}
		if w.Code != want || wantMessage != "" && !strings.Contains(w.Body.String(), wantMessage) {
			t.Fatalf("%s %s (parameters %q): answered %d %s (%s), want %d %s", rt.method, target, values, w.Code, w.Body, code, want, wantMessage)
		}
	})
}

// FuzzSearchHandler searches a chat with an arbitrary q, and arbitrary
// further query parameters (limit, cursor…): never a server error; with q
// alone, 200 exactly when q parses, every result matching every term.
func FuzzSearchHandler(f *testing.F) {
	for _, q := range []string{"hello", "HEL", "he", "h", "", " ", "\x00", "a b c d e f g h i j k l m n o p q", "çA", "\xff",
		strings.Repeat("x", 257), "naïve", "%_!", "İ", "ǅ"} {
		f.Add(q, "")
	}
	for _, extra := range []string{"&limit=1", "&limit=0", "&limit=101", "&cursor=" + instachat.EncodeCursor(1),
		"&cursor=" + instachat.EncodeCursor(1<<40),
		"&cursor=x", "&q=other", "&limit=1;", "&%zz", "&limit=1&limit=2"} {
		f.Add("hello", extra)
	}
	f.Fuzz(func(t *testing.T, q, extra string) {
		target := "/api/v1/applications/" + fuzzToken + "/chats/1/messages/search?q=" + url.QueryEscape(q) + extra
		r, ok := readRequest("GET", target, "")
		if !ok {
			return
		}
		w := httptest.NewRecorder()
		fuzzServer(t, "Hello world", "help wanted", "say hello", "naïve café", "x%_!y", "İstanbul").ServeHTTP(w, r)
		code := checkAnswer(t, w, 200, 400)
		if extra != "" {
			return
		}
		terms, err := instachat.ParseSearchTerms(q)
		if (err == nil) != (code == "") {
			t.Fatalf("q %q: answered %d %s, but ParseSearchTerms says %v", q, w.Code, w.Body, err)
		}
		var p page[*instachat.Message]
		if err := json.Unmarshal(w.Body.Bytes(), &p); code == "" && (err != nil || len(p.Data) > defaultLimit) {
			t.Fatalf("q %q: answered %s (%v)", q, w.Body, err)
		}
		for _, m := range p.Data {
			for _, term := range terms {
				if !instachat.MatchesTerm(m.Body, term) {
					t.Fatalf("q %q: found %q, which does not match %q", q, m.Body, term)
				}
			}
		}
	})
}
