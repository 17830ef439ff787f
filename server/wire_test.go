package server_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// wantJSONError fails unless resp is status with the API's error shape
// (for HEAD, its Content-Type only) and no redirect; it returns the error.
func wantJSONError(t *testing.T, what string, resp *http.Response, status int) (code, message string) {
	t.Helper()
	var eb struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Location") != "" ||
		resp.Request != nil && resp.Request.Method != http.MethodHead &&
			(json.Unmarshal(raw, &eb) != nil || eb.Error.Code == "" || eb.Error.Message == "") {
		t.Errorf("%s: %s (Content-Type %q, Location %q) %q, want %d and a JSON error", what, resp.Status,
			resp.Header.Get("Content-Type"), resp.Header.Get("Location"), raw, status)
	}
	return eb.Error.Code, eb.Error.Message
}

// TestUncleanPathsAnswerJSON: ServeMux answered //api/v1/applications and
// paths with "." or ".." segments with a 307 to the clean path and an HTML
// body, for every method (a POST too). The real server now answers 400
// in the API's shape, naming the clean path, and redirects nothing.
func TestUncleanPathsAnswerJSON(t *testing.T) {
	r := start(t, t.TempDir())
	app, err := r.client.CreateApplication(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	token := app.Token
	noRedirects := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	paths := map[string]string{
		"//api/v1/applications":                        "/api/v1/applications",
		"/api/v1//applications":                        "/api/v1/applications",
		"/api/v1/./applications":                       "/api/v1/applications",
		"/api/v1/applications/../applications":         "/api/v1/applications",
		"/api/v1/applications/" + token + "/.":         "/api/v1/applications/" + token,
		"/api/v1/applications/" + token + "/chats/..":  "/api/v1/applications/" + token,
		"/api/v1/applications/" + token + "//chats/1/": "/api/v1/applications/" + token + "/chats/1/",
		"//":   "/",
		"/./":  "/",
		"/../": "/",
	}
	for path, clean := range paths {
		for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			req, err := http.NewRequest(method, r.URL()+path, strings.NewReader(`{"name":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, msg := wantJSONError(t, method+" "+path, resp, 400)
			resp.Body.Close()
			if method != "HEAD" && !strings.HasSuffix(msg, "the clean path is "+clean) {
				t.Errorf("%s %s: message %q does not name %s", method, path, msg, clean)
			}
		}
	}
	// Nothing was created by the refused POSTs.
	if chats, err := r.client.ListChats(t.Context(), token, 0, 100); err != nil || len(chats) != 0 {
		t.Errorf("chats %v (%v), want none", chats, err)
	}
}

// rawExchange writes request on a fresh connection to the server and reads
// the one answer.
func rawExchange(t *testing.T, r *running, request string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(15 * time.Second)) // a hang fails the test, not stalls it
	go conn.Write([]byte(request))                     // the server may answer before reading it all
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "GET"})
	if err != nil {
		t.Fatalf("no answer to %.60q: %v", request, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestRefusalsByNetHTTPAnswerJSON: what net/http refuses before any
// handler runs it answered in text/plain ("431 Request Header Fields Too
// Large"); the real server's connections answer those in the API's shape.
func TestRefusalsByNetHTTPAnswerJSON(t *testing.T) {
	r := start(t, t.TempDir())
	tests := []struct {
		name, request string
		status        int
		code, message string
	}{
		{"header over the limit", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n",
			431, "header_too_large", "must be at most 65536 bytes"},
		{"many headers over the limit", "GET /healthz HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Many: "+strings.Repeat("b", 1000)+"\r\n", 80) + "\r\n",
			431, "header_too_large", "must be at most 65536 bytes"},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, instachat.EBADREQUEST, "missing required Host header"},
		{"malformed header", "GET /healthz HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n", 400, instachat.EBADREQUEST, "could not be parsed"},
		{"unknown transfer coding", "POST /api/v1/applications HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " +
			"zstd\r\n\r\n", 501, "not_implemented", "Transfer-Encoding"},
		{"HTTP/2 without upgrade", "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported", "HTTP/1.1"},
	}
	for _, tt := range tests {
		resp := rawExchange(t, r, tt.request)
		code, msg := wantJSONError(t, tt.name, resp, tt.status)
		if code != tt.code || !strings.Contains(msg, tt.message) {
			t.Errorf("%s: error %q %q, want %q containing %q", tt.name, code, msg, tt.code, tt.message)
		}
	}
	// A header within the limit, and the connection's other answers, pass
	// untouched.
	resp := rawExchange(t, r, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 60<<10)+"\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Errorf("header of 60 KiB: %s", resp.Status)
	}
}

// TestAllowListsWhatTheRouteServes: POST .../messages/search answered 405
// with Allow: GET, HEAD, PUT, PATCH, though the search route serves no PUT
// or PATCH (those reach .../messages/{message}, and answer 400).
func TestAllowListsWhatTheRouteServes(t *testing.T) {
	r := start(t, t.TempDir())
	app, err := r.client.CreateApplication(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	chat := "/api/v1/applications/" + app.Token + "/chats/1"
	for _, tt := range []struct{ method, path, allow string }{
		{"POST", chat + "/messages/search", "GET, HEAD"},
		{"POST", chat + "/messages/1", "GET, HEAD, PUT, PATCH, DELETE"},
		{"DELETE", chat + "/messages", "GET, HEAD, POST"},
		{"DELETE", "/api/v1/applications", "GET, HEAD, POST"},
	} {
		req, _ := http.NewRequest(tt.method, r.URL()+tt.path, nil)
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		wantJSONError(t, tt.method+" "+tt.path, resp, 405)
		resp.Body.Close()
		if got := resp.Header.Get("Allow"); got != tt.allow {
			t.Errorf("%s %s: Allow %q, want %q", tt.method, tt.path, got, tt.allow)
		}
	}
}
