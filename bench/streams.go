package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	instachathttp "github.com/instachat/instachat/http"
)

// streamsOptions are the flags of Streams.
type streamsOptions struct {
	url, metricsURL, adminToken string
	subscribers, ws, chats      int
	rate                        float64
	duration                    time.Duration
	concurrency                 int
	bodySize                    int
	settle, drain               time.Duration
	ratioD                      time.Duration
	ratioRounds                 int
	dials                       int
	quiet                       bool
	first                       int // the chat of the first stream
	json                        bool
}

func parseStreamsOptions(args []string, stderr io.Writer) (streamsOptions, error) {
	var o streamsOptions
	fs := flag.NewFlagSet("instachat-bench streams", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: instachat-bench streams [flags]\n\nHold -s event streams across -chats chats of a "+
			"running server, measure the server's memory per idle stream, then create messages at an open-loop -rate "+
			"and time each event from its create's answer to its arrival at every subscriber; with -ratio-d, also "+
			"compare closed-loop create throughput with the streams attached and with none.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of the Instachat server")
	fs.StringVar(&o.metricsURL, "metrics-url", "", "the server's Prometheus metrics, for its resident memory (default: -url + /metrics)")
	fs.StringVar(&o.adminToken, "admin-token", "", "the server's admin token, which guards /metrics (default: $INSTACHAT_ADMIN_TOKEN)")
	fs.IntVar(&o.subscribers, "s", 1000, "event streams to hold open")
	fs.IntVar(&o.ws, "ws", 0, "how many of the -s streams are WebSocket rather than Server-Sent Events")
	fs.IntVar(&o.chats, "chats", 1, "chats the streams and the creates spread over, round robin")
	fs.Float64Var(&o.rate, "rate", 100, "creates per second of the open loop, over all chats")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "how long the open loop runs (0: no open loop, only memory)")
	fs.IntVar(&o.concurrency, "c", 64, "connections creating messages, at most (open loop) or exactly (closed loop)")
	fs.IntVar(&o.bodySize, "body-size", 100, "bytes in a message body")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "wait after the streams are attached before reading the server's memory")
	fs.DurationVar(&o.drain, "drain", 5*time.Second, "after the open loop, wait at most this long without progress for events still on their way")
	fs.DurationVar(&o.ratioD, "ratio-d", 0, "length of each closed-loop phase comparing creates/s with the streams attached and with none (0: none)")
	fs.IntVar(&o.ratioRounds, "ratio-rounds", 3, "rounds of the comparison, each a phase with and one without, alternating which goes first")
	fs.IntVar(&o.dials, "dials", 64, "streams being opened at once while attaching")
	fs.BoolVar(&o.quiet, "quiet", false,
		"hold the streams on -chats chats of their own, beside those the creates go to: attached, never written to")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.adminToken == "" { // not the flag's default, which -h would print
		o.adminToken = os.Getenv("INSTACHAT_ADMIN_TOKEN")
	}
	o.url = strings.TrimSuffix(o.url, "/")
	u, err := url.Parse(o.url)
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return o, fmt.Errorf("-url %q: want http://host:port", o.url)
	case u.Scheme == "https" && o.ws < o.subscribers:
		return o, errors.New("SSE streams speak plain HTTP only: with an https -url, make every stream -ws")
	case o.subscribers < 0 || o.ws < 0 || o.ws > o.subscribers:
		return o, errors.New("-s must not be negative, -ws between 0 and -s")
	case o.chats < 1 || o.concurrency < 1 || o.bodySize < 1 || o.dials < 1:
		return o, errors.New("-chats, -c, -body-size and -dials must be at least 1")
	case o.duration < 0 || o.ratioD < 0 || o.settle < 0 || o.drain < 0 || o.ratioRounds < 0:
		return o, errors.New("-d, -ratio-d, -settle, -drain and -ratio-rounds must not be negative")
	case o.duration > 0 && !(o.rate > 0 && o.rate < 1e7):
		return o, errors.New("-rate must be positive (and sane) for the open loop")
	}
	if o.metricsURL == "" {
		o.metricsURL = o.url + "/metrics"
	}
	return o, nil
}

