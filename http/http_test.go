package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/instachat/instachat"
)

// decodeCases are decoded by a Server whose MaxRequestBytes is 32; they
// also seed FuzzRequestBody.
var decodeCases = []struct {
	name, contentType, body string
	code                    string // "" for success
	want                    *string
}{
	{"object", "application/json", `{"name":"a"}`, "", ptr("a")},
	{"charset", "application/json; charset=utf-8", `{"name":"a"}`, "", ptr("a")},
	{"+json", "application/merge-patch+json", `{"name":"a"}`, "", ptr("a")},
	{"no content type", "", `{"name":"a"}`, "", ptr("a")},
	{"empty body is {}", "", ``, "", nil},
	{"blank body is {}", "application/json", " \n", "", nil},
	{"null body", "", `null`, "", nil},
	{"null field", "", `{"name":null}`, "", nil},
	{"escaped", "", `{"name":"\u00e9"}`, "", ptr("é")},
	{"text", "text/plain", `{"name":"a"}`, instachat.EUNSUPPORTED, nil},
	{"form", "application/x-www-form-urlencoded", `name=a`, instachat.EUNSUPPORTED, nil},
	{"unparsable content type", "application/json; =", `{}`, instachat.EUNSUPPORTED, nil},
	{"truncated", "", `{"name":`, instachat.EBADREQUEST, nil},
	{"not JSON", "", `name=a`, instachat.EBADREQUEST, nil},
	{"trailing garbage", "", `{"name":"a"} x`, instachat.EBADREQUEST, nil},
	{"two values", "", `{"name":"a"}{}`, instachat.EBADREQUEST, nil},
	{"unknown field", "", `{"name":"a","id":1}`, instachat.EBADREQUEST, nil},
	{"array", "", `["a"]`, instachat.EINVALID, nil},
	{"string", "", `"a"`, instachat.EINVALID, nil},
	{"number name", "", `{"name":5}`, instachat.EINVALID, nil},
	{"object name", "", `{"name":{}}`, instachat.EINVALID, nil},
	{"bool name", "", `{"name":true}`, instachat.EINVALID, nil},
	{"invalid UTF-8", "", "{\"name\":\"\xff\"}", instachat.EINVALID, nil},
	{"lone high surrogate", "", `{"name":"\ud800"}`, instachat.EINVALID, nil},
	{"lone low surrogate", "", `{"name":"a\uDC00"}`, instachat.EINVALID, nil},
	{"surrogate pair", "", `{"name":"\ud83d\ude00"}`, "", ptr("😀")},
	{"escaped backslash", "", `{"name":"\\ud800"}`, "", ptr(`\ud800`)},
	{"key in other case", "", `{"Name":"a"}`, instachat.EBADREQUEST, nil},
	{"duplicate key", "", `{"name":"a","name":"b"}`, instachat.EBADREQUEST, nil},
	{"too large", "", `{"name":"` + strings.Repeat("a", 32) + `"}`, instachat.ETOOLARGE, nil},
}

func TestDecodeJSON(t *testing.T) {
	s := &Server{MaxRequestBytes: 32}
	for _, tt := range decodeCases {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var req nameRequest
			err := s.decodeJSON(httptest.NewRecorder(), r, &req)
			if got := instachat.ErrorCode(err); got != tt.code {
				t.Fatalf("code = %q (%v), want %q", got, err, tt.code)
			}
			if err == nil && !equalPtr(req.Name, tt.want) {
				t.Errorf("name = %v, want %v", deref(req.Name), deref(tt.want))
			}
		})
	}
}

func ptr(s string) *string { return &s }

