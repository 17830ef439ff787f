package http

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestJSONRefusal holds the rewrite to net/http's own refusals, whole and
// alone, and leaves every other write as it is.
func TestJSONRefusal(t *testing.T) {
	const plain = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	rewritten := []struct {
		write  string
		status int
		code   string
	}{
		{"HTTP/1.1 431 Request Header Fields Too Large" + plain + "431 Request Header Fields Too Large", 431, eHeaderTooLarge},
		{"HTTP/1.1 400 Bad Request" + plain + "400 Bad Request", 400, "bad_request"},
		{"HTTP/1.1 400 Bad Request: missing required Host header" + plain + "400 Bad Request: missing required Host header", 400, "bad_request"},
		{"HTTP/1.1 501 Not Implemented" + plain + "Unsupported transfer encoding", 501, eNotImplemented},
		{"HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version" + plain + "505 HTTP Version Not Supported: unsupported protocol version",
			505, eHTTPVersion},
	}
	for _, tt := range rewritten {
		answer, ok := jsonRefusal([]byte(tt.write), 1024)
		if !ok {
			t.Errorf("%.40q: not rewritten", tt.write)
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(answer))), nil)
		if err != nil {
			t.Fatalf("%.40q: rewritten as %q: %v", tt.write, answer, err)
		}
		var eb errorBody
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || resp.StatusCode != tt.status || eb.Error.Code != tt.code ||
			statusOf[eb.Error.Code] != tt.status || resp.Header.Get("Content-Type") != "application/json" || !resp.Close {
			t.Errorf("%.40q: rewritten as %q", tt.write, answer)
		}
	}
	for _, write := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: x\r\n\r\n{}",
		"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nDate: x\r\n\r\n400 Bad Request",
		"HTTP/1.1 418 I'm a teapot" + plain + "418",
		"HTTP/1.1 400 Bad Request" + plain + "400 Bad Request\r\nmore",
		"HTTP/1.1 400 Bad Request" + plain + strings.Repeat("x", 600),
		"HTTP/1.0 400 Bad Request" + plain + "400 Bad Request",
		`{"body":"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"}`,
		"HTTP/1.1 ",
		"",
	} {
		if answer, ok := jsonRefusal([]byte(write), 1024); ok {
			t.Errorf("%.60q: rewritten as %q", write, answer)
		}
	}
}

// TestListenerAnswers431InJSON serves the API on a listener wrapped by
// Listener, with a small MaxHeaderBytes: a header past it is refused by
// net/http, in JSON; one within it is served.
func TestListenerAnswers431InJSON(t *testing.T) {
	_, s := newDoubles()
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Config.MaxHeaderBytes = 4 << 10
	srv.Listener = Listener(srv.Listener, srv.Config.MaxHeaderBytes)
	srv.Start()
	t.Cleanup(srv.Close)
	for _, tt := range []struct {
		header int
		status int
	}{{1 << 10, 200}, {16 << 10, 431}} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		go conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", tt.header) + "\r\n\r\n"))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		var eb errorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		conn.Close()
		if resp.StatusCode != tt.status || tt.status == 431 && (eb.Error.Code != eHeaderTooLarge || !strings.Contains(eb.Error.Message, "4096 bytes")) {
			t.Errorf("header of %d bytes: %s %+v, want %d", tt.header, resp.Status, eb, tt.status)
		}
	}
}