// StreamsReport is what Streams prints; -json prints it as is.
type StreamsReport struct {
	URL         string          `json:"url"`
	Subscribers int             `json:"subscribers"`
	WebSocket   int             `json:"websocket"`
	Chats       int             `json:"chats"`
	Quiet       bool            `json:"quiet,omitempty"` // the streams are on chats no create goes to
	Attach      StreamsAttach   `json:"attach"`
	Memory      StreamsMemory   `json:"memory"`
	Delivery    *StreamsDeliver `json:"delivery,omitempty"` // the open loop
	Ratio       *StreamsRatio   `json:"ratio,omitempty"`
}

// StreamsAttach is how the streams were opened.
type StreamsAttach struct {
	Connected int              `json:"connected"` // got to synced
	Refused   map[string]int64 `json:"refused,omitempty"`
	Seconds   float64          `json:"seconds"`
}

// StreamsMemory is the server's resident memory and goroutines before the
// streams were attached and -settle after, with no load in between, and
// the bench's own resident memory likewise.
type StreamsMemory struct {
	ServerRSSBefore       float64 `json:"server_rss_before"`
	ServerRSSAfter        float64 `json:"server_rss_after"`
	KiBPerSubscriber      float64 `json:"kib_per_subscriber"`
	GoroutinesBefore      float64 `json:"goroutines_before"`
	GoroutinesAfter       float64 `json:"goroutines_after"`
	BenchRSSBefore        float64 `json:"bench_rss_before,omitempty"`
	BenchRSSAfter         float64 `json:"bench_rss_after,omitempty"`
	BenchKiBPerSubscriber float64 `json:"bench_kib_per_subscriber,omitempty"`
	Error                 string  `json:"error,omitempty"` // why the server's figures are missing
}

// StreamsDeliver is the open loop: its creates, and their events at every
// subscriber.
type StreamsDeliver struct {
	Rate       float64          `json:"rate"`
	Creates    Result           `json:"creates"`
	Answered   int64            `json:"answered"`  // creates answered 2xx, whose events are expected
	Expected   int64            `json:"expected"`  // answered creates × the subscribers of their chat
	Delivered  int64            `json:"delivered"` // of them, received
	Missing    int64            `json:"missing"`   // expected and not received when the drain ended
	PerSecond  float64          `json:"per_second"`
	Latency    Latency          `json:"latency_ms"`           // from the create's answer to the event's arrival
	FromSent   Latency          `json:"latency_from_sent_ms"` // from the create's request to the event's arrival
	Early      int64            `json:"before_answer"`        // arrived before the bench read the answer: 0 from it
	Unanswered int64            `json:"unanswered"`           // events of creates whose answer never came
	Gaps       int64            `json:"gaps"`                 // revisions skipped after synced
	Duplicates int64            `json:"duplicates"`           // revisions received twice or going back
	Ended      map[string]int64 `json:"streams_ended,omitempty"`
}

// StreamsRatio compares closed-loop create throughput with the streams
// attached and with none, phase by phase in one run.
type StreamsRatio struct {
	Phases     []StreamsPhase `json:"phases"`
	WithMedian float64        `json:"with_median"`
	NoneMedian float64        `json:"none_median"`
	Ratio      float64        `json:"ratio"` // WithMedian / NoneMedian
}

// StreamsPhase is one closed loop.
type StreamsPhase struct {
	Subscribers int     `json:"subscribers"` // attached as it began
	Creates     Result  `json:"creates"`
	Delivered   int64   `json:"delivered"`
	PerSecond   float64 `json:"delivered_per_second"`
	Ended       int64   `json:"streams_ended"`
}

