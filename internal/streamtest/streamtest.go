// Package streamtest is the end-to-end scenario of the change feeds'
// streams, run by the server's tests (embedded and production in one
// process) and by the multi-process topology test of cmd/instachat.
package streamtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/instachat/instachat"
	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/internal/feedtest"
	"github.com/instachat/instachat/internal/testenv"
)

// Front is one process serving the api and the dispatcher: its base URL
// and a client of it.
type Front struct {
	URL    string
	Client *instachathttp.Client
}

// Converge runs the scenario on fronts (processes serving the api and the
// dispatcher); disrupt, when set, is called halfway through the
// writes. At the end every subscriber holds exactly the chat's listed
// messages, every acknowledged create among them; feedtest.Client checked
// on the way that no revision came twice, no message.created twice, and no
// revision was skipped after synced.
func Converge(t *testing.T, fronts []Front, disrupt func()) {
	const (
		chats       = 4
		writers     = 16
		creates     = 12 // per writer
		subscribers = 8  // per chat
	)
	ctx := context.Background()
	front := fronts[0]
	app, err := front.Client.CreateApplication(ctx, "streams")
	if err != nil {
		t.Fatal(err)
	}
	for range chats {
		if _, _, err := front.Client.CreateChat(ctx, app.Token, "chat", ""); err != nil {
			t.Fatal(err)
		}
	}
	for c := 1; c <= chats; c++ {
		for _, f := range fronts {
			testenv.Eventually(t, 10*time.Second, func() error { // at once after 201, soon after 202
				_, err := f.Client.FindChat(ctx, app.Token, int64(c))
				return err
			})
		}
	}

	var subs sync.WaitGroup
	results := make(chan feedtest.Subscriber, chats*subscribers)
	finals := make([]atomic.Int64, chats+1) // each chat's final revision, -1 until known
	for c := 1; c <= chats; c++ {
		finals[c].Store(-1)
		for i := range subscribers {
			base := fronts[(c+i)%len(fronts)].URL
			ws := i%2 == 1
			subs.Go(func() {
				results <- feedtest.Subscribe(base, app.Token, int64(c), ws, uint64(c*100+i), &finals[c])
			})
		}
	}

	// Writers: each creates in chat w%chats+1 through a front of its own,
	// and edits one of its messages now and then.
	var mu sync.Mutex
	acked := make([]map[int64]string, chats+1)
	for c := range acked {
		acked[c] = map[int64]string{}
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
				m, _, err := f.Client.CreateMessage(ctx, app.Token, chat, body, "")
				if err != nil {
					t.Errorf("create: %v", err)
					return
				}
				mu.Lock()
				if prev, ok := acked[chat][m.Number]; ok {
					t.Errorf("chat %d: number %d answered twice: %q and %q", chat, m.Number, prev, body)
				}
				acked[chat][m.Number] = body
				mu.Unlock()
				mine = append(mine, m.Number)
				if rng.IntN(3) == 0 {
					n := mine[rng.IntN(len(mine))]
					edited := fmt.Sprintf("writer %d edit %d of %d", w, i, n)
					// In production the message may not be stored yet,
					// nor for a while if its worker was just killed.
					for deadline := time.Now().Add(60 * time.Second); ; {
						_, err := f.Client.UpdateMessage(ctx, app.Token, chat, n, edited)
						if err == nil {
							mu.Lock()
							acked[chat][n] = edited
							mu.Unlock()
							break
						}
						if instachat.ErrorCode(err) != instachat.ENOTFOUND || time.Now().After(deadline) {
							t.Errorf("edit of %d: %v", n, err)
							break
						}
						time.Sleep(50 * time.Millisecond)
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
		testenv.Eventually(t, 60*time.Second, func() error {
			var err error
			if chat, err = front.Client.FindChat(ctx, app.Token, int64(c)); err != nil {
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
		rows, err := front.Client.AllMessages(ctx, app.Token, int64(c))
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
		if res.Err != nil {
			t.Errorf("chat %d subscriber (%s): %v", res.Chat, res.Transport, res.Err)
			continue
		}
		connections += res.Connections
		if d := feedtest.Diff(res.Client.Messages, listed[res.Chat]); d != "" {
			t.Errorf("chat %d subscriber (%s) after %d connections: %s", res.Chat, res.Transport, res.Connections, d)
		}
	}
	t.Logf("%d subscribers converged over %d connections", chats*subscribers, connections)
}

// KillFeedConnections kills every Redis connection named name (see
// redis.ConnectionName) that holds a sharded subscription, as CLIENT KILL
// TYPE pubsub would without touching other tests' connections.
func KillFeedConnections(t *testing.T, url, name string) {
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
