package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/server"
)

// These are the CI smoke bench: a few hundred requests against a real
// embedded server, to prove the tools work. They never assert speed.

const benchAdminToken = "bench-admin-token-0123456789"

func startServer(t *testing.T, dir string, tune ...func(*server.Config)) *server.Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = dir
	for _, f := range tune {
		f(&cfg)
	}
	// The admin token guards /metrics, which -watch reads from the
	// environment, and the list of applications.
	cfg.AdminToken = benchAdminToken
	t.Setenv("INSTACHAT_ADMIN_TOKEN", benchAdminToken)
	s := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// runJSON runs the bench with -json and returns the report; stderr, not
// a terminal, must stay free of progress bars.
func runJSON(t *testing.T, args ...string) Report {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := Load(t.Context(), append(args, "-json"), &stdout, &stderr); err != nil {
		t.Fatalf("Run %v: %v\n%s", args, err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("stderr is not a terminal, yet got %q", stderr.String())
	}
	var r Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("-json output does not parse: %v\n%s", err, stdout.String())
	}
	return r
}

func checkResult(t *testing.T, what string, r Result, requests int64) {
	t.Helper()
	l := r.Latency
	if r.Requests != requests || len(r.Errors) > 0 || r.Throughput <= 0 {
		t.Errorf("%s: %d requests, %v errors, %.0f req/s; want %d requests, no errors", what, r.Requests, r.Errors, r.Throughput, requests)
	}
	if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
		t.Errorf("%s: percentiles out of order: %+v", what, l)
	}
}

func TestScenarios(t *testing.T) {
	for _, scenario := range scenarios {
		t.Run(scenario, func(t *testing.T) {
			url := startServer(t, t.TempDir()).URL()
			r := runJSON(t, "-url", url, "-scenario", scenario, "-n", "200", "-c", "8", "-chats", "3", "-prefill", "10", "-lag-samples", "3")
			if len(r.Points) != 1 || r.Points[0].Baseline != nil {
				t.Fatalf("points = %+v, want one without baseline", r.Points)
			}
			checkResult(t, "instachat", r.Points[0].Target, 200)
			checkWindows(t, r.Points[0].Target, int(r.Points[0].Target.Seconds/10)+1) // -n: as many 10 s windows as it took
			if r.Lag == nil || r.Lag.Samples != 3 || r.Lag.Failed != 0 || r.Lag.Read.P50 <= 0 || r.Lag.Search.Max < r.Lag.Search.P50 {
				t.Errorf("lag = %+v, want 3 samples measured", r.Lag)
			}
		})
	}
}

func TestBaseline(t *testing.T) {
	url := startServer(t, t.TempDir()).URL()
	r := runJSON(t, "-url", url, "-n", "200", "-c", "4", "-baseline", "-lag-samples", "0")
	p := r.Points[0]
	if p.Baseline == nil {
		t.Fatal("no baseline")
	}
	checkResult(t, "baseline", *p.Baseline, 200)
	checkResult(t, "instachat", p.Target, 200)
	if p.Ratio <= 0 || r.Lag != nil {
		t.Errorf("ratio = %v, lag = %v; want a ratio and no lag", p.Ratio, r.Lag)
	}
}

// TestCPUPerRequest checks the CPU report: the baseline measured in its
// child process, each process named by -cpu from its /metrics (here the
// test process itself, twice), with the admin token from -admin-token.
// No figure is asserted beyond being measured.
func TestCPUPerRequest(t *testing.T) {
	url := startServer(t, t.TempDir()).URL()
	t.Setenv("INSTACHAT_ADMIN_TOKEN", "")
	r := runJSON(t, "-url", url, "-n", "200", "-c", "4", "-baseline", "-lag-samples", "0",
		"-admin-token", benchAdminToken, "-cpu", url+"/metrics,"+url+"/metrics")
	p := r.Points[0]
	if b := p.BaselineCPU; b == nil || b.Error != "" || b.Seconds < 0 || b.PerRequest < 0 {
		t.Errorf("baseline CPU %+v, want it measured in its child", b)
	}
	if len(p.CPU) != 2 {
		t.Fatalf("CPU of %d processes, want 2: %+v", len(p.CPU), p.CPU)
	}
	for _, c := range p.CPU {
		if c.Process != url+"/metrics" || c.Error != "" || c.Seconds <= 0 || c.PerRequest <= 0 {
			t.Errorf("CPU %+v, want the process measured", c)
		}
	}

	// Without the token, /metrics answers 401: the report says so.
	r = runJSON(t, "-url", url, "-n", "20", "-c", "2", "-lag-samples", "0")
	if c := r.Points[0].CPU; len(c) != 1 || !strings.Contains(c[0].Error, "401") {
		t.Errorf("CPU without the admin token: %+v, want a 401 named", c)
	}
	if r.Points[0].BaselineCPU != nil {
		t.Errorf("baseline CPU without -baseline: %+v", r.Points[0].BaselineCPU)
	}
	r = runJSON(t, "-url", url, "-n", "20", "-c", "2", "-lag-samples", "0", "-cpu", "off")
	if c := r.Points[0].CPU; len(c) != 0 {
		t.Errorf("-cpu off measured %+v", c)
	}
}

