package bench

import (
	"bytes"
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
	Errors     map[string]int64 `json:"errors,omitempty"` // by status; "transport" when no answer came
}

// Latency is in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

// drive sends ops, cycling, to the server at base over c connections until
// o.requests were sent or o.duration passed, and measures the answers.
func drive(ctx context.Context, base string, ops []*op, c int, o options, label string, stderr io.Writer) (Result, error) {
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

	total := int64(o.requests)
	if total == 0 {
		total = -1 // a spinner: the end is a time, not a count
	}
	var issued, done atomic.Int64
	start := time.Now()
	deadline := start.Add(o.duration)
	more := func(now time.Time) bool {
		if o.requests > 0 {
			return issued.Add(1) <= int64(o.requests)
		}
		return now.Before(deadline)
	}
	stopBar := track(stderr, label+" c="+strconv.Itoa(c), total, done.Load)
	workers := make([]worker, c)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { workers[i].run(ctx, tr, reqs, i, more, &done) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopBar()

	var h histogram
	var failed int64
	errs := map[string]int64{}
	for i := range workers {
		h.merge(&workers[i].hist)
		for status, n := range workers[i].errors {
			key := strconv.Itoa(status)
			if status == 0 {
				key = "transport"
			}
			errs[key] += n
			failed += n
		}
	}
	r := Result{Requests: h.n, Seconds: elapsed.Seconds(), Throughput: float64(h.n-failed) / elapsed.Seconds(), Latency: h.latency()}
	if failed > 0 {
		r.Errors = errs
	}
	return r, ctx.Err()
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
}

func (w *worker) run(ctx context.Context, rt http.RoundTripper, reqs []*http.Request, first int, more func(time.Time) bool, done *atomic.Int64) {
	w.errors = map[int]int64{}
	now := time.Now()
	for i := first; more(now); i++ {
		start := now
		status := send(ctx, rt, reqs[i%len(reqs)])
		now = time.Now()
		if ctx.Err() != nil {
			return // cut short by the caller, not the server: no measurement
		}
		w.hist.record(now.Sub(start))
		if status < 200 || status > 299 {
			w.errors[status]++
		}
		done.Add(1)
	}
}

// send returns the status of the answer, 0 when none came. Reading the
// answer to its end lets the connection serve the next request.
func send(ctx context.Context, rt http.RoundTripper, tmpl *http.Request) int {
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
