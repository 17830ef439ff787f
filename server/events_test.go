package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/rueidis"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/feedtest"
	"github.com/instachat/instachat/redis"
	"github.com/instachat/instachat/server"
)

// The change feeds end to end: writers create and edit messages in several
// chats through the API while SSE and WebSocket subscribers receive them,
// drop their connection at random moments and resume from the last
// revision they received.

func TestStreamsConverge(t *testing.T) {
	r := start(t, t.TempDir())
	streamsConverge(t, []*running{r}, nil)
}

// streamsConverge runs the scenario on fronts (processes serving the api
// and the dispatcher); disrupt, when set, is called halfway through the
// writes. At the end every subscriber holds exactly the chat's listed
// messages, every acknowledged create among them; feedtest.Client checked
// on the way that no revision came twice, no message.created twice, and no
// revision was skipped after synced.
func streamsConverge(t *testing.T, fronts []*running, disrupt func()) {
	const (
		chats       = 4
		writers     = 16
		creates     = 12 // per writer
		subscribers = 8  // per chat
	)
	ctx := context.Background()
	front := fronts[0]
	app, err := front.client.CreateApplication(ctx, "streams")
	if err != nil {
		t.Fatal(err)
	}
	for range chats {
		if _, _, err := front.client.CreateChat(ctx, app.Token, "chat"); err != nil {
			t.Fatal(err)
		}
	}
	for c := 1; c <= chats; c++ {
		for _, f := range fronts {
			f.readable(t, fmt.Sprintf("/api/v1/applications/%s/chats/%d", app.Token, c))
		}
	}

	var subs sync.WaitGroup
	results := make(chan subscriberResult, chats*subscribers)
	finals := make([]atomic.Int64, chats+1) // each chat's final revision, -1 until known
	for c := 1; c <= chats; c++ {
		finals[c].Store(-1)
		for i := range subscribers {
			base := fronts[(c+i)%len(fronts)].URL()
			ws := i%2 == 1
			subs.Go(func() {
				results <- subscribe(base, app.Token, int64(c), ws, uint64(c*100+i), &finals[c])
			})
		}
	}

	// Writers: each creates in chat w%chats+1 through a front of its own,
	// and edits one of its messages now and then.
	var mu sync.Mutex
	acked := make([]answers, chats+1)
	for c := range acked {
		acked[c] = answers{}
	}
	var writes sync.WaitGroup
	var done atomic.Int32
	for w := range writers {
		writes.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			f := fronts[w%len(fronts)]
			chat := int64(w%chats + 1)
			var mine []int64
			for i := range creates {
				body := fmt.Sprintf("writer %d message %d", w, i)
				m, _, err := f.client.CreateMessage(ctx, app.Token, chat, body)
				if err != nil {
					t.Errorf("create: %v", err)
					return
				}
				mu.Lock()
				err = acked[chat].add(m.Number, body)
				mu.Unlock()
				if err != nil {
					t.Error(err)
				}
				mine = append(mine, m.Number)
				if rng.IntN(3) == 0 {
					n := mine[rng.IntN(len(mine))]
					edited := fmt.Sprintf("writer %d edit %d of %d", w, i, n)
					// In production the message may not be stored yet.
					for try := 0; ; try++ {
						_, err := f.client.UpdateMessage(ctx, app.Token, chat, n, edited)
						if err == nil {
							mu.Lock()
							acked[chat][n] = edited
							mu.Unlock()
							break
						}
						if instachat.ErrorCode(err) != instachat.ENOTFOUND || try == 100 {
							t.Errorf("edit of %d: %v", n, err)
							break
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
				if done.Add(1) == writers*creates/2 && disrupt != nil {
					disrupt()
				}
				time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
			}
		})
	}
	writes.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Once every create is stored, the chats' revisions are final.
	for c := 1; c <= chats; c++ {
		var chat *instachat.Chat
		eventually(t, 30*time.Second, func() error {
			var err error
			if chat, err = front.client.Chat(ctx, app.Token, int64(c)); err != nil {
				return err
			}
			if chat.MessagesCount != int64(len(acked[c])) {
				return fmt.Errorf("chat %d: %d messages stored of %d", c, chat.MessagesCount, len(acked[c]))
			}
			return nil
		})
		finals[c].Store(chat.Revision)
	}
	subs.Wait()
	close(results)

	listed := make([]map[int64]string, chats+1)
	for c := 1; c <= chats; c++ {
		rows, err := front.client.AllMessages(ctx, app.Token, int64(c))
		if err != nil {
			t.Fatal(err)
		}
		listed[c] = map[int64]string{}
		for _, m := range rows {
			listed[c][m.Number] = m.Body
		}
		if d := feedtest.Diff(listed[c], acked[c]); d != "" {
			t.Errorf("chat %d: the listed messages differ from what the writers were answered: %s", c, d)
		}
	}
	connections := 0
	for res := range results {
		if res.err != nil {
			t.Errorf("chat %d subscriber (%s): %v", res.chat, res.transport, res.err)
			continue
		}
		connections += res.connections
		if d := feedtest.Diff(res.client.Messages, listed[res.chat]); d != "" {
			t.Errorf("chat %d subscriber (%s) after %d connections: %s", res.chat, res.transport, res.connections, d)
		}
	}
	t.Logf("%d subscribers converged over %d connections", chats*subscribers, connections)
}

type subscriberResult struct {
	chat        int64
	transport   string
	client      *feedtest.Client
	connections int
	err         error
}

// subscribe follows one chat's feed until it holds the final revision:
// each connection reads up to a random number of events or for a random
// while, then drops, and the next resumes from the last revision received.
func subscribe(base, token string, chat int64, ws bool, seed uint64, final *atomic.Int64) subscriberResult {
	res := subscriberResult{chat: chat, transport: "sse", client: feedtest.NewClient()}
	if ws {
		res.transport = "websocket"
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	resume := false // the first connection replays from 0 through ?after=0
	deadline := time.Now().Add(90 * time.Second)
	for {
		target := final.Load()
		if target >= 0 && res.client.Last >= target {
			return res
		}
		if time.Now().After(deadline) {
			res.err = fmt.Errorf("at revision %d, final %d, after %d connections", res.client.Last, target, res.connections)
			return res
		}
		limit := 1 + rng.IntN(60)
		hold := time.Duration(50+rng.IntN(400)) * time.Millisecond
		if target >= 0 {
			limit, hold = 0, 5*time.Second // stay until caught up
		}
		ctx, cancel := context.WithTimeout(context.Background(), hold)
		stop := func(e instachat.Event) bool {
			return limit > 0 && res.client.Last > 0 && rng.IntN(limit) == 0 || target >= 0 && res.client.Last >= target
		}
		res.connections++
		var err error
		if ws {
			err = followWebSocket(ctx, base, token, chat, res.client, resume, stop)
		} else {
			err = followSSE(ctx, base, token, chat, res.client, resume, stop)
		}
		cancel()
		res.client.Disconnect()
		resume = true
		var guarantee *guaranteeError
		if errors.As(err, &guarantee) {
			res.err = err
			return res
		}
	}
}

// guaranteeError is a broken promise of the stream, as opposed to a
// connection that ended.
type guaranteeError struct{ err error }

func (e *guaranteeError) Error() string { return "guarantee broken: " + e.err.Error() }

func eventsPath(base, token string, chat int64, after int64) string {
	return fmt.Sprintf("%s/api/v1/applications/%s/chats/%d/events?after=%d", base, token, chat, after)
}

// followSSE reads one Server-Sent Events connection, applying each event
// to client, until stop says so, ctx ends or the server ends the stream.
// The first connection asks ?after=0, later ones resume with Last-Event-ID
// as EventSource does.
func followSSE(ctx context.Context, base, token string, chat int64, client *feedtest.Client, resume bool, stop func(instachat.Event) bool) error {
	req, err := http.NewRequestWithContext(ctx, "GET", eventsPath(base, token, chat, 0), nil)
	if err != nil {
		return err
	}
	if resume {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(client.Last, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(resp.Body)
		return &guaranteeError{fmt.Errorf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var name, id, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if name == "" {
				continue // a comment block (heartbeat, end)
			}
			var e instachat.Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				return &guaranteeError{fmt.Errorf("data %q: %v", data, err)}
			}
			if e.Event != name || strconv.FormatInt(e.Revision, 10) != id {
				return &guaranteeError{fmt.Errorf("event: %s, id: %s, but data %s", name, id, data)}
			}
			if err := client.Apply(e); err != nil {
				return &guaranteeError{err}
			}
			if stop(e) {
				return nil
			}
			name, id, data = "", "", ""
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		default:
			return &guaranteeError{fmt.Errorf("unexpected line %q", line)}
		}
	}
	return sc.Err()
}

// followWebSocket is followSSE over WebSocket, resuming with ?after.
func followWebSocket(ctx context.Context, base, token string, chat int64, client *feedtest.Client, resume bool, stop func(instachat.Event) bool) error {
	after := int64(0)
	if resume {
		after = client.Last
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(eventsPath(base, token, chat, after), "http"), nil)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return &guaranteeError{fmt.Errorf("dial: status %d: %v", resp.StatusCode, err)}
		}
		return err
	}
	defer c.CloseNow()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			return &guaranteeError{fmt.Errorf("a %v frame", typ)}
		}
		var e instachat.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return &guaranteeError{fmt.Errorf("frame %q: %v", data, err)}
		}
		if err := client.Apply(e); err != nil {
			return &guaranteeError{err}
		}
		if stop(e) {
			c.Close(websocket.StatusNormalClosure, "")
			return nil
		}
	}
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
	var fronts []*running
	for _, roles := range []server.Roles{{API: true, Dispatcher: true}, {API: true, Dispatcher: true}, {Worker: true}, {Worker: true}} {
		c := cfg
		c.Roles = roles
		r := startProduction(t, c)
		if roles.API {
			fronts = append(fronts, r)
		}
	}
	streamsConverge(t, fronts, func() { killPubSub(t, cfg.RedisURL, redis.ConnectionName(cfg.RedisPrefix)) })
}

// killPubSub kills every Redis connection named name that holds a sharded
// subscription.
func killPubSub(t *testing.T, url, name string) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Error(err)
		return
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	ctx := context.Background()
	list, err := c.Do(ctx, c.B().ClientList().TypePubsub().Build()).ToString()
	if err != nil {
		t.Error(err)
		return
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		fields := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k[strings.LastIndex(k, ":")+1:]] = v // RESP3 may start the text with "txt:"
		}
		if fields["name"] != name || fields["ssub"] == "0" {
			continue
		}
		id, _ := strconv.ParseInt(fields["id"], 10, 64)
		if err := c.Do(ctx, c.B().ClientKill().Id(id).Build()).Error(); err != nil {
			t.Error(err)
			return
		}
		killed++
	}
	if killed == 0 {
		t.Errorf("no pub/sub connection named %s to kill in:\n%s", name, list)
	}
	t.Logf("killed %d pub/sub connections", killed)
}
