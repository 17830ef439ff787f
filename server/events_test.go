package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat/internal/streamtest"
	"github.com/instachat/instachat/redis"
	"github.com/instachat/instachat/server"
)

// The change feeds end to end: writers create and edit messages in several
// chats through the API while SSE and WebSocket subscribers receive them,
// drop their connection at random moments and resume from the last
// revision they received.

func TestStreamsConverge(t *testing.T) {
	r := start(t, t.TempDir())
	streamtest.Converge(t, []streamtest.Front{{URL: r.URL(), Client: r.client}}, nil)
}

// TestProductionStreamsConverge is the scenario on the production topology
// in one process: two api,dispatcher fronts and two workers on one MySQL,
// Redis and Kafka. Creates are published to Redis by the workers, edits by
// the fronts, and halfway through every pub/sub connection of the test's
// brokers is killed (CLIENT KILL, as TYPE pubsub would, but sparing other
// tests on the same Redis): the streams they fed end, their clients resume,
// and all still converge.
func TestProductionStreamsConverge(t *testing.T) {
	cfg := productionConfig(t)
	var fronts []streamtest.Front
	for _, roles := range []server.Roles{{API: true, Dispatcher: true}, {API: true, Dispatcher: true}, {Worker: true}, {Worker: true}} {
		c := cfg
		c.Roles = roles
		r := startProduction(t, c)
		if roles.API {
			fronts = append(fronts, streamtest.Front{URL: r.URL(), Client: r.client})
		}
	}
	streamtest.Converge(t, fronts, func() { streamtest.KillFeedConnections(t, cfg.RedisURL, redis.ConnectionName(cfg.RedisPrefix)) })
}

// TestStreamMetricsAndShutdown opens a stream on the embedded server, sees
// it in /metrics with an event published and delivered, then closes the
// server: the stream ends at once, saying why, instead of holding the
// shutdown until its timeout.
func TestStreamMetricsAndShutdown(t *testing.T) {
	r := start(t, t.TempDir())
	ctx := t.Context()
	app := r.appWithChat(t, "metrics", "c")
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/applications/%s/chats/1/events", r.URL(), app.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		if !lines.Scan() {
			t.Fatalf("the stream ended: %v", lines.Err())
		}
		return lines.Text()
	}
	if got := next(); got != "event: synced" {
		t.Fatalf("first line %q, want event: synced", got)
	}
	if _, _, err := r.client.CreateMessage(ctx, app.Token, 1, "hello", ""); err != nil {
		t.Fatal(err)
	}
	for next() != "event: message.created" {
	}
	metrics := func() string {
		req, _ := http.NewRequest("GET", r.URL()+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+r.Config.AdminToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	wants := []string{
		`instachat_stream_subscribers{transport="sse"} 1`,
		`instachat_stream_subscribers{transport="websocket"} 0`,
		"instachat_feed_events_published_total 2", // chat.created, message.created
		"instachat_stream_events_delivered_total 1",
		"instachat_stream_delivery_lag_seconds_count 1",
		// The index applied the message, and the gauge reads it.
		"instachat_search_index_queued 0",
		"instachat_search_index_erasures 0",
	}
	// A delivery is counted just after its event is written, and the
	// index applies a create just after its commit: wait for both.
	var m string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m = metrics()
		if !slices.ContainsFunc(wants, func(w string) bool { return !strings.Contains(m, w) }) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range wants {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	closed := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		start := time.Now()
		err := r.Close(cctx)
		if err == nil && time.Since(start) > 10*time.Second {
			err = fmt.Errorf("close took %v", time.Since(start))
		}
		closed <- err
	}()
	rest, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(rest), ": end: the server is shutting down") {
		t.Errorf("the stream ended with %q, want a comment saying the server shuts down", rest)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	r.Server = nil
}

// TestApplicationStream follows an application's feed: a chat created and
// one renamed after the stream started are announced on it, in order.
func TestApplicationStream(t *testing.T) {
	r := start(t, t.TempDir())
	ctx := t.Context()
	app := r.appWithChat(t, "chats", "first")
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/applications/%s/events?after=0", r.URL(), app.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, _, err := r.client.CreateChat(ctx, app.Token, "second", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.UpdateChat(ctx, app.Token, 1, "renamed"); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(resp.Body)
	var got []string
	for len(got) < 4 && lines.Scan() {
		if line := lines.Text(); strings.HasPrefix(line, "data: ") {
			var e struct {
				Event    string
				Revision int64
				Chat     *struct {
					Number int64
					Name   string
				}
			}
			if err := json.Unmarshal([]byte(line[len("data: "):]), &e); err != nil {
				t.Fatal(err)
			}
			s := fmt.Sprintf("%s@%d", e.Event, e.Revision)
			if e.Chat != nil {
				s += fmt.Sprintf(" %d %s", e.Chat.Number, e.Chat.Name)
			}
			got = append(got, s)
		}
	}
	want := []string{"chat.created@1 1 first", "synced@1", "chat.created@2 2 second", "chat.updated@3 1 renamed"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("application stream %q, want %q", got, want)
	}
}