// Streams is `instachat-bench streams`.
func Streams(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseStreamsOptions(args, stderr)
	if err != nil {
		return err
	}
	base, _ := url.Parse(o.url)
	hc := &http.Client{Timeout: 30 * time.Second}
	client := instachathttp.NewClient(o.url, hc)
	load := options{url: o.url, scenario: "create-messages", chats: o.chats, concurrency: o.concurrency, bodySize: o.bodySize}
	w, err := setup(ctx, load, client, stderr)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	ops := w.creates()
	first := 1
	if o.quiet {
		// The streams' chats come after the creates' ones.
		first = o.chats + 1
		for range o.chats {
			if _, _, err := client.CreateChat(ctx, w.token, "", ""); err != nil {
				return fmt.Errorf("setup: %w", err)
			}
		}
	}
	o.first = first
	// In production a chat is created asynchronously (202): a stream of
	// it is 404 until it is stored.
	if err := waitForChats(ctx, client, w.token, first+o.chats-1); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	rep := StreamsReport{URL: o.url, Subscribers: o.subscribers, WebSocket: o.ws, Chats: o.chats, Quiet: o.quiet}

	// The answer table covers the open loop's creates: the chats are new,
	// so its messages are numbered from 1.
	var answers *answerTable
	if o.duration > 0 {
		answers = newAnswerTable(perChat(scheduledWithin(o.duration, o.rate), len(ops), o.chats))
	}
	// WebSocket handshakes share a transport; each connection is its own
	// once upgraded.
	wsClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.dials}}

	before, beforeErr := scrapeServer(ctx, hc, o)
	benchBefore := selfRSS()
	start := time.Now()
	p := attach(ctx, base, w.token, o.first, o.chats, o.subscribers, o.ws, o.dials, answers, wsClient)
	rep.Attach = StreamsAttach{Connected: p.connected(), Refused: p.snapshot(p.refused), Seconds: time.Since(start).Seconds()}
	defer func() { p.close() }()
	if !sleepUntil(ctx, time.Now().Add(o.settle)) {
		return ctx.Err()
	}
	after, afterErr := scrapeServer(ctx, hc, o)
	rep.Memory = memory(before, after, errors.Join(beforeErr, afterErr), benchBefore, selfRSS(), rep.Attach.Connected)

	if o.duration > 0 {
		d, err := openLoop(ctx, o, ops, p, answers, stderr)
		if err != nil {
			return err
		}
		rep.Delivery = d
	}
	if o.ratioD > 0 && o.ratioRounds > 0 {
		r, last, err := ratio(ctx, o, base, w.token, ops, p, wsClient, stderr)
		p = last
		if err != nil {
			return err
		}
		rep.Ratio = r
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.print(stdout, o)
}

// waitForChats waits until chats 1..n of token can be read, at most
// lagTimeout.
func waitForChats(ctx context.Context, client *instachathttp.Client, token string, n int) error {
	for chat := 1; chat <= n; chat++ {
		if _, ok := poll(ctx, time.Now(), func() bool {
			_, err := client.FindChat(ctx, token, int64(chat))
			return err == nil
		}); !ok {
			return fmt.Errorf("chat %d of %s not readable after %v", chat, token, lagTimeout)
		}
	}
	return nil
}

// perChat is how many of n requests cycling through ops (op i on chat
// i%chats+1) fall on each chat.
func perChat(n int64, ops, chats int) []int {
	counts := make([]int, chats)
	full, rest := n/int64(ops), int(n%int64(ops))
	for i := range ops {
		c := int(full)
		if i < rest {
			c++
		}
		counts[i%chats] += c
	}
	return counts
}

// openLoop creates at o.rate for o.duration and accounts for every event
// of those creates at every subscriber of p.
func openLoop(ctx context.Context, o streamsOptions, ops []*op, p *pool, answers *answerTable, stderr io.Writer) (*StreamsDeliver, error) {
	load := options{url: o.url, concurrency: o.concurrency, duration: o.duration, rate: o.rate, chats: o.chats, answered: answers.answered}
	start := time.Now()
	res, err := driveFrom(ctx, start, o.url, ops, o.concurrency, load, "open loop", stderr)
	if err != nil {
		return nil, err
	}
	d := &StreamsDeliver{Rate: o.rate, Creates: res}
	for c := range answers.ok {
		n := answers.ok[c].Load()
		d.Answered += n
		d.Expected += n * int64(p.on(c+1))
	}
	// Wait for the events still on their way, as long as they keep coming.
	last, lastAt := p.measured.Load(), time.Now()
	for p.measured.Load() < d.Expected && time.Since(lastAt) < o.drain {
		if !sleepUntil(ctx, time.Now().Add(20*time.Millisecond)) {
			return nil, ctx.Err()
		}
		if n := p.measured.Load(); n != last {
			last, lastAt = n, time.Now()
		}
	}
	elapsed := lastAt.Sub(start)
	h, fromSent, early, unanswered := p.latency()
	d.Delivered, d.Early, d.Unanswered = h.n, early, unanswered
	d.FromSent = fromSent.latency()
	d.Missing = max(d.Expected-d.Delivered, 0)
	d.PerSecond = float64(d.Delivered) / elapsed.Seconds()
	d.Latency = h.latency()
	d.Gaps, d.Duplicates = p.gaps.Load(), p.duplicates.Load()
	d.Ended = p.snapshot(p.ended)
	return d, nil
}

