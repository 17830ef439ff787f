package http

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// escapeAll writes s as a JSON string in its longest encoding: every
// character as \u escapes (a surrogate pair beyond the BMP).
func escapeAll(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r > 0xFFFF {
			r -= 0x10000
			b.WriteString(`\u` + hex4(0xD800+r>>10) + `\u` + hex4(0xDC00+r&0x3FF))
			continue
		}
		b.WriteString(`\u` + hex4(r))
	}
	b.WriteByte('"')
	return b.String()
}

func hex4(r rune) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[r>>12&15], digits[r>>8&15], digits[r>>4&15], digits[r&15]})
}

// TestEscapedBodiesWithinTheLimitAreAccepted sends the largest valid body
// and name in their longest JSON encodings under the default limits: each
// is accepted and stored as meant. Before, the request cap (4 bytes per
// body byte) refused them with 413, though a Go client escapes '<'.
func TestEscapedBodiesWithinTheLimitAreAccepted(t *testing.T) {
	e := newTestEnv(t)
	token := e.seed(t)
	base := "/api/v1/applications/" + token
	maxBody := instachat.DefaultLimits.MaxBodyBytes
	tests := []struct {
		path, field, value string
		status             int
	}{
		{base + "/chats/1/messages", "body", strings.Repeat("<", maxBody), 201},
		{base + "/chats/1/messages", "body", strings.Repeat("\x01", maxBody), 201},
		{base + "/chats/1/messages", "body", "\t" + strings.Repeat("&", maxBody-1), 201},
		{base + "/chats", "name", strings.Repeat("😀", instachat.DefaultLimits.MaxNameChars), 201},
		{"/api/v1/applications", "name", strings.Repeat("😀", instachat.DefaultLimits.MaxNameChars), 201},
		// One byte over the limit is refused by validation, not by size.
		{base + "/chats/1/messages", "body", strings.Repeat("<", maxBody+1), 422},
	}
	for _, tt := range tests {
		sent := `{"` + tt.field + `":` + escapeAll(tt.value) + `}`
		resp, raw := e.raw(t, "POST", tt.path, "application/json", sent)
		if resp.StatusCode != tt.status {
			t.Errorf("POST %s with %d bytes of escapes: %d %.200s, want %d", tt.path, len(sent), resp.StatusCode, raw, tt.status)
			continue
		}
		if tt.status != 201 {
			continue
		}
		got, ok := answered(raw, tt.field)
		if !ok || got != tt.value {
			t.Errorf("POST %s: answered %d bytes of %s, want the %d sent", tt.path, len(got), tt.field, len(tt.value))
		}
		read, raw := e.raw(t, "GET", resp.Header.Get("Location"), "", "")
		if got, ok := answered(raw, tt.field); read.StatusCode != 200 || !ok || got != tt.value {
			t.Errorf("GET %s: %d, %d bytes of %s, want the %d sent", resp.Header.Get("Location"), read.StatusCode, len(got), tt.field, len(tt.value))
		}
	}
	// The cap still holds past the longest encoding.
	over := `{"body":"` + strings.Repeat(" ", 7*maxBody) + `"}`
	if resp, raw := e.raw(t, "POST", base+"/chats/1/messages", "", over); resp.StatusCode != 413 {
		t.Errorf("POST %d bytes: %d %.200s, want 413", len(over), resp.StatusCode, raw)
	}
}

