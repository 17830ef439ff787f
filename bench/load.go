package bench

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Result measures one load against one server.
type Result struct {
	Requests   int64            `json:"requests"` // answered or failed
	Seconds    float64          `json:"seconds"`
	Throughput float64          `json:"throughput"` // 2xx answers per second
	Latency    Latency          `json:"latency_ms"`
	Errors     map[string]int64 `json:"errors,omitempty"`   // by status; "transport" when no answer came
	Schedule   *Schedule        `json:"schedule,omitempty"` // open loop (-rate) only
	Windows    []Window         `json:"windows,omitempty"`  // one per -interval, by the time each answer came

	start time.Time // when the load (its schedule, under -rate) began
}

// Latency is in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// Schedule is how an open-loop load kept to its arrival schedule. Its
// latencies count from each request's scheduled time, not from when a
// connection came free to send it, so a stalled server shows in them
// rather than slowing the generator down (no coordinated omission).
type Schedule struct {
	Rate      float64 `json:"rate"`          // requests per second asked for
	Scheduled int64   `json:"scheduled"`     // requests the schedule held
	Sent      int64   `json:"sent"`          // of them
	Late      int64   `json:"late"`          // sent more than lateAfter behind their time: every connection was busy
	Missed    int64   `json:"missed"`        // never sent: still waiting for a connection when the load ended
	Delay     Latency `json:"send_delay_ms"` // how far behind its time each sent request went out
}

// lateAfter is how far behind its scheduled time a request may go out
// before it counts as late rather than as timer jitter.
const lateAfter = 10 * time.Millisecond

// Window is one -interval of a load. Answers, and lag samples, fall in the
// window in which they came; those that come after the load's -d fall in
// its last window, which is as long as that takes.
type Window struct {
	Start      float64          `json:"start_s"` // since the load began
	Seconds    float64          `json:"seconds"`
	Requests   int64            `json:"requests"`
	Throughput float64          `json:"throughput"`
	Latency    Latency          `json:"latency_ms"`
	Errors     map[string]int64 `json:"errors,omitempty"`
	Late       int64            `json:"late,omitempty"`

	LagSamples int      `json:"lag_samples,omitempty"` // creates measured whose answer came in this window
	LagFailed  int      `json:"lag_failed,omitempty"`
	LagRead    *Latency `json:"lag_read_ms,omitempty"`
	LagSearch  *Latency `json:"lag_search_ms,omitempty"`

	RSSBytes   float64 `json:"rss_bytes,omitempty"`  // -watch: the server's, sampled as the window ended
	Goroutines float64 `json:"goroutines,omitempty"` // likewise
}

// drive sends ops, cycling, to the server at base over c connections until
// o.requests were sent or o.duration passed, and measures the answers.
func drive(ctx context.Context, base string, ops []*op, c int, o options, label string, stderr io.Writer) (Result, error) {
	return driveFrom(ctx, time.Now(), base, ops, c, o, label, stderr)
}

// driveFrom is drive for a load that begins at start. With o.rate it is an
// open loop: request i is due at start + i/o.rate and goes out then on
// whichever of the c connections is free; otherwise each connection sends
// its next request as soon as the last one is answered.
func driveFrom(ctx context.Context, start time.Time, base string, ops []*op, c int, o options, label string, stderr io.Writer) (Result, error) {
	reqs, err := templates(base, ops)
	if err != nil {
		return Result{}, err
	}
	// The generator must not be what limits: one kept-alive connection per
	// worker, no compression to undo.
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:          c,
		MaxIdleConnsPerHost:   c,
		IdleConnTimeout:       time.Minute,
		DisableCompression:    true,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	defer tr.CloseIdleConnections()

	p := &plan{start: start, requests: int64(o.requests), rate: o.rate, answered: o.answered}
	if o.requests == 0 {
		p.deadline = start.Add(o.duration)
	}
	if o.rate > 0 {
		p.requests = cmp.Or(p.requests, scheduledWithin(o.duration, o.rate))
	}
	var ws *windows
	if o.interval > 0 {
		ws = &windows{start: start, interval: o.interval, last: -1}
		if o.requests == 0 {
			ws.last = windowCount(o.duration, o.interval) - 1
		}
	}
	total := p.requests
	if total == 0 {
		total = -1 // a spinner: the end is a time, not a count
	}
	var done atomic.Int64
	stopBar := track(stderr, label+" c="+strconv.Itoa(c), total, done.Load)
	workers := make([]worker, c)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { workers[i].run(ctx, tr, reqs, i, p, ws, &done) })
	}
	wg.Wait()
	end := time.Now()
	elapsed := end.Sub(start)
	stopBar()

	var h, delay histogram
	var failed, late int64
	errs := map[string]int64{}
	for i := range workers {
		h.merge(&workers[i].hist)
		delay.merge(&workers[i].delay)
		late += workers[i].late
		for status, n := range workers[i].errors {
			errs[errorKey(status)] += n
			failed += n
		}
	}
	r := Result{Requests: h.n, Seconds: elapsed.Seconds(), Throughput: float64(h.n-failed) / elapsed.Seconds(), Latency: h.latency(), start: start}
	if failed > 0 {
		r.Errors = errs
	}
	if o.rate > 0 {
		r.Schedule = &Schedule{Rate: o.rate, Scheduled: p.requests, Sent: delay.n, Late: late, Missed: p.requests - delay.n, Delay: delay.latency()}
	}
	if ws != nil {
		r.Windows = ws.results(end)
	}
	return r, ctx.Err()
}