// ratio runs o.ratioRounds rounds of two closed loops, one with o.subscribers
// streams attached and one with none, the first round with first (p is
// attached already), then alternating, so that neither side always goes
// first. It returns the pool attached at the end, if any.
func ratio(ctx context.Context, o streamsOptions, base *url.URL, token string, ops []*op, p *pool,
	wsClient *http.Client, stderr io.Writer) (*StreamsRatio, *pool, error) {
	r := &StreamsRatio{}
	var with, none []float64
	load := options{url: o.url, concurrency: o.concurrency, duration: o.ratioD, chats: o.chats}
	for round := range o.ratioRounds {
		order := []bool{true, false}
		if round%2 == 1 {
			order = []bool{false, true}
		}
		for _, attached := range order {
			switch {
			case attached && (p == nil || p.connected() < o.subscribers || p.endedCount() > 0):
				if p != nil {
					p.close()
				}
				p = attach(ctx, base, token, o.first, o.chats, o.subscribers, o.ws, o.dials, nil, wsClient)
			case !attached && p != nil:
				p.close()
				p = nil
				// Let the server see the connections close.
				if !sleepUntil(ctx, time.Now().Add(time.Second)) {
					return nil, p, ctx.Err()
				}
			}
			ph := StreamsPhase{}
			var delivered0 int64
			if p != nil {
				ph.Subscribers, delivered0 = p.connected(), p.delivered.Load()
			}
			label := "none"
			if attached {
				label = "with " + strconv.Itoa(ph.Subscribers)
			}
			res, err := driveFrom(ctx, time.Now(), o.url, ops, o.concurrency, load, label, stderr)
			if err != nil {
				return nil, p, err
			}
			ph.Creates = res
			if p != nil {
				ph.Delivered = p.delivered.Load() - delivered0
				ph.PerSecond = float64(ph.Delivered) / res.Seconds
				ph.Ended = p.endedCount()
			}
			r.Phases = append(r.Phases, ph)
			if attached {
				with = append(with, res.Throughput)
			} else {
				none = append(none, res.Throughput)
			}
		}
	}
	r.WithMedian, r.NoneMedian = median(with), median(none)
	if r.NoneMedian > 0 {
		r.Ratio = r.WithMedian / r.NoneMedian
	}
	return r, p, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// serverGauges are what scrapeServer reads.
type serverGauges struct{ rss, goroutines float64 }

func scrapeServer(ctx context.Context, hc *http.Client, o streamsOptions) (serverGauges, error) {
	rss, g, err := scrape(ctx, hc, o.metricsURL, o.adminToken)
	return serverGauges{rss, g}, err
}

func memory(before, after serverGauges, err error, benchBefore, benchAfter float64, n int) StreamsMemory {
	m := StreamsMemory{BenchRSSBefore: benchBefore, BenchRSSAfter: benchAfter}
	if n > 0 && benchBefore > 0 && benchAfter > 0 {
		m.BenchKiBPerSubscriber = (benchAfter - benchBefore) / float64(n) / 1024
	}
	if err != nil {
		m.Error = err.Error()
		return m
	}
	m.ServerRSSBefore, m.ServerRSSAfter = before.rss, after.rss
	m.GoroutinesBefore, m.GoroutinesAfter = before.goroutines, after.goroutines
	if n > 0 {
		m.KiBPerSubscriber = (after.rss - before.rss) / float64(n) / 1024
	}
	return m
}

// selfRSS is this process's resident memory in bytes from /proc, 0 where
// there is none.
func selfRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			kib, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 64)
			if err == nil {
				return kib * 1024
			}
		}
	}
	return 0
}