// TestLoneSurrogatesAreInvalid: encoding/json decodes a \u escape of half
// a surrogate pair as U+FFFD, so "a\ud800b" was stored as "a\uFFFDb" (201)
// where the same text sent as raw invalid UTF-8 answers 422. Both are 422
// now, and real pairs and escaped backslashes still pass.
func TestLoneSurrogatesAreInvalid(t *testing.T) {
	e := newTestEnv(t)
	path := "/api/v1/applications/" + e.seed(t) + "/chats/1/messages"
	tests := []struct {
		body   string
		status int
		stored string
	}{
		{`{"body":"a\ud800b"}`, 422, ""},
		{`{"body":"a\uDBFFb"}`, 422, ""},
		{`{"body":"a\udc00b"}`, 422, ""},
		{`{"body":"\ud800"}`, 422, ""},
		{`{"body":"\ud800\ud800"}`, 422, ""},
		{`{"body":"\ude00\ud83d"}`, 422, ""},
		{`{"body":"\ud83d\u0041"}`, 422, ""},
		{`{"body":"\ud83d\ude00\udc00"}`, 422, ""},
		{`{"body":"x","\ud800":1}`, 422, ""},
		{"{\"body\":\"a\xed\xa0\x80b\"}", 422, ""}, // the same, as raw (invalid) UTF-8
		{`{"body":"\ud83d\ude00"}`, 201, "😀"},
		{`{"body":"\uD83D\uDE00!"}`, 201, "😀!"},
		{`{"body":"\\ud800"}`, 201, `\ud800`},
		{`{"body":"\\\ud83d\ude00"}`, 201, `\😀`},
		{`{"body":"\ufffd"}`, 201, "\ufffd"},
	}
	for _, tt := range tests {
		resp, raw := e.raw(t, "POST", path, "", tt.body)
		got, _ := answered(raw, "body")
		if resp.StatusCode != tt.status || tt.status == 201 && got != tt.stored {
			t.Errorf("POST %s: %d %s, want %d %q", tt.body, resp.StatusCode, raw, tt.status, tt.stored)
		}
	}
}

// TestContentEncodingIsRefused: a Content-Encoding the server does not
// decode was ignored, storing the encoded bytes as text; now it is 415
// with Accept-Encoding naming what is accepted.
func TestContentEncodingIsRefused(t *testing.T) {
	e := newTestEnv(t)
	base := "/api/v1/applications/" + e.seed(t)
	published := len(e.queue.published)
	for _, tt := range []struct {
		encoding string
		status   int
	}{
		{"gzip", 415}, {"GZIP", 415}, {"identity, gzip", 415}, {"br", 415}, {"x-unknown", 415},
		{"identity", 201}, {"Identity", 201}, {"", 201},
	} {
		resp, raw := sendWith(t, e, "POST", base+"/chats/1/messages",
			http.Header{"Content-Encoding": {tt.encoding}, "Content-Type": {"application/json"}}, strings.NewReader(`{"body":"hi"}`))
		code, msg := "", ""
		if resp.StatusCode >= 400 {
			code, msg = errorOf(t, raw)
		}
		if resp.StatusCode != tt.status || tt.status == 415 &&
			(code != instachat.EUNSUPPORTED || !strings.Contains(msg, "Content-Encoding") || resp.Header.Get("Accept-Encoding") != "identity") {
			t.Errorf("Content-Encoding %q: %d %s (Accept-Encoding %q), want %d", tt.encoding, resp.StatusCode, raw,
				resp.Header.Get("Accept-Encoding"), tt.status)
		}
	}
	if got := len(e.queue.published) - published; got != 3 {
		t.Errorf("published %d creates, want only the 3 unencoded", got)
	}
}