func errorKey(status int) string {
	if status == 0 {
		return "transport"
	}
	return strconv.Itoa(status)
}

// plan is when a load's requests go out.
type plan struct {
	start    time.Time
	deadline time.Time // zero under -n
	requests int64     // 0: until the deadline
	rate     float64   // requests per second of an open loop; 0: closed
	answered answered  // nil, or told of every answer as it comes
	issued   atomic.Int64
}

// due is when request i of an open loop is scheduled.
func due(start time.Time, i int64, rate float64) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

// scheduledWithin is how many requests at rate are due before d ends.
func scheduledWithin(d time.Duration, rate float64) int64 {
	var t0 time.Time
	n := int64(math.Ceil(d.Seconds() * rate))
	for n > 0 && !due(t0, n-1, rate).Before(t0.Add(d)) {
		n--
	}
	for due(t0, n, rate).Before(t0.Add(d)) {
		n++
	}
	return n
}

// windowCount is how many windows of interval a load of d is cut into.
func windowCount(d, interval time.Duration) int {
	return int((d + interval - 1) / interval)
}

// maxWindows bounds -d / -interval: each window keeps a histogram (30 KiB).
const maxWindows = 10_000

// next claims the next request of an open loop and returns its number and
// when it is due, or false when the schedule is exhausted.
func (p *plan) next() (int64, time.Time, bool) {
	i := p.issued.Add(1) - 1
	if i >= p.requests {
		return 0, time.Time{}, false
	}
	return i, due(p.start, i, p.rate), true
}

// more reports whether a closed loop sends another request.
func (p *plan) more(now time.Time) bool {
	if p.requests > 0 {
		return p.issued.Add(1) <= p.requests
	}
	return now.Before(p.deadline)
}

// templates builds each op's request once; a worker sends shallow copies.
func templates(base string, ops []*op) ([]*http.Request, error) {
	reqs := make([]*http.Request, len(ops))
	built := map[*op]*http.Request{} // mixed repeats ops
	for i, o := range ops {
		if r, ok := built[o]; ok {
			reqs[i] = r
			continue
		}
		r, err := http.NewRequest(o.method, base+o.path, nil)
		if err != nil {
			return nil, err
		}
		if body := o.body; body != nil {
			r.Header.Set("Content-Type", "application/json")
			r.ContentLength = int64(len(body))
			// The transport calls GetBody to resend on a connection that
			// closed under it; send calls it for every request.
			r.GetBody = func() (io.ReadCloser, error) { return newBody(body), nil }
		}
		reqs[i], built[o] = r, r
	}
	return reqs, nil
}

// worker is one connection's loop and what it measured, kept apart from the
// other workers' so that recording takes no lock.
type worker struct {
	hist   histogram
	errors map[int]int64 // by status, 0 for transport errors
	delay  histogram     // open loop: how far behind schedule each request went out
	late   int64
	window windowTally // the window being counted, handed to windows when the next begins
}

func (w *worker) run(ctx context.Context, rt http.RoundTripper, reqs []*http.Request, first int, p *plan, ws *windows, done *atomic.Int64) {
	w.errors = map[int]int64{}
	w.window.index = -1
	defer w.flush(ws)
	now := time.Now()
	for i := int64(first); ; i++ {
		var start time.Time
		late := false
		if p.rate > 0 {
			var ok bool
			if i, start, ok = p.next(); !ok {
				return
			}
			if time.Until(start) > 0 && !sleepUntil(ctx, start) {
				return
			}
			now = time.Now()
			behind := now.Sub(start)
			if behind > lateAfter && !p.deadline.IsZero() && !now.Before(p.deadline) {
				return // its time came within the load, a connection only after: missed
			}
			w.delay.record(behind)
			if late = behind > lateAfter; late {
				w.late++
			}
		} else if start = now; !p.more(now) {
			return
		}
		status := send(ctx, rt, reqs[i%int64(len(reqs))], p.answered)
		now = time.Now()
		if ctx.Err() != nil {
			return // cut short by the caller, not the server: no measurement
		}
		w.hist.record(now.Sub(start))
		if status < 200 || status > 299 {
			w.errors[status]++
		}
		if ws != nil {
			if k := ws.index(now); k != w.window.index {
				w.flush(ws)
				w.window.index = k
			}
			w.window.record(now.Sub(start), status, late)
		}
		done.Add(1)
	}
}

// flush hands the window being counted to ws.
func (w *worker) flush(ws *windows) {
	if ws == nil || w.window.index < 0 {
		return
	}
	ws.add(&w.window)
	w.window.reset()
}