func equalPtr(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func deref(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestParseURL(t *testing.T) {
	token := instachat.NewToken()
	tests := []struct {
		token, chat, message string
		want                 resource
		code                 string
	}{
		{"", "", "", resource{}, ""}, // a route without parameters
		{token, "", "", resource{token: token}, ""},
		{token, "1", "", resource{token: token, chat: 1}, ""},
		{token, "12", "9223372036854775807", resource{token, 12, 1<<63 - 1}, ""},
		{token, "007", "", resource{}, instachat.EBADREQUEST},
		{"short", "1", "", resource{}, instachat.ENOTFOUND},
		{strings.Repeat("*", 22), "", "", resource{}, instachat.ENOTFOUND},
		{token, "0", "", resource{}, instachat.EBADREQUEST},
		{token, "-1", "", resource{}, instachat.EBADREQUEST},
		{token, "+1", "", resource{}, instachat.EBADREQUEST},
		{token, "1.0", "", resource{}, instachat.EBADREQUEST},
		{token, "1e3", "", resource{}, instachat.EBADREQUEST},
		{token, "abc", "", resource{}, instachat.EBADREQUEST},
		{token, "9223372036854775808", "", resource{}, instachat.EBADREQUEST},
		{token, "1", "x", resource{}, instachat.EBADREQUEST},
		{token, "1", "0", resource{}, instachat.EBADREQUEST},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for k, v := range map[string]string{"token": tt.token, "chat": tt.chat, "message": tt.message} {
			r.SetPathValue(k, v)
		}
		got, err := parseURL(r)
		if code := instachat.ErrorCode(err); code != tt.code || err == nil && got != tt.want {
			t.Errorf("parseURL(%q, %q, %q) = %+v, %v; want %+v, %q", tt.token, tt.chat, tt.message, got, err, tt.want, tt.code)
		}
	}
}

func TestParseList(t *testing.T) {
	token := instachat.NewToken()
	tests := []struct {
		query     string
		limit     int
		after     int64
		errorCode string
	}{
		{"", defaultLimit, 0, ""},
		{"limit=1", 1, 0, ""},
		{"limit=100&cursor=" + instachat.EncodeCursor(42), 100, 42, ""},
		{"limit=0", 0, 0, instachat.EBADREQUEST},
		{"limit=101", 0, 0, instachat.EBADREQUEST},
		{"limit=-1", 0, 0, instachat.EBADREQUEST},
		{"limit=+5", 0, 0, instachat.EBADREQUEST},
		{"limit=05", 0, 0, instachat.EBADREQUEST},
		{"limit=ten", 0, 0, instachat.EBADREQUEST},
		{"limit=99999999999999999999", 0, 0, instachat.EBADREQUEST},
		{"cursor=garbage!", 0, 0, instachat.EBADREQUEST},
		{"cursor=" + instachat.EncodeTokenCursor(token), 0, 0, instachat.EBADREQUEST},
	}
	for _, tt := range tests {
		limit, after, err := parseList(httptest.NewRequest(http.MethodGet, "/?"+tt.query, nil))
		if code := instachat.ErrorCode(err); code != tt.errorCode || err == nil && (limit != tt.limit || after != tt.after) {
			t.Errorf("parseList(%q) = %d, %d, %v; want %d, %d, %q", tt.query, limit, after, err, tt.limit, tt.after, tt.errorCode)
		}
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		err     error
		status  int
		code    string
		message string
	}{
		{instachat.Errorf(instachat.EBADREQUEST, "m"), 400, instachat.EBADREQUEST, "m"},
		{instachat.Errorf(instachat.ENOTFOUND, "m"), 404, instachat.ENOTFOUND, "m"},
		{instachat.Errorf(eMethodNotAllowed, "m"), 405, eMethodNotAllowed, "m"},
		{instachat.Errorf(instachat.ECONFLICT, "m"), 409, instachat.ECONFLICT, "m"},
		{instachat.Errorf(instachat.ETOOLARGE, "m"), 413, instachat.ETOOLARGE, "m"},
		{instachat.Errorf(instachat.EUNSUPPORTED, "m"), 415, instachat.EUNSUPPORTED, "m"},
		{instachat.Errorf(instachat.EINVALID, "m"), 422, instachat.EINVALID, "m"},
		{instachat.Errorf(instachat.EUNAVAILABLE, "m"), 503, instachat.EUNAVAILABLE, "m"},
		{instachat.Errorf(instachat.EINTERNAL, "SELECT id FROM apps"), 500, instachat.EINTERNAL, "internal error"},
		{instachat.Errorf("made_up", "SELECT id FROM apps"), 500, instachat.EINTERNAL, "internal error"},
		{errors.New("sql: SELECT id FROM apps"), 500, instachat.EINTERNAL, "internal error"},
	}
	for _, tt := range tests {
		var logs bytes.Buffer
		s := &Server{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
		w := httptest.NewRecorder()
		s.writeError(w, httptest.NewRequest(http.MethodGet, "/", nil), tt.err)
		var body errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if w.Code != tt.status || body.Error.Code != tt.code || body.Error.Message != tt.message {
			t.Errorf("%v: answered %d %+v, want %d %s %q", tt.err, w.Code, body.Error, tt.status, tt.code, tt.message)
		}
		if got := w.Header().Get("Content-Type"); got != "application/json" {
			t.Errorf("%v: Content-Type %q", tt.err, got)
		}
		if retry := w.Header().Get("Retry-After"); (tt.status == 503) != (retry == "1") {
			t.Errorf("%v: Retry-After %q", tt.err, retry)
		}
		if tt.status == 500 && !strings.Contains(logs.String(), "SELECT id FROM apps") {
			t.Errorf("%v: cause not logged: %s", tt.err, logs.String())
		}
	}
}

func TestUnroutedIsJSON(t *testing.T) {
	token := instachat.NewToken()
	tests := []struct {
		api, dispatch bool
		method, path  string
		status        int
		allow         string
	}{
		{true, true, "GET", "/nope", 404, ""},
		{true, true, "GET", "/api/v1/applications/" + token + "/nope", 404, ""},
		{true, true, "DELETE", "/api/v1/applications", 405, "GET, HEAD, POST"},
		{true, true, "POST", "/api/v1/applications/" + token, 405, "GET, HEAD, PUT, PATCH, DELETE"},
		{true, true, "POST", "/healthz", 405, "GET, HEAD"},
		// The search route serves GET alone, though PUT, PATCH and DELETE
		// reach the message routes there (which answer 400 for "search").
		{true, true, "POST", "/api/v1/applications/" + token + "/chats/1/messages/search", 405, "GET, HEAD"},
		// DELETE reaches the message route there too: 400, as for PUT.
		{true, true, "DELETE", "/api/v1/applications/" + token + "/chats/1/messages/search", 400, ""},
		{true, true, "POST", "/api/v1/applications/" + token + "/chats/1/messages/7", 405, "GET, HEAD, PUT, PATCH, DELETE"},
		{true, true, "DELETE", "/api/v1/applications/" + token + "/chats/1/messages", 405, "GET, HEAD, POST"},
		// A route of the role the process does not play: see
		// TestSplitRolesNameTheRoleThatServes.
		{false, true, "GET", "/api/v1/applications/" + token + "/chats/1/messages/search", 421, ""},
		{false, true, "GET", "/api/v1/applications/" + token + "/chats", 421, ""},
		{false, true, "GET", "/api/v1/applications", 421, ""},
		{true, false, "POST", "/api/v1/applications/" + token + "/chats", 421, ""},
		{false, true, "DELETE", "/api/v1/applications/" + token + "/chats", 405, "POST"},
		{true, false, "DELETE", "/api/v1/applications/" + token + "/chats", 405, "GET, HEAD"},
	}
	for _, tt := range tests {
		s := &Server{API: tt.api, Dispatch: tt.dispatch}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		var body errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code == "" {
			t.Errorf("%s %s: body %q is not a JSON error (%v)", tt.method, tt.path, w.Body, err)
		}
		if w.Code != tt.status || w.Header().Get("Allow") != tt.allow {
			t.Errorf("%s %s (api %v, dispatch %v): %d Allow %q, want %d Allow %q",
				tt.method, tt.path, tt.api, tt.dispatch, w.Code, w.Header().Get("Allow"), tt.status, tt.allow)
		}
	}
}

// TestSplitRolesNameTheRoleThatServes: a process that plays only some
// roles (INSTACHAT_ROLES) answers a route of another role 421 with a JSON
// error naming the role that serves it, where it used to answer 405 with
// the Allow of its own routes (an api process: "POST …/chats: 405 Allow:
// GET, HEAD"), which sent a newcomer looking for a method that does not
// exist.
func TestSplitRolesNameTheRoleThatServes(t *testing.T) {
	token := instachat.NewToken()
	chats := "/api/v1/applications/" + token + "/chats"
	tests := []struct {
		api, dispatch bool
		method, path  string
		role          string // the role the message must name
	}{
		{true, false, "POST", chats, "dispatcher"},
		{true, false, "POST", chats + "/1/messages", "dispatcher"},
		{false, true, "GET", chats, "api"},
		{false, true, "GET", chats + "/1/messages/search", "api"},
		{false, true, "PATCH", chats + "/1/messages/3", "api"},
		{false, true, "POST", "/api/v1/applications", "api"},
		{false, true, "GET", chats + "/1/events", "api"},
		{false, false, "POST", chats, "dispatcher"},
		{false, false, "GET", chats, "api"},
	}
	for _, tt := range tests {
		s := &Server{API: tt.api, Dispatch: tt.dispatch}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, nil))
		var body errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: body %q: %v", tt.method, tt.path, w.Body, err)
		}
		if w.Code != http.StatusMisdirectedRequest || body.Error.Code != eMisdirected ||
			!strings.Contains(body.Error.Message, "INSTACHAT_ROLES="+tt.role) || w.Header().Get("Allow") != "" {
			t.Errorf("%s %s (api %v, dispatch %v): %d %+v Allow %q, want 421 %s naming INSTACHAT_ROLES=%s, no Allow",
				tt.method, tt.path, tt.api, tt.dispatch, w.Code, body.Error, w.Header().Get("Allow"), eMisdirected, tt.role)
		}
	}
}