func (r StreamsReport) print(w io.Writer, o streamsOptions) error {
	quiet := ""
	if r.Quiet {
		quiet = " (quiet: on chats of their own, which no create goes to)"
	}
	fmt.Fprintf(w, "instachat-bench streams: %d streams (%d WebSocket) over %d chats%s on %s\n\n", r.Subscribers, r.WebSocket, r.Chats, quiet, r.URL)
	fmt.Fprintf(w, "attached %d in %.1f s%s\n", r.Attach.Connected, r.Attach.Seconds, counts(", refused: ", r.Attach.Refused))
	m := r.Memory
	if m.Error != "" {
		fmt.Fprintf(w, "server memory: not read (%s)\n", m.Error)
	} else {
		fmt.Fprintf(w, "server resident memory %.1f → %.1f MiB: %.1f KiB per stream; goroutines %.0f → %.0f (%.1f per stream)\n",
			m.ServerRSSBefore/(1<<20), m.ServerRSSAfter/(1<<20), m.KiBPerSubscriber, m.GoroutinesBefore, m.GoroutinesAfter,
			(m.GoroutinesAfter-m.GoroutinesBefore)/float64(max(r.Attach.Connected, 1)))
	}
	if m.BenchRSSAfter > 0 {
		fmt.Fprintf(w, "bench resident memory %.1f → %.1f MiB: %.1f KiB per stream\n", m.BenchRSSBefore/(1<<20),
			m.BenchRSSAfter/(1<<20), m.BenchKiBPerSubscriber)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	if d := r.Delivery; d != nil {
		fmt.Fprintf(w, "\nopen loop at %g creates/s for %v: %s\n", d.Rate, o.duration, d.Creates.summary())
		fmt.Fprintf(w, "events: %d expected (%d answered creates × their chat's streams), %d delivered, %d missing; %.0f delivered/s\n",
			d.Expected, d.Answered, d.Delivered, d.Missing, d.PerSecond)
		fmt.Fprintln(tw, "\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
		fmt.Fprintf(tw, "create answered → event received\t%s\n", d.Latency.columns())
		fmt.Fprintf(tw, "create sent → event received\t%s\n", d.FromSent.columns())
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "%d arrived before their create's answer was read (counted as 0 ms), %d of creates never answered; "+
			"%d revision gaps, %d duplicates; streams ended: %s\n", d.Early, d.Unanswered, d.Gaps, d.Duplicates, countsOr(d.Ended, "none"))
	}
	if ra := r.Ratio; ra != nil {
		fmt.Fprintf(w, "\nclosed loop at %d connections, %v per phase\n", o.concurrency, o.ratioD)
		fmt.Fprintln(tw, "phase\tstreams\tcreates/s\tp50 ms\tp99 ms\terrors\tevents/s\tstreams ended\t")
		for i, ph := range ra.Phases {
			fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.2f\t%.2f\t%s\t%.0f\t%d\t\n", i+1, ph.Subscribers, ph.Creates.Throughput,
				ph.Creates.Latency.P50, ph.Creates.Latency.P99, countsOr(ph.Creates.Errors, "0"), ph.PerSecond, ph.Ended)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "median creates/s: %.0f with %d streams, %.0f with none: ratio %.2f\n", ra.WithMedian, r.Subscribers, ra.NoneMedian, ra.Ratio)
	}
	return nil
}

func (r Result) summary() string {
	s := fmt.Sprintf("%d requests, %.0f/s, p99 %.2f ms, errors %s", r.Requests, r.Throughput, r.Latency.P99, countsOr(r.Errors, "0"))
	if sc := r.Schedule; sc != nil {
		s += fmt.Sprintf("; %d due, %d late, %d never sent", sc.Scheduled, sc.Late, sc.Missed)
	}
	return s
}

func counts(prefix string, m map[string]int64) string {
	if len(m) == 0 {
		return ""
	}
	return prefix + countsOr(m, "")
}

func countsOr(m map[string]int64, empty string) string {
	if len(m) == 0 {
		return empty
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