// TestExpectContinueOverTheLimitIs413AtOnce sends a declared length over
// the cap with Expect: 100-continue. The server answered 100 Continue, then
// waited for a body the client never meant to send; now the first answer
// is the 413, and no body is asked for.
func TestExpectContinueOverTheLimitIs413AtOnce(t *testing.T) {
	e := newTestEnv(t)
	token := e.seed(t)
	published := len(e.queue.published)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second)) // a hang fails, not stalls, the test
	_, err = conn.Write([]byte("POST /api/v1/applications/" + token + "/chats/1/messages HTTP/1.1\r\nHost: x\r\n" +
		"Content-Type: application/json\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	var eb errorBody
	if resp.StatusCode != 413 || json.NewDecoder(resp.Body).Decode(&eb) != nil || eb.Error.Code != instachat.ETOOLARGE {
		t.Fatalf("first answer %s %+v, want 413 too_large", resp.Status, eb)
	}
	if got := len(e.queue.published) - published; got != 0 {
		t.Errorf("published %d creates", got)
	}
}

// TestJSONKeysMatchExactlyOnce: encoding/json matches keys ignoring case
// and lets the last duplicate win, so {"body":"a","Body":"b"} stored "b".
// Each field is now accepted once, in its exact spelling.
func TestJSONKeysMatchExactlyOnce(t *testing.T) {
	e := newTestEnv(t)
	base := "/api/v1/applications/" + e.seed(t)
	tests := []struct {
		method, path, body string
		status             int
		message            string
	}{
		{"POST", base + "/chats/1/messages", `{"body":"a","Body":"b"}`, 400, `"Body": field names are case-sensitive, did you mean "body"?`},
		{"POST", base + "/chats/1/messages", `{"BODY":"a"}`, 400, `unknown field "BODY"`},
		{"POST", base + "/chats/1/messages", `{"body":"a","body":"b"}`, 400, `"body" is given more than once`},
		{"POST", base + "/chats/1/messages", `{"body":"a","body":null}`, 400, "more than once"},
		{"POST", base + "/chats/1/messages", `{"body":"a","id":1}`, 400, `unknown field "id"`},
		{"POST", base + "/chats/1/messages", `{"body":{"Body":1,"body":2}}`, 422, "body must be a string"},
		{"POST", base + "/chats", `{"Name":"x"}`, 400, "did you mean \"name\"?"},
		{"PATCH", base + "/chats/1", `{"name":"x","name":"y"}`, 400, "more than once"},
		{"POST", "/api/v1/applications", `{"nAme":"x"}`, 400, "case-sensitive"},
		{"PUT", base, `{"name":"x","NAME":"y"}`, 400, "case-sensitive"},
		{"POST", base + "/chats/1/messages", `{"body":"a"}`, 201, ""},
	}
	for _, tt := range tests {
		resp, raw := e.raw(t, tt.method, tt.path, "", tt.body)
		msg := ""
		if resp.StatusCode >= 400 {
			_, msg = errorOf(t, raw)
		}
		if resp.StatusCode != tt.status || !strings.Contains(msg, tt.message) {
			t.Errorf("%s %s: %d %s, want %d %q", tt.method, tt.body, resp.StatusCode, raw, tt.status, tt.message)
		}
	}
	msgs := must[[]*instachat.Message](t)(e.store.ListMessages(context.Background(), strings.TrimPrefix(base, "/api/v1/applications/"), 1, 0, 10))
	if len(msgs) != 1 || msgs[0].Body != "a" {
		t.Errorf("stored %v, want only the one valid create", msgs)
	}
}

// TestCursorOfAnUnknownApplicationIs400: a well-formed cursor naming an
// application that does not exist was answered 200 with the applications
// after it; no page ever made that cursor, so it is refused like others.
func TestCursorOfAnUnknownApplicationIs400(t *testing.T) {
	e := newTestEnv(t)
	known := e.seed(t)
	for _, tt := range []struct {
		cursor string
		status int
	}{
		{instachat.EncodeTokenCursor(instachat.NewToken()), 400},
		{instachat.EncodeTokenCursor(strings.Repeat("A", 22)), 400},
		{instachat.EncodeTokenCursor(known), 200},
	} {
		resp, raw := e.raw(t, "GET", "/api/v1/applications?cursor="+tt.cursor, "", "")
		if resp.StatusCode != tt.status || tt.status == 400 && !strings.Contains(string(raw), "cursor is not valid") {
			t.Errorf("cursor %q: %d %s, want %d", tt.cursor, resp.StatusCode, raw, tt.status)
		}
	}
}
