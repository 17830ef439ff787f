package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/instachat/instachat/server"
)

func TestDeletesEndStreams(t *testing.T) {
	r := start(t, t.TempDir())
	deletesEndStreams(t, r, r)
}

// TestProductionDeletesEndStreams: the streams are served by one process and
// the deletions made through another, which shares only MySQL, Redis and
// Kafka with it.
func TestProductionDeletesEndStreams(t *testing.T) {
	cfg := productionConfig(t)
	front := cfg
	front.Roles = server.Roles{API: true, Dispatcher: true}
	deletesEndStreams(t, startProduction(t, cfg), startProduction(t, front))
}

// endWithin bounds how long a deleted chat's or application's streams may
// take to end: far under the 30 s idle check that ended an application's
// chat streams before its deletion reached them.
const endWithin = 5 * time.Second

// sseFrame is one event block of a Server-Sent Events stream.
type sseFrame struct{ event, id, data string }

// sseStream is an open Server-Sent Events response.
type sseStream struct {
	resp  *http.Response
	lines *bufio.Scanner
}

func openSSE(t *testing.T, ctx context.Context, url string, header http.Header) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	return &sseStream{resp: resp, lines: bufio.NewScanner(resp.Body)}
}

// next returns the next event, skipping comments; ok is false at the end
// of the stream.
func (s *sseStream) next() (f sseFrame, ok bool) {
	for s.lines.Scan() {
		line := s.lines.Text()
		if line == "" {
			if f.event != "" {
				return f, true
			}
			continue
		}
		k, v, _ := strings.Cut(line, ": ")
		switch k {
		case "event":
			f.event = v
		case "id":
			f.id = v
		case "data":
			f.data = v
		}
	}
	return f, false
}

// until reads events up to and including the first named event.
func (s *sseStream) until(t *testing.T, event string) []sseFrame {
	t.Helper()
	var got []sseFrame
	for {
		f, ok := s.next()
		if !ok {
			t.Fatalf("stream ended before %s, after %v", event, got)
		}
		got = append(got, f)
		if f.event == event {
			return got
		}
	}
}

// ended checks that the stream ends after its last event.
func (s *sseStream) ended(t *testing.T, what string) {
	t.Helper()
	if f, ok := s.next(); ok {
		t.Errorf("%s: event %+v after the last one", what, f)
	}
}

// deletesEndStreams follows a chat, then its application, on streams of
// streams (SSE and WebSocket) while deletes go through deleter: each stream
// ends at once with its last event at a revision of its own, and resuming
// after it answers 404.
func deletesEndStreams(t *testing.T, streams, deleter *running) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	app := deleter.appWithChat(t, "streams of the deleted", "one")
	for _, name := range []string{"two", "three"} {
		if _, _, err := deleter.client.CreateChat(ctx, app.Token, name, ""); err != nil {
			t.Fatal(err)
		}
	}
	base := "/api/v1/applications/" + app.Token
	for n := 1; n <= 3; n++ {
		deleter.readable(t, fmt.Sprintf("%s/chats/%d", base, n))
	}
	if _, _, err := deleter.client.CreateMessage(ctx, app.Token, 1, "before the stream", ""); err != nil {
		t.Fatal(err)
	}
	deleter.readable(t, base+"/chats/1/messages/1")

	// A chat's deletion: its stream's last event is chat.deleted, one
	// revision past the message before it.
	chat1 := openSSE(t, ctx, streams.URL()+base+"/chats/1/events?after=0", nil)
	chat1.until(t, "synced")
	if _, _, err := deleter.client.CreateMessage(ctx, app.Token, 1, "live", ""); err != nil {
		t.Fatal(err)
	}
	live := chat1.until(t, "message.created")
	if id := live[len(live)-1].id; id != "2" {
		t.Fatalf("live message.created id %s, want 2", id)
	}
	start := time.Now()
	if err := deleter.client.DeleteChat(ctx, app.Token, 1); err != nil {
		t.Fatal(err)
	}
	last := chat1.until(t, "chat.deleted")
	if d := time.Since(start); d > endWithin {
		t.Errorf("chat.deleted came %v after the deletion", d)
	}
	final := last[len(last)-1]
	var e struct {
		Event    string
		Revision int64
		Chat     map[string]any
	}
	if err := json.Unmarshal([]byte(final.data), &e); err != nil || final.id != "3" || e.Revision != 3 || e.Chat["number"] != 1.0 {
		t.Errorf("chat.deleted %+v (%v); want id and revision 3, after the message at 2, of chat 1", final, err)
	}
	chat1.ended(t, "deleted chat's stream")
	// Resuming after it, as EventSource would: the chat is gone.
	if st, v := streams.do(t, "GET", base+"/chats/1/events?after=3", "", ""); st != http.StatusNotFound {
		t.Errorf("resume after chat.deleted: %d %v, want 404", st, v)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, streams.URL()+base+"/chats/1/events", nil)
	req.Header.Set("Last-Event-ID", final.id)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("resume with Last-Event-ID after chat.deleted: %v %v, want 404", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}

	// The application's deletion ends the streams of its chats — SSE and
	// WebSocket — and its own, each with application.deleted.
	chat2 := openSSE(t, ctx, streams.URL()+base+"/chats/2/events", nil)
	chat2.until(t, "synced")
	appStream := openSSE(t, ctx, streams.URL()+base+"/events", nil)
	if f := appStream.until(t, "synced"); f[len(f)-1].id != "4" {
		t.Fatalf("application stream synced at %s, want 4: three chats created, one deleted", f[len(f)-1].id)
	}
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(streams.URL(), "http")+base+"/chats/3/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, data, err := ws.Read(ctx); err != nil || !strings.Contains(string(data), `"synced"`) {
		t.Fatalf("first frame %q %v, want synced", data, err)
	}
	start = time.Now()
	if err := deleter.client.DeleteApplication(ctx, app.Token); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		s    *sseStream
		id   string // one past synced
	}{{"chat 2's SSE stream", chat2, "1"}, {"the application's stream", appStream, "5"}} {
		got := c.s.until(t, "application.deleted")
		if d := time.Since(start); d > endWithin {
			t.Errorf("%s: application.deleted came %v after the deletion", c.what, d)
		}
		if f := got[len(got)-1]; f.id != c.id {
			t.Errorf("%s: application.deleted id %s, want %s", c.what, f.id, c.id)
		}
		c.s.ended(t, c.what)
	}
	wctx, wcancel := context.WithTimeout(ctx, endWithin)
	defer wcancel()
	_, data, err := ws.Read(wctx)
	if err != nil || string(data) != `{"event":"application.deleted","revision":1}` {
		t.Errorf("chat 3's WebSocket: %q %v, want application.deleted at 1", data, err)
	}
	_, _, err = ws.Read(wctx)
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure || !strings.Contains(ce.Reason, "deleted") {
		t.Errorf("chat 3's WebSocket after application.deleted: %v, want a normal close saying it was deleted", err)
	}
	if st, v := streams.do(t, "GET", base+"/chats/2/events?after=1", "", ""); st != http.StatusNotFound {
		t.Errorf("resume after application.deleted: %d %v, want 404", st, v)
	}
}
