package feedtest

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
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/instachat/instachat"
)

// Subscriber is what Subscribe did: the copy its client holds, over how
// many connections, and the broken guarantee or stall that stopped it.
type Subscriber struct {
	Chat        int64
	Transport   string
	Client      *Client
	Connections int
	Err         error
}

// Subscribe follows one chat's feed at base (an api process's URL) over
// SSE or WebSocket (ws) until it holds final's revision (-1 while unknown) until it holds the final revision:
// each connection reads up to a random number of events or for a random
// while, then drops, and the next resumes from the last revision received.
func Subscribe(base, token string, chat int64, ws bool, seed uint64, final *atomic.Int64) Subscriber {
	res := Subscriber{Chat: chat, Transport: "sse", Client: NewClient()}
	if ws {
		res.Transport = "websocket"
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	resume := false // the first connection replays from 0 through ?after=0
	deadline := time.Now().Add(150 * time.Second)
	for {
		target := final.Load()
		if target >= 0 && res.Client.Last >= target {
			return res
		}
		if time.Now().After(deadline) {
			res.Err = fmt.Errorf("at revision %d, final %d, after %d connections", res.Client.Last, target, res.Connections)
			return res
		}
		limit := 1 + rng.IntN(60)
		hold := time.Duration(50+rng.IntN(400)) * time.Millisecond
		if target >= 0 {
			limit, hold = 0, 5*time.Second // stay until caught up
		}
		ctx, cancel := context.WithTimeout(context.Background(), hold)
		stop := func(e instachat.Event) bool {
			return limit > 0 && res.Client.Last > 0 && rng.IntN(limit) == 0 || target >= 0 && res.Client.Last >= target
		}
		res.Connections++
		var err error
		if ws {
			err = followWebSocket(ctx, base, token, chat, res.Client, resume, stop)
		} else {
			err = followSSE(ctx, base, token, chat, res.Client, resume, stop)
		}
		cancel()
		res.Client.Disconnect()
		resume = true
		var guarantee *guaranteeError
		if errors.As(err, &guarantee) {
			res.Err = err
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
func followSSE(ctx context.Context, base, token string, chat int64, client *Client, resume bool, stop func(instachat.Event) bool) error {
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
func followWebSocket(ctx context.Context, base, token string, chat int64, client *Client, resume bool, stop func(instachat.Event) bool) error {
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
