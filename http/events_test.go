package http

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/feed"
	"github.com/instachat/instachat/inmem"
	"github.com/instachat/instachat/internal/feedtest"
)

// streamServer serves the events routes of one chat feed, with the given
// server timeouts, so that a stream can outlive them.
type streamServer struct {
	url     string
	token   string
	chat    *feedtest.Chat
	broker  *inmem.Broker
	streams *feed.Streamer
}

func newStreamServer(t *testing.T, timeout time.Duration) *streamServer {
	t.Helper()
	token := instachat.NewToken()
	chat := feedtest.NewChat(instachat.Topic{Token: token, Chat: 1})
	chat.Create(1, "hello")
	chat.Create(2, "world")
	b := inmem.NewBroker(inmem.BrokerOptions{})
	streams := &feed.Streamer{Feeds: chat, Broker: b, Heartbeat: 20 * time.Millisecond, MaxStreamsPerToken: 3}
	s := &Server{API: true, Streams: streams, Logger: slog.New(slog.DiscardHandler)}
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Config.ReadTimeout, ts.Config.WriteTimeout = timeout, timeout
	ts.Start()
	t.Cleanup(ts.Close)
	return &streamServer{url: ts.URL, token: token, chat: chat, broker: b, streams: streams}
}

func (ss *streamServer) path(chat string) string {
	return ss.url + "/api/v1/applications/" + ss.token + "/chats/" + chat + "/events"
}

func TestStreamRefusedBeforeItStarts(t *testing.T) {
	ss := newStreamServer(t, time.Minute)
	cases := []struct {
		name, url, lastEventID string
		status                 int
		code                   string
	}{
		{"unknown chat", ss.path("9"), "", 404, instachat.ENOTFOUND},
		{"unknown application", ss.url + "/api/v1/applications/" + instachat.NewToken() + "/events", "", 404, instachat.ENOTFOUND},
		{"after not a number", ss.path("1") + "?after=abc", "", 400, instachat.EBADREQUEST},
		{"after negative", ss.path("1") + "?after=-1", "", 400, instachat.EBADREQUEST},
		{"after above the current revision", ss.path("1") + "?after=3", "", 400, instachat.EBADREQUEST},
		{"Last-Event-ID not a revision", ss.path("1"), "x", 400, instachat.EBADREQUEST},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", c.url, nil)
			if c.lastEventID != "" {
				req.Header.Set("Last-Event-ID", c.lastEventID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body errorBody
			json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != c.status || body.Error.Code != c.code || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%d %s %q, want %d %s in JSON", resp.StatusCode, resp.Header.Get("Content-Type"), body.Error.Code, c.status, c.code)
			}
		})
	}
	if n := ss.streams.Streams(); n != 0 {
		t.Errorf("%d streams counted after refusals", n)
	}
}

// sseEvent is one block of a Server-Sent Events stream: its fields, or
// the comment it held.
type sseEvent struct{ event, id, data, comment string }

func readSSE(t *testing.T, sc *bufio.Scanner) sseEvent {
	t.Helper()
	var e sseEvent
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			return e
		}
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "event":
			e.event = v
		case "id":
			e.id = v
		case "data":
			e.data = v
		case "":
			e.comment = v
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
	t.Fatalf("the stream ended: %v", sc.Err())
	return e
}