func TestTextReport(t *testing.T) {
	url := startServer(t, t.TempDir()).URL()
	var stdout bytes.Buffer
	if err := Load(t.Context(), []string{"-url", url, "-n", "50", "-c", "2", "-baseline", "-lag-samples", "2"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"baseline", "instachat", "p99 ms", "ratio at 2 connections", "until search finds it",
		"CPU per request at 2 connections: baseline ", "× the baseline)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestSweepDrawsCharts(t *testing.T) {
	url := startServer(t, t.TempDir()).URL()
	dir := t.TempDir()
	r := runJSON(t, "-url", url, "-n", "40", "-baseline", "-sweep", dir)
	if len(r.Points) != len(sweepLevels) {
		t.Fatalf("%d points, want %d", len(r.Points), len(sweepLevels))
	}
	for _, f := range []string{"throughput.svg", "p99.svg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s: %v, %.40q", f, err, b)
		}
	}
}

// TestBadFlags checks each refusal names what is wrong: a bare "some error"
// would also come from a run that got past validation and failed to reach
// the default URL.
func TestBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"-scenario", "nope"}, "-scenario"},
		{[]string{"-c", "0"}, "-c"},
		{[]string{"-url", "localhost:8080"}, "-url"},
		{[]string{"-n", "0", "-d", "0"}, "-d must be positive"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-rate", "-5"}, "-rate"},
		{[]string{"-rate", "100", "-sweep", "x"}, "-sweep"},
		{[]string{"-watch", "-interval", "0"}, "-interval"},
		{[]string{"-interval", "1ms", "-d", "1h"}, "windows"},
	} {
		err := Load(t.Context(), c.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Load %v = %v; want an error naming %q", c.args, err, c.want)
		}
	}
	for _, c := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"-steps", "0"}, "-steps"},
		{[]string{"-messages", "-1"}, "-messages"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		err := Growth(t.Context(), c.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Growth %v = %v; want an error naming %q", c.args, err, c.want)
		}
	}
}