// windowTally counts the answers of one window.
type windowTally struct {
	index  int
	hist   histogram
	errors map[int]int64
	late   int64
}

func (t *windowTally) record(d time.Duration, status int, late bool) {
	t.hist.record(d)
	if status < 200 || status > 299 {
		if t.errors == nil {
			t.errors = map[int]int64{}
		}
		t.errors[status]++
	}
	if late {
		t.late++
	}
}

func (t *windowTally) reset() {
	t.hist = histogram{}
	t.errors = nil
	t.late = 0
}

// windows gathers the workers' tallies of each interval since start.
type windows struct {
	start    time.Time
	interval time.Duration
	last     int // the highest index, -1 when the load has no set end (-n)

	mu      sync.Mutex
	tallies []*windowTally
}

// index is the window of an answer that came at t.
func (ws *windows) index(t time.Time) int {
	k := max(int(t.Sub(ws.start)/ws.interval), 0)
	if ws.last >= 0 {
		k = min(k, ws.last)
	}
	return k
}

func (ws *windows) add(t *windowTally) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for len(ws.tallies) <= t.index {
		ws.tallies = append(ws.tallies, &windowTally{index: len(ws.tallies)})
	}
	into := ws.tallies[t.index]
	into.hist.merge(&t.hist)
	for status, n := range t.errors {
		if into.errors == nil {
			into.errors = map[int]int64{}
		}
		into.errors[status] += n
	}
	into.late += t.late
}

// results are the windows up to the last of the load, which ended at end;
// windows in which nothing was answered are there too, with nothing in
// them.
func (ws *windows) results(end time.Time) []Window {
	n := max(ws.last+1, ws.index(end)+1, len(ws.tallies))
	out := make([]Window, n)
	for k := range out {
		from := time.Duration(k) * ws.interval
		to := from + ws.interval
		if k == n-1 {
			to = max(end.Sub(ws.start), from)
		}
		w := Window{Start: from.Seconds(), Seconds: (to - from).Seconds()}
		if k < len(ws.tallies) {
			t := ws.tallies[k]
			var failed int64
			for status, c := range t.errors {
				if w.Errors == nil {
					w.Errors = map[string]int64{}
				}
				w.Errors[errorKey(status)] += c
				failed += c
			}
			w.Requests, w.Latency, w.Late = t.hist.n, t.hist.latency(), t.late
			if w.Seconds > 0 {
				w.Throughput = float64(t.hist.n-failed) / w.Seconds
			}
		}
		out[k] = w
	}
	return out
}

// answered is told of an answer once it was read to its end: its status
// and headers, when its request went out and when the answer was read.
type answered func(status int, h http.Header, sent, at time.Time)

// send returns the status of the answer, 0 when none came, and tells
// answered, if set, of it. Reading the answer to its end lets the
// connection serve the next request.
func send(ctx context.Context, rt http.RoundTripper, tmpl *http.Request, answered answered) int {
	sent := time.Now()
	r := tmpl.WithContext(ctx)
	if r.GetBody != nil {
		r.Body, _ = r.GetBody()
	}
	resp, err := rt.RoundTrip(r)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if answered != nil {
		answered(resp.StatusCode, resp.Header, sent, time.Now())
	}
	return resp.StatusCode
}

// body is a request body over shared bytes: one allocation per request.
type body struct{ bytes.Reader }

func (*body) Close() error { return nil }

func newBody(b []byte) *body {
	r := new(body)
	r.Reset(b)
	return r
}

// histogram counts durations the way HDR histograms do, in constant memory:
// exactly below 2^subBits nanoseconds, then in 2^(subBits-1) buckets per
// power of two, so any percentile is within 1/64 of the true value.
const subBits = 7

type histogram struct {
	counts [(64 - subBits + 2) << (subBits - 1)]int64
	n      int64
	max    time.Duration
}

func bucket(v uint64) int {
	shift := max(bits.Len64(v)-subBits, 0)
	return shift<<(subBits-1) + int(v>>shift)
}

// highest is the largest value that falls in bucket i.
func highest(i int) time.Duration {
	if i < 1<<subBits {
		return time.Duration(i)
	}
	shift := i>>(subBits-1) - 1
	return time.Duration((i-shift<<(subBits-1))<<shift + 1<<shift - 1)
}

func (h *histogram) record(d time.Duration) {
	h.counts[bucket(uint64(max(d, 0)))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// percentile q (0 to 1) reports the bucket's highest value, never above
// the largest recorded, as HDR histograms do.
func (h *histogram) percentile(q float64) time.Duration {
	rank := int64(math.Ceil(q * float64(h.n)))
	var seen int64
	for i, c := range h.counts {
		if seen += c; c > 0 && seen >= rank {
			return min(highest(i), h.max)
		}
	}
	return h.max
}

func (h *histogram) latency() Latency {
	return Latency{
		P50:  ms(h.percentile(0.5)),
		P90:  ms(h.percentile(0.9)),
		P99:  ms(h.percentile(0.99)),
		P999: ms(h.percentile(0.999)),
		Max:  ms(h.max),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
