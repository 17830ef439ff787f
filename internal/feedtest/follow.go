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
// many connections, how the last one ended, and the broken guarantee or
// stall that stopped it.
type Subscriber struct {
	Chat        int64
	Transport   string
	Client      *Client
	Connections int
	// End is how the server ended the last connection, when it did: the
	// text of SSE's ": end: …" comment, or WebSocket's close status and
	// reason ("1000: …").
	End string
	Err error
}

// Options of SubscribeWith. The zero value is Subscribe's.
type Options struct {
	// From is the copy to resume, from its Last revision, as a client that
	// loaded the chat at that revision would; nil starts a new client
	// through ?after=0.
	From *Client
	// Hold keeps one connection, which the client never drops, until it
	// holds the final revision: a live stream through the whole load.
	// Without it each connection reads up to a random number of events or
	// for a random while, then drops. A chat that gets deleted must be
	// followed with Hold: its stream ends with chat.deleted, and a
	// reconnect after that is answered 404.
	Hold bool
	Seed uint64
}

// Subscribe follows one chat's feed at base (an api process's URL) over
// SSE or WebSocket (ws) until it holds final's revision (-1 while
// unknown): each connection reads up to a random number of events or for a
// random while, then drops, and the next resumes from the last revision
// received.
func Subscribe(base, token string, chat int64, ws bool, seed uint64, final *atomic.Int64) Subscriber {
	return SubscribeWith(base, token, chat, ws, final, Options{Seed: seed})
}

// SubscribeWith is Subscribe with opt. It also returns once the client
// received chat.deleted and the server ended that connection; an event
// after chat.deleted breaks the guarantee.
func SubscribeWith(base, token string, chat int64, ws bool, final *atomic.Int64, opt Options) Subscriber {
	res := Subscriber{Chat: chat, Transport: "sse", Client: opt.From}
	if ws {
		res.Transport = "websocket"
	}
	resume := opt.From != nil // else the first connection replays from 0 through ?after=0
	if res.Client == nil {
		res.Client = NewClient()
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 3))
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
		switch {
		case target >= 0:
			limit, hold = 0, 5*time.Second // stay until caught up
		case opt.Hold:
			limit, hold = 0, time.Until(deadline)
		}
		ctx, cancel := context.WithTimeout(context.Background(), hold)
		var last atomic.Int64 // res.Client.Last, for the watch below
		last.Store(res.Client.Last)
		caughtUp := func() bool { t := final.Load(); return t >= 0 && last.Load() >= t }
		stop := func(e instachat.Event) bool {
			last.Store(res.Client.Last)
			return limit > 0 && res.Client.Last > 0 && rng.IntN(limit) == 0 || caughtUp()
		}
		if opt.Hold {
			// A held connection that holds the final revision already
			// when it becomes known gets no event to stop at.
			go func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						if caughtUp() {
							cancel()
							return
						}
					}
				}
			}()
		}
		res.Connections++
		var end string
		var err error
		if ws {
			end, err = followWebSocket(ctx, base, token, chat, res.Client, resume, stop)
		} else {
			end, err = followSSE(ctx, base, token, chat, res.Client, resume, stop)
		}
		cancel()
		res.Client.Disconnect()
		res.End = end
		resume = true
		var guarantee *guaranteeError
		if errors.As(err, &guarantee) {
			res.Err = err
			return res
		}
		if res.Client.Deleted {
			if ctx.Err() != nil && end == "" {
				res.Err = fmt.Errorf("the stream did not end after chat.deleted")
			}
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
// to client, until stop says so, ctx ends or the server ends the stream
// (end is then its ": end: …" comment's text). The first connection asks
// ?after=0, later ones resume with Last-Event-ID as EventSource does.
func followSSE(ctx context.Context, base, token string, chat int64, client *Client, resume bool,
	stop func(instachat.Event) bool) (end string, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", eventsPath(base, token, chat, 0), nil)
	if err != nil {
		return "", err
	}
	if resume {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(client.Last, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		body, _ := io.ReadAll(resp.Body)
		return "", &guaranteeError{fmt.Errorf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)}
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
				return "", &guaranteeError{fmt.Errorf("data %q: %v", data, err)}
			}
			if e.Event != name || strconv.FormatInt(e.Revision, 10) != id {
				return "", &guaranteeError{fmt.Errorf("event: %s, id: %s, but data %s", name, id, data)}
			}
			if err := client.Apply(e); err != nil {
				return "", &guaranteeError{err}
			}
			if stop(e) {
				return "", nil
			}
			name, id, data = "", "", ""
		case strings.HasPrefix(line, ": end: "):
			end = line[len(": end: "):]
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			name = line[len("event: "):]
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		default:
			return "", &guaranteeError{fmt.Errorf("unexpected line %q", line)}
		}
	}
	return end, sc.Err()
}

// followWebSocket is followSSE over WebSocket, resuming with ?after; end
// is the close frame's status and reason when the server closed.
func followWebSocket(ctx context.Context, base, token string, chat int64, client *Client, resume bool,
	stop func(instachat.Event) bool) (end string, err error) {
	after := int64(0)
	if resume {
		after = client.Last
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(eventsPath(base, token, chat, after), "http"), nil)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return "", &guaranteeError{fmt.Errorf("dial: status %d: %v", resp.StatusCode, err)}
		}
		return "", err
	}
	defer c.CloseNow()
	for {
		typ, data, err := c.Read(ctx)
		if err != nil {
			var closed websocket.CloseError
			if errors.As(err, &closed) {
				end = fmt.Sprintf("%d: %s", int(closed.Code), closed.Reason)
			}
			return end, err
		}
		if typ != websocket.MessageText {
			return "", &guaranteeError{fmt.Errorf("a %v frame", typ)}
		}
		var e instachat.Event
		if err := json.Unmarshal(data, &e); err != nil {
			return "", &guaranteeError{fmt.Errorf("frame %q: %v", data, err)}
		}
		if err := client.Apply(e); err != nil {
			return "", &guaranteeError{err}
		}
		if stop(e) {
			c.Close(websocket.StatusNormalClosure, "")
			return "", nil
		}
	}
}