// TestPopulateContinuesNumbering loads 100 messages over 2×3 chats (17, 17, 17
// and 17, 16, 16), then a server on the directory must number on from there.
func TestPopulateContinuesNumbering(t *testing.T) {
	dir := t.TempDir()
	var stdout bytes.Buffer
	if err := Populate(t.Context(), []string{"-data-dir", dir, "-apps", "2", "-chats", "3", "-messages", "100",
		"-batch", "7"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "rows/s") {
		t.Errorf("report: %q", stdout.String())
	}
	client := instachathttp.NewClient(startServer(t, dir).URL(), nil)
	client.AdminToken = benchAdminToken
	ctx := t.Context()
	apps, err := client.ListApplications(ctx, "", 10)
	if err != nil || len(apps) != 2 {
		t.Fatalf("applications: %d, %v", len(apps), err)
	}
	want := [][]int64{{17, 17, 17}, {17, 16, 16}}
	for a, app := range apps {
		if app.ChatsCount != 3 {
			t.Errorf("app %d: chats_count %d, want 3", a, app.ChatsCount)
		}
		if ch, _, err := client.CreateChat(ctx, app.Token, "", ""); err != nil || ch.Number != 4 {
			t.Errorf("app %d: new chat %+v, %v; want number 4", a, ch, err)
		}
		for c, n := range want[a] {
			chat := int64(c + 1)
			if ch, err := client.FindChat(ctx, app.Token, chat); err != nil || ch.MessagesCount != n {
				t.Errorf("app %d chat %d: %+v, %v; want %d messages", a, chat, ch, err, n)
			}
			if m, _, err := client.CreateMessage(ctx, app.Token, chat, "next", ""); err != nil || m.Number != n+1 {
				t.Errorf("app %d chat %d: new message %+v, %v; want number %d", a, chat, m, err, n+1)
			}
		}
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for d := time.Duration(1); d <= 10000; d++ {
		h.record(d * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.99, 9900 * time.Microsecond}, {1, 10 * time.Millisecond}} {
		if got := h.percentile(c.q); got < c.want || float64(got-c.want) > float64(c.want)/64 {
			t.Errorf("p%v = %v, want %v within 1/64", c.q*100, got, c.want)
		}
	}
	for i := range len(h.counts) - 1 { // buckets tile the durations
		if v := uint64(highest(i)); bucket(v) != i || bucket(v+1) != i+1 {
			t.Fatalf("bucket %d ends at %d, which is in bucket %d, and %d in %d", i, v, bucket(v), v+1, bucket(v+1))
		}
	}
}

// checkWindows asserts that the windows of r add up to r and tile the load.
func checkWindows(t *testing.T, r Result, want int) {
	t.Helper()
	if len(r.Windows) != want {
		t.Fatalf("%d windows, want %d: %+v", len(r.Windows), want, r.Windows)
	}
	var requests int64
	var seconds float64
	for k, w := range r.Windows {
		requests += w.Requests
		seconds += w.Seconds
		if k > 0 && math.Abs(w.Start-(r.Windows[k-1].Start+r.Windows[k-1].Seconds)) > 1e-6 {
			t.Errorf("window %d starts at %v, after %+v", k, w.Start, r.Windows[k-1])
		}
		if w.Requests > 0 && (w.Throughput <= 0 || w.Latency.P50 <= 0 || w.Latency.P99 < w.Latency.P50) {
			t.Errorf("window %d: %+v", k, w)
		}
	}
	if requests != r.Requests {
		t.Errorf("windows hold %d requests, the load %d", requests, r.Requests)
	}
	if math.Abs(seconds-r.Seconds) > 1e-6 {
		t.Errorf("windows last %vs, the load %vs", seconds, r.Seconds)
	}
}

// TestOpenLoop runs 200 requests/s for 1s in 300 ms windows, with lag
// probes and the server's metrics watched: the schedule, windows, lag and
// samples must account for every request. How many went out late or never
// depends on the machine (under -race on a busy one, most), so it is only
// accounted for, not asserted.
func TestOpenLoop(t *testing.T) {
	url := startServer(t, t.TempDir()).URL()
	r := runJSON(t, "-url", url, "-rate", "200", "-d", "1s", "-interval", "300ms", "-c", "8", "-chats", "3", "-lag-samples", "10", "-watch")
	target := r.Points[0].Target
	s := target.Schedule
	if s == nil || s.Rate != 200 || s.Scheduled != 200 || s.Sent+s.Missed != 200 || s.Sent != target.Requests || s.Late > s.Sent {
		t.Fatalf("schedule = %+v for %d requests, want 200 scheduled, all accounted for", s, target.Requests)
	}
	if len(target.Errors) > 0 {
		t.Errorf("errors %v", target.Errors)
	}
	// 1s in 300 ms: 0.3, 0.3, 0.3 and the rest.
	checkWindows(t, target, 4)
	if r.Rate != 200 || r.Interval != 0.3 {
		t.Errorf("report rate %v, interval %v", r.Rate, r.Interval)
	}
	var late int64
	lagSamples, lagFailed := 0, 0
	for k, w := range target.Windows {
		late += w.Late
		lagSamples += w.LagSamples
		lagFailed += w.LagFailed
		if (w.LagSamples > 0) != (w.LagRead != nil) || w.LagRead != nil && w.LagSearch.P99 < w.LagRead.P50 {
			t.Errorf("window %d lag: %d samples, read %+v, search %+v", k, w.LagSamples, w.LagRead, w.LagSearch)
		}
		if w.RSSBytes <= 0 || w.Goroutines <= 0 {
			t.Errorf("window %d: RSS %v, goroutines %v", k, w.RSSBytes, w.Goroutines)
		}
	}
	if late != s.Late {
		t.Errorf("windows count %d late, the schedule %d", late, s.Late)
	}
	if r.Lag == nil || r.Lag.Samples+r.Lag.Failed != 10 || lagSamples != r.Lag.Samples || lagFailed != r.Lag.Failed {
		t.Errorf("lag %+v, windows hold %d samples and %d failures", r.Lag, lagSamples, lagFailed)
	}
	wa := r.Watch
	// At the start, at 0.3, 0.6 and 0.9 s, and after the load.
	if wa == nil || wa.Failed != 0 || len(wa.Samples) < 4 || wa.URL != url+"/metrics" {
		t.Fatalf("watch = %+v", wa)
	}
	for _, g := range []Gauge{wa.RSS, wa.Goroutines} {
		if g.Start <= 0 || g.FirstWindow <= 0 || g.LastWindow <= 0 || g.Max < max(g.Start, g.FirstWindow, g.LastWindow) {
			t.Errorf("gauge %+v", g)
		}
	}
	if last := target.Windows[3]; last.RSSBytes != wa.RSS.LastWindow || last.Goroutines != wa.Goroutines.LastWindow {
		t.Errorf("last window %+v, watch %+v", last, wa)
	}
}

// TestOpenLoopCountsFromSchedule stalls the first answer of a server for
// 300 ms with one connection at 100 requests/s: the requests due meanwhile
// go out late, and their latency counts from when they were due, as it
// would for users arriving at that rate, not from when they went out.
func TestOpenLoopCountsFromSchedule(t *testing.T) {
	var first sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first.Do(func() { time.Sleep(300 * time.Millisecond) })
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	o := options{rate: 100, requests: 50, interval: 100 * time.Millisecond}
	r, err := drive(t.Context(), srv.URL, []*op{{http.MethodPost, "/", []byte("{}")}}, 1, o, "stall", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Schedule
	// Due at 10, 20 … 290 ms, all sent at 300 ms or after.
	if r.Requests != 50 || s.Sent != 50 || s.Missed != 0 || s.Late < 20 {
		t.Errorf("%d requests, schedule %+v; want 50 sent, at least 20 late", r.Requests, s)
	}
	if r.Latency.Max < 300 || r.Latency.P50 < 5 || s.Delay.Max < 250 {
		t.Errorf("latency %+v, send delay %+v: the stall must show in every request due during it", r.Latency, s.Delay)
	}
	// The schedule takes 0.5 s: 5 windows or more, nothing answered in
	// the first 300 ms.
	if len(r.Windows) < 5 || r.Windows[0].Requests+r.Windows[1].Requests+r.Windows[2].Requests != 0 {
		t.Errorf("windows %+v: nothing answered in the first 300 ms, then the backlog", r.Windows)
	}
	checkWindows(t, r, len(r.Windows))
}

// TestLagSpacing: probes spread over the load, whether it is a time or a
// count at a rate; back to back only for a count at no set rate.
func TestLagSpacing(t *testing.T) {
	for _, c := range []struct {
		o    options
		want time.Duration
	}{
		{options{duration: 60 * time.Second, lagSamples: 600}, 100 * time.Millisecond},
		{options{duration: 60 * time.Second, lagSamples: 600, rate: 3000}, 100 * time.Millisecond},
		{options{requests: 6000, rate: 200, lagSamples: 300}, 100 * time.Millisecond},
		{options{requests: 6000, lagSamples: 300}, 0},
		{options{duration: time.Second}, 0},
	} {
		if got := lagSpacing(c.o); got != c.want {
			t.Errorf("lagSpacing(%+v) = %v, want %v", c.o, got, c.want)
		}
	}
	// Probes start on that schedule, not after each other: ten probes
	// 20 ms apart against a server that answers creates after 100 ms have
	// creates in flight at once (about five; after each other, one). The
	// server counts them rather than the test timing the run, which a
	// loaded machine stretches: a slower client only overlaps them more.
	var (
		mu                      sync.Mutex
		creating, most, lookups int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			creating++
			most = max(most, creating)
			mu.Unlock()
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			creating--
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"number":1}`))
			return
		}
		if !strings.HasSuffix(r.URL.Path, "/search") {
			lookups++
		}
		w.Write([]byte(`{"number":1,"data":[{"number":1}]}`))
	}))
	defer srv.Close()
	samples := probeLag(t.Context(), instachathttp.NewClient(srv.URL, nil), &workload{token: "t", chats: 2},
		options{duration: 200 * time.Millisecond, lagSamples: 10, bodySize: 30}, time.Now())
	mu.Lock()
	defer mu.Unlock()
	if len(samples) != 10 || most < 2 {
		t.Fatalf("%d samples, at most %d creates at once; want 10, started 20 ms apart and so overlapping", len(samples), most)
	}
	for _, s := range samples {
		if !s.ok {
			t.Errorf("sample %+v: not visible", s)
		}
	}
	// Visible at once: the first read of each probe finds its message.
	if lookups != len(samples) {
		t.Errorf("%d reads for %d probes of messages visible at once, want one each", lookups, len(samples))
	}
}

// TestGrowth measures the empty store and two steps of 1,000 messages, and
// checks each step's stored count against the populating and what the loads
// created, read back from the store.
func TestGrowth(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"-data-dir", dir, "-messages", "2000", "-steps", "2", "-d", "300ms", "-warmup", "100ms",
		"-c", "4", "-chats", "4", "-out", out, "-json"}
	if err := Growth(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	var r GrowthReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	if len(r.Steps) != 3 || r.DataDir != dir || r.Messages != 2000 {
		t.Fatalf("report %+v, want 3 steps in %s", r, dir)
	}
	var stored int64
	for k, s := range r.Steps {
		res := s.Result
		var failed int64
		for _, n := range res.Errors {
			failed += n
		}
		if res.Requests == 0 || failed > 0 || res.Throughput <= 0 {
			t.Errorf("step %d: %+v", k, res)
		}
		// The store holds what was populated up to the step, or more when the
		// loads before created more, and what the warm-up created.
		if want := max(int64(k)*1000, stored); s.Stored < want || s.Stored > want+1000 {
			t.Errorf("step %d: %d stored, want %d and what a 100 ms warm-up created", k, s.Stored, want)
		}
		stored = s.Stored + res.Requests - failed
		if want := res.Throughput / r.Steps[0].Result.Throughput; math.Abs(s.Ratio-want) > 1e-9 {
			t.Errorf("step %d: ratio %v, want %v", k, s.Ratio, want)
		}
	}
	if r.Steps[0].Ratio != 1 || r.Steps[0].PopulateSeconds > 1 || r.Warmup != 0.1 {
		t.Errorf("empty step %+v", r.Steps[0])
	}
	b, err := os.ReadFile(filepath.Join(out, "growth.svg"))
	if err != nil || !bytes.Contains(b, []byte("<svg")) || !bytes.Contains(b, []byte("0.9 × empty store")) {
		t.Errorf("growth.svg: %v, %.60q", err, b)
	}
	// The directory is kept, holding every message counted.
	client := instachathttp.NewClient(startServer(t, dir).URL(), nil)
	client.AdminToken = benchAdminToken
	apps, err := client.ListApplications(t.Context(), "", 10)
	if err != nil || len(apps) != 1 {
		t.Fatalf("applications %v, %v", apps, err)
	}
	var total int64
	chats, err := client.ListChats(t.Context(), apps[0].Token, 0, 10)
	for _, c := range chats {
		total += c.MessagesCount
	}
	if err != nil || len(chats) != 4 || total != stored {
		t.Errorf("%d chats holding %d messages, %v; want 4 holding %d", len(chats), total, err, stored)
	}
}

func TestGrowthText(t *testing.T) {
	var stdout bytes.Buffer
	args := []string{"-messages", "500", "-steps", "1", "-d", "200ms", "-warmup", "0", "-c", "2", "-chats", "2", "-out", ""}
	if err := Growth(t.Context(), args, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ratio to empty", "stored messages: ", "of the empty store's create throughput (target ≥ 0.90"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
}