// TestSSEFormatAndTimeouts reads a stream past the server's read and write
// timeouts: the replay, synced, heartbeats while idle, then a live event.
func TestSSEFormatAndTimeouts(t *testing.T) {
	ss := newStreamServer(t, 100*time.Millisecond)
	req, _ := http.NewRequest("GET", ss.path("1"), nil)
	req.Header.Set("Last-Event-ID", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	sc := bufio.NewScanner(resp.Body)
	got := readSSE(t, sc)
	want := sseEvent{event: "message.created", id: "2"}
	if got.event != want.event || got.id != want.id {
		t.Fatalf("first block %+v, want message.created with id 2", got)
	}
	var e map[string]any
	if err := json.Unmarshal([]byte(got.data), &e); err != nil || e["event"] != "message.created" || e["revision"] != 2.0 {
		t.Fatalf("data %s", got.data)
	}
	m := e["message"].(map[string]any)
	if m["number"] != 2.0 || m["body"] != "world" || m["created_at"] == nil || m["updated_at"] == nil || len(m) != 4 {
		t.Errorf("message %v, want number, body, created_at, updated_at", m)
	}
	if got := readSSE(t, sc); got != (sseEvent{event: "synced", id: "2", data: `{"event":"synced","revision":2}`}) {
		t.Fatalf("then %+v, want synced at 2", got)
	}
	time.Sleep(300 * time.Millisecond) // three times the server's timeouts
	beats := 0
	for {
		got := readSSE(t, sc)
		if got.comment != "heartbeat" {
			t.Fatalf("while idle %+v, want a heartbeat comment", got)
		}
		if beats++; beats == 3 {
			break
		}
	}
	ss.broker.Publish(t.Context(), ss.chat.Topic, ss.chat.Edit(1, "hello again"))
	for {
		got := readSSE(t, sc)
		if got.comment == "heartbeat" {
			continue
		}
		if got.event != "message.updated" || got.id != "3" || !strings.Contains(got.data, `"body":"hello again"`) {
			t.Fatalf("live %+v, want message.updated 3", got)
		}
		break
	}
}

func TestSSEShutdownEndsTheStream(t *testing.T) {
	ss := newStreamServer(t, time.Minute)
	resp, err := http.Get(ss.path("1"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if got := readSSE(t, sc); got.event != "synced" || got.id != "2" {
		t.Fatalf("without a resume point %+v, want synced at 2 first", got)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := ss.streams.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(rest), ": end: the server is shutting down") {
		t.Errorf("after shutdown the stream sent %q, want an end comment", rest)
	}
	resp2, err := http.Get(ss.path("1"))
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 503 || resp2.Header.Get("Retry-After") == "" {
		t.Errorf("a stream during shutdown: %d, Retry-After %q; want 503 with Retry-After", resp2.StatusCode, resp2.Header.Get("Retry-After"))
	}
}

func TestStreamsPerTokenLimit(t *testing.T) {
	ss := newStreamServer(t, time.Minute)
	for range 3 { // MaxStreamsPerToken
		resp, err := http.Get(ss.path("1"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		readSSE(t, bufio.NewScanner(resp.Body))
	}
	resp, err := http.Get(ss.path("1"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body errorBody
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || body.Error.Code != instachat.EUNAVAILABLE {
		t.Errorf("a fourth stream: %d %q, Retry-After %q; want 503 unavailable with Retry-After", resp.StatusCode,
			body.Error.Code, resp.Header.Get("Retry-After"))
	}
}

func TestWebSocketStream(t *testing.T) {
	ss := newStreamServer(t, 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ss.path("1"), "http")+"?after=0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	var frames []string
	for range 3 {
		typ, data, err := c.Read(ctx)
		if err != nil || typ != websocket.MessageText {
			t.Fatalf("frame %v %v", typ, err)
		}
		frames = append(frames, string(data))
	}
	if !strings.HasPrefix(frames[0],
		`{"event":"message.created","revision":1,"message":{"number":1,"body":"hello"`) || frames[2] != `{"event":"synced","revision":2}` {
		t.Fatalf("frames %q", frames)
	}
	time.Sleep(300 * time.Millisecond) // past the server's timeouts, pinged meanwhile
	ss.broker.Publish(t.Context(), ss.chat.Topic, ss.chat.Create(3, "live"))
	_, data, err := c.Read(ctx)
	if err != nil || !strings.HasPrefix(string(data), `{"event":"message.created","revision":3,`) {
		t.Fatalf("live frame %q %v", data, err)
	}
	// Shutdown closes with 1001 and says why.
	go ss.streams.Shutdown(ctx)
	_, _, err = c.Read(ctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusGoingAway || !strings.Contains(ce.Reason, "shutting down") {
		t.Fatalf("after shutdown: %v, want close 1001 saying why", err)
	}
}

// TestWebSocketSlowClientClosedWithTryAgainLater checks the close status
// of a stream whose buffer overflowed.
func TestWebSocketSlowClientClosedWithTryAgainLater(t *testing.T) {
	ss := newStreamServer(t, time.Minute)
	ss.broker = inmem.NewBroker(inmem.BrokerOptions{Buffer: 2})
	ss.streams.Broker = ss.broker
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ss.path("1"), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, data, err := c.Read(ctx); err != nil || string(data) != `{"event":"synced","revision":2}` {
		t.Fatalf("first frame %q %v", data, err)
	}
	// Three events at once overflow a buffer of two, however fast the
	// client reads.
	ss.broker.Publish(t.Context(), ss.chat.Topic, ss.chat.Create(3, "a"), ss.chat.Create(4, "b"), ss.chat.Create(5, "c"))
	for {
		_, _, err := c.Read(ctx)
		var ce websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != websocket.StatusTryAgainLater || !strings.Contains(ce.Reason, "fell behind") {
				t.Fatalf("closed with %v, want 1013 saying the subscriber fell behind", ce)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestEventEncodedOnceForEveryStream: a published event, which reaches each
// stream as a copy sharing its message, is encoded once and the bytes
// shared; another event, or the same message under another name, is not
// confused with it.
func TestEventEncodedOnceForEveryStream(t *testing.T) {
	var c eventCache
	m := &instachat.Message{Number: 7, Body: "hi"}
	e := instachat.Event{Event: instachat.EventMessageCreated, Revision: 9, Message: m}
	first, second := c.json(e), c.json(e) // two subscribers' copies
	if !strings.HasPrefix(string(first), `{"event":"message.created","revision":9,"message":{"number":7,"body":"hi"`) || !json.Valid(first) {
		t.Fatalf("json = %s", first)
	}
	if &first[0] != &second[0] {
		t.Error("the second stream's copy was encoded again")
	}
	other := c.json(instachat.Event{Event: instachat.EventMessageCreated, Revision: 9, Message: &instachat.Message{Number: 8, Body: "ho"}})
	relabelled := c.json(instachat.Event{Event: instachat.EventMessageUpdated, Revision: 9, Message: m})
	synced := c.json(instachat.Event{Event: instachat.EventSynced, Revision: 9})
	if !strings.Contains(string(other), `"number":8`) ||
		!strings.Contains(string(relabelled), `"message.updated"`) ||
		string(synced) != `{"event":"synced","revision":9}` {
		t.Errorf("other %s, relabelled %s, synced %s", other, relabelled, synced)
	}
	if again := c.json(e); !strings.Contains(string(again), `"number":7`) {
		t.Errorf("after the others: %s", again)
	}
}
