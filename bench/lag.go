package bench

import (
	"context"
	"fmt"
	"github.com/instachat/instachat"
	"math/rand/v2"
	"sync"
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
	// How much the lag grew per minute of the load: the least-squares
	// slope of the samples against the time they were taken (0 with
	// fewer than two instants).
	ReadTrend   float64 `json:"read_trend_ms_per_min"`
	SearchTrend float64 `json:"search_trend_ms_per_min"`
}

const lagTimeout = 10 * time.Second

// lagInFlight bounds the probes polling at once when they are spread over
// the load: a probe slower than the spacing must not delay the next one,
// or the samples would bunch up at the end.
const lagInFlight = 32

// lagSample is one probe: when its create was answered, and how long after
// that the message became visible.
type lagSample struct {
	at           time.Time
	read, search time.Duration
	ok           bool
}

// lagSpacing is the time between probes: the load's length spread evenly
// over o.lagSamples, or 0 (back to back) when the load is a count of
// requests at no set rate.
func lagSpacing(o options) time.Duration {
	switch {
	case o.lagSamples == 0:
		return 0
	case o.requests == 0:
		return o.duration / time.Duration(o.lagSamples)
	case o.rate > 0:
		return time.Duration(float64(o.requests) / o.rate * float64(time.Second) / float64(o.lagSamples))
	}
	return 0
}

// probeLag creates o.lagSamples messages, probe i at start + i × spacing
// (one after another when spacing is 0), and polls each until GET and
// search see it. Spread probes run concurrently, so that a slow one does
// not hold up the schedule.
func probeLag(ctx context.Context, client *instachathttp.Client, w *workload, o options, start time.Time) []lagSample {
	spacing := lagSpacing(o)
	inFlight := 1
	if spacing > 0 {
		inFlight = lagInFlight
	}
	sem := make(chan struct{}, inFlight)
	// Seeded afresh each run: with -token, earlier runs' probes are in the
	// same chats and must not be found instead.
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var mu sync.Mutex
	var samples []lagSample
	var wg sync.WaitGroup
	for i := range o.lagSamples {
		if !sleepUntil(ctx, start.Add(time.Duration(i)*spacing)) {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		chat := int64(i%w.chats + 1)
		word := fmt.Sprintf("lag%016x", rng.Uint64()) // no vocabulary word holds "lag"
		body := text(rng, word, o.bodySize)
		wg.Go(func() {
			defer func() { <-sem }()
			s := probe(ctx, client, w.token, chat, word, body)
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
		})
	}
	wg.Wait()
	return samples
}

// probe creates one message and measures how long it takes to become
// visible.
func probe(ctx context.Context, client *instachathttp.Client, token string, chat int64, word, body string) lagSample {
	m, _, err := client.CreateMessage(ctx, token, chat, body, "")
	s := lagSample{at: time.Now()}
	if err != nil {
		return s
	}
	r, readOK := poll(ctx, s.at, func() bool {
		_, err := client.FindMessage(ctx, token, chat, m.Number)
		return err == nil
	})
	// Searched after the read succeeded: no topology indexes a message
	// before storing it.
	q, searchOK := poll(ctx, s.at, func() bool {
		found, err := client.SearchMessages(ctx, instachat.SearchQuery{Token: token, Chat: chat, Terms: []string{word}, Limit: 1})
		return err == nil && len(found) > 0
	})
	s.read, s.search, s.ok = r, q, readOK && searchOK
	return s
}

// summarizeLag is the Lag of samples.
func summarizeLag(samples []lagSample) *Lag {
	var lag Lag
	var read, search histogram
	var readLine, searchLine trendLine
	var t0 time.Time
	for _, s := range samples {
		if t0.IsZero() || s.at.Before(t0) {
			t0 = s.at
		}
	}
	for _, s := range samples {
		if !s.ok {
			lag.Failed++
			continue
		}
		read.record(s.read)
		search.record(s.search)
		minutes := s.at.Sub(t0).Minutes()
		readLine.add(minutes, ms(s.read))
		searchLine.add(minutes, ms(s.search))
	}
	lag.Samples = int(read.n)
	lag.Read, lag.Search = read.latency(), search.latency()
	lag.ReadTrend, lag.SearchTrend = readLine.slope(), searchLine.slope()
	return &lag
}

// addLag puts each sample into the window in which its create was
// answered; start is the load's.
func (r *Result) addLag(samples []lagSample, interval time.Duration) {
	if len(r.Windows) == 0 {
		return
	}
	ws := &windows{start: r.start, interval: interval, last: len(r.Windows) - 1}
	read := make([]histogram, len(r.Windows))
	search := make([]histogram, len(r.Windows))
	for _, s := range samples {
		k := ws.index(s.at)
		if !s.ok {
			r.Windows[k].LagFailed++
			continue
		}
		read[k].record(s.read)
		search[k].record(s.search)
	}
	for k := range r.Windows {
		if read[k].n > 0 {
			rl, sl := read[k].latency(), search[k].latency()
			r.Windows[k].LagSamples, r.Windows[k].LagRead, r.Windows[k].LagSearch = int(read[k].n), &rl, &sl
		}
	}
}

// trendLine fits y = a + b·x by least squares.
type trendLine struct{ n, sx, sy, sxx, sxy float64 }

func (l *trendLine) add(x, y float64) {
	l.n++
	l.sx += x
	l.sy += y
	l.sxx += x * x
	l.sxy += x * y
}

// slope is b, or 0 when every x is the same.
func (l *trendLine) slope() float64 {
	d := l.n*l.sxx - l.sx*l.sx
	if l.n < 2 || d <= 1e-12*l.n*l.sxx {
		return 0
	}
	return (l.n*l.sxy - l.sx*l.sy) / d
}

// poll calls visible until it reports true and returns how long after since
// that was, or false once lagTimeout passed or ctx ended. It waits a
// twentieth of the time waited so far between calls (1 to 50 ms), so that
// it overstates a lag by at most 5% or 1 ms, and a long lag does not turn
// the probes into a load of their own.
func poll(ctx context.Context, since time.Time, visible func() bool) (time.Duration, bool) {
	for !visible() {
		waited := time.Since(since)
		if waited > lagTimeout || ctx.Err() != nil {
			return 0, false
		}
		pause := min(max(waited/20, time.Millisecond), 50*time.Millisecond)
		if !sleepUntil(ctx, time.Now().Add(pause)) {
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
