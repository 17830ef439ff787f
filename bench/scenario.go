package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/instachat/instachat"
	instachathttp "github.com/instachat/instachat/http"
)

var scenarios = []string{"create-chats", "create-messages", "list-messages", "search", "mixed"}

// op is one request of a load, relative to the server's base URL. A load
// cycles through its ops.
type op struct {
	method, path string
	body         []byte // JSON of a POST, nil for a GET
}

// workload is what the ops of a scenario address.
type workload struct {
	token    string
	chats    int
	messages int // in each chat when the load starts
	bodies   [][]byte
}

// distinctBodies is how many different message bodies a load cycles
// through: enough that search sees varied text, few enough to build once.
const distinctBodies = 64

// setup makes the application, its chats and, for scenarios that read,
// their messages, unless -token names an application that has them.
func setup(ctx context.Context, o options, client *instachathttp.Client, stderr io.Writer) (*workload, error) {
	w := &workload{token: o.token, chats: o.chats, bodies: messageBodies(o.bodySize)}
	if o.token != "" {
		// The last chat holds the fewest: populate gives the first ones one more
		// when the messages do not divide evenly.
		last, err := client.FindChat(ctx, o.token, int64(o.chats))
		if err != nil {
			return nil, err
		}
		w.messages = int(last.MessagesCount)
		return w, nil
	}
	app, err := client.CreateApplication(ctx, "bench")
	if err != nil {
		return nil, err
	}
	w.token = app.Token
	for range o.chats {
		if _, _, err := client.CreateChat(ctx, w.token, "", ""); err != nil {
			return nil, err
		}
	}
	if o.scenario == "create-chats" || o.scenario == "create-messages" || o.prefill == 0 {
		return w, nil
	}
	pre := o
	pre.requests = o.prefill * o.chats
	res, err := drive(ctx, o.url, w.creates(), o.concurrency, pre, "prefill", stderr)
	if err != nil {
		return nil, err
	}
	if len(res.Errors) > 0 {
		return nil, fmt.Errorf("prefill failed: %v", res.Errors)
	}
	w.messages = o.prefill
	return w, nil
}

// messageBodies are the request bodies a load's creates cycle through,
// the same every run.
func messageBodies(size int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := make([][]byte, distinctBodies)
	for i := range bodies {
		bodies[i] = messageJSON(text(rng, "", size))
	}
	return bodies
}

func (w *workload) ops(scenario string) []*op {
	switch scenario {
	case "create-chats":
		return []*op{{http.MethodPost, appPath(w.token) + "/chats", []byte(`{"name":"bench"}`)}}
	case "create-messages":
		return w.creates()
	case "list-messages":
		return w.lists()
	case "search":
		return w.searches()
	}
	return mixed(w.creates(), w.lists(), w.searches())
}

// spread returns n ops, op i addressing chat i%chats+1, so that a load
// cycling through them spreads evenly over the chats.
func (w *workload) spread(n int, f func(i int, chat string) *op) []*op {
	ops := make([]*op, n)
	for i := range ops {
		ops[i] = f(i, chatPath(w.token, i%w.chats+1))
	}
	return ops
}

// creates pairs every chat with every body as long as either lasts.
func (w *workload) creates() []*op {
	return w.spread(max(w.chats, len(w.bodies)), func(i int, chat string) *op {
		return &op{http.MethodPost, chat + "/messages", w.bodies[i%len(w.bodies)]}
	})
}

// lists reads pages of 20 at the start of the chats and a quarter, half and
// three quarters into them, in turn.
func (w *workload) lists() []*op {
	return w.spread(max(w.chats, 4), func(i int, chat string) *op {
		path := chat + "/messages?limit=20"
		if after := w.messages * (i % 4) / 4; after > 0 {
			path += "&cursor=" + instachat.EncodeCursor(int64(after))
		}
		return &op{http.MethodGet, path, nil}
	})
}

// searches asks each chat for vocabulary words in turn. A 100-byte body
// holds about 13 of the 64 words, so a search matches about a fifth of the
// chat's messages: ranking them is the cost being measured.
func (w *workload) searches() []*op {
	return w.spread(max(w.chats, len(vocabulary)), func(i int, chat string) *op {
		return &op{http.MethodGet, chat + "/messages/search?limit=20&q=" + vocabulary[i%len(vocabulary)], nil}
	})
}

// mixed is 80% creates, 10% lists and 10% searches, long enough for every
// one of them to come up.
func mixed(creates, lists, searches []*op) []*op {
	ops := make([]*op, 10*max(len(creates), len(lists), len(searches)))
	for i := range ops {
		switch i % 10 {
		case 8:
			ops[i] = lists[i/10%len(lists)]
		case 9:
			ops[i] = searches[i/10%len(searches)]
		default:
			ops[i] = creates[i%len(creates)]
		}
	}
	return ops
}

func appPath(token string) string { return "/api/v1/applications/" + token }

func chatPath(token string, chat int) string {
	return appPath(token) + "/chats/" + strconv.Itoa(chat)
}

// vocabulary is lower-case ASCII, so a body of n words is n bytes of JSON
// string and a word is a URL query as it stands.
var vocabulary = []string{
	"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "hello", "world",
	"chat", "message", "lorem", "ipsum", "dolor", "sit", "amet", "consectetur",
	"adipiscing", "elit", "sed", "eiusmod", "tempor", "incididunt", "labore", "dolore",
	"magna", "aliqua", "enim", "minim", "veniam", "quis", "nostrud", "exercitation",
	"ullamco", "laboris", "nisi", "aliquip", "commodo", "consequat", "duis", "aute",
	"irure", "reprehenderit", "voluptate", "velit", "esse", "cillum", "fugiat", "nulla",
	"pariatur", "excepteur", "sint", "occaecat", "cupidatat", "proident", "sunt", "culpa",
	"officia", "deserunt", "mollit", "anim", "laborum", "supercalifragilistic",
}

// text returns prefix followed by vocabulary words, cut at n bytes (never
// into prefix).
func text(rng *rand.Rand, prefix string, n int) string {
	b := make([]byte, 0, max(n, len(prefix))+len("supercalifragilistic "))
	b = append(b, prefix...)
	for len(b) < n {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, vocabulary[rng.IntN(len(vocabulary))]...)
	}
	return string(b[:max(n, len(prefix))])
}

// messageJSON is the request body that creates a message.
func messageJSON(body string) []byte {
	b, _ := json.Marshal(struct {
		Body string `json:"body"`
	}{body}) // a struct of one string always marshals
	return b
}
