package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	instachathttp "github.com/instachat/instachat/http"
)

// Lag is how long creates take to become visible after their 2xx answer:
// until a GET of the message answers 200, and until a search for a word
// that only it holds finds it.
type Lag struct {
	Samples int     `json:"samples"` // creates measured
	Failed  int     `json:"failed"`  // creates that failed or stayed invisible for lagTimeout
	Read    Latency `json:"read_ms"`
	Search  Latency `json:"search_ms"`
}

const lagTimeout = 10 * time.Second

// probeLag creates o.lagSamples messages one at a time, spread evenly over
// the load's duration (back to back under -n), and polls each until GET and
// search see it.
func probeLag(ctx context.Context, client *instachathttp.Client, w *workload, o options) *Lag {
	var spacing time.Duration
	if o.requests == 0 {
		spacing = o.duration / time.Duration(o.lagSamples)
	}
	// Seeded afresh each run: with -token, earlier runs' probes are in the
	// same chats and must not be found instead.
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var lag Lag
	var read, search histogram
	start := time.Now()
	for i := range o.lagSamples {
		if !sleepUntil(ctx, start.Add(time.Duration(i)*spacing)) {
			break
		}
		chat := int64(i%w.chats + 1)
		word := fmt.Sprintf("lag%016x", rng.Uint64()) // no vocabulary word holds "lag"
		m, _, err := client.CreateMessage(ctx, w.token, chat, text(rng, word, o.bodySize))
		answered := time.Now()
		if err != nil {
			lag.Failed++
			continue
		}
		r, readOK := poll(ctx, answered, func() bool {
			_, err := client.Message(ctx, w.token, chat, m.Number)
			return err == nil
		})
		// Searched after the read succeeded: no topology indexes a message
		// before storing it.
		s, searchOK := poll(ctx, answered, func() bool {
			found, _, err := client.SearchMessages(ctx, w.token, chat, word, 1, "")
			return err == nil && len(found) > 0
		})
		if !readOK || !searchOK {
			lag.Failed++
			continue
		}
		read.record(r)
		search.record(s)
	}
	lag.Samples = int(read.n)
	lag.Read, lag.Search = read.latency(), search.latency()
	return &lag
}

// poll calls visible until it reports true and returns how long after since
// that was, or false once lagTimeout passed or ctx ended.
func poll(ctx context.Context, since time.Time, visible func() bool) (time.Duration, bool) {
	for !visible() {
		if time.Since(since) > lagTimeout || !sleepUntil(ctx, time.Now().Add(time.Millisecond)) {
			return 0, false
		}
	}
	return time.Since(since), true
}

// sleepUntil reports false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
