// Package bench measures Instachat; cmd/instachat-bench runs it, apart
// from the server binary. Load is `instachat-bench load`, a load generator
// against a running server that can drive, in the same run, a bare
// net/http handler with the identical load, so that the report states
// Instachat's throughput as a fraction of what the machine serves at all.
// Populate is `instachat-bench populate`, a bulk loader straight into the
// embedded store. Growth is `instachat-bench growth`: create throughput
// against stored messages, populating an embedded store in steps and
// serving it in-process.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
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

// options are the flags of Load.
type options struct {
	url         string
	scenario    string
	chats       int
	concurrency int
	duration    time.Duration
	requests    int
	bodySize    int
	prefill     int
	token       string
	baseline    bool
	json        bool
	lagSamples  int
	sweep       string
	rate        float64
	interval    time.Duration
	watch       bool
	watchURL    string
	adminToken  string
	cpuURLs     []string // /metrics of the Instachat processes whose CPU is reported

	answered answered // not a flag: streams times deliveries from each create's answer
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("instachat-bench load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: instachat-bench load [flags]\n\nDrive a running server with load and report "+
			"throughput, latency and visibility lag.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of the Instachat server")
	fs.StringVar(&o.scenario, "scenario", "create-messages",
		"the load: create-chats, create-messages, list-messages, search or mixed (80% creates, 10% lists, 10% searches)")
	fs.IntVar(&o.chats, "chats", 16, "chats the load spreads over; 1 is one hot chat")
	fs.IntVar(&o.concurrency, "c", 64, "concurrent connections")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "how long each load runs, unless -n is set")
	fs.IntVar(&o.requests, "n", 0, "requests each load sends, instead of running for -d")
	fs.IntVar(&o.bodySize, "body-size", 100, "bytes in a message body")
	fs.IntVar(&o.prefill, "prefill", 200, "messages created in each chat before a list-messages, search or mixed load")
	fs.StringVar(&o.token, "token", "",
		"load this application and its chats 1..-chats (e.g. made by instachat-bench populate) instead of creating them; nothing is prefilled")
	fs.BoolVar(&o.baseline, "baseline", false,
		"first drive a bare net/http handler in this process with the same load, then report Instachat's throughput as a ratio of it")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.IntVar(&o.lagSamples, "lag-samples", 100, "creates, spread over the load, whose visibility lag is measured (0: none; not with -sweep)")
	fs.StringVar(&o.sweep, "sweep", "", "run at 1, 2, 4 … 128 connections and draw throughput.svg and p99.svg into this directory")
	fs.Float64Var(&o.rate, "rate", 0,
		"open loop: send this many requests per second in all, on a fixed schedule, over at most -c connections "+
			"in flight; latency counts from each request's scheduled time, and requests sent late or never are "+
			"reported (0: closed loop, each connection sends as soon as it is answered)")
	fs.DurationVar(&o.interval, "interval", 10*time.Second,
		"report throughput, latency, errors and visibility lag per window of this length too (0: no windows)")
	fs.BoolVar(&o.watch, "watch", false,
		"scrape the server's Prometheus metrics at the start, every -interval and the end, and report its "+
			"resident memory and goroutines (a guarded /metrics takes $INSTACHAT_ADMIN_TOKEN)")
	fs.StringVar(&o.watchURL, "watch-url", "", "metrics to scrape for -watch (default: -url + /metrics)")
	fs.StringVar(&o.adminToken, "admin-token", "", "the servers' admin token, which guards /metrics (default $INSTACHAT_ADMIN_TOKEN)")
	cpu := fs.String("cpu", "",
		"comma-separated /metrics URLs of the Instachat processes whose CPU per request is reported, e.g. a front's and a "+
			"worker's (default: -url + /metrics; \"off\": none); the baseline's CPU is its child process's own")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.url = strings.TrimSuffix(o.url, "/") // paths are appended to it
	u, err := url.Parse(o.url)
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return o, fmt.Errorf("-url %q: want http://host:port", o.url)
	case !slices.Contains(scenarios, o.scenario):
		return o, fmt.Errorf("-scenario %q: want one of %v", o.scenario, scenarios)
	case o.chats < 1 || o.concurrency < 1 || o.bodySize < 1:
		return o, errors.New("-chats, -c and -body-size must be at least 1")
	case o.requests < 0 || o.prefill < 0 || o.lagSamples < 0:
		return o, errors.New("-n, -prefill and -lag-samples must not be negative")
	case o.requests == 0 && o.duration <= 0:
		return o, errors.New("-d must be positive unless -n is set")
	case o.rate < 0 || math.IsInf(o.rate, 0) || math.IsNaN(o.rate):
		return o, errors.New("-rate must be a non-negative number")
	case o.interval < 0:
		return o, errors.New("-interval must not be negative")
	case o.requests == 0 && o.interval > 0 && windowCount(o.duration, o.interval) > maxWindows:
		return o, fmt.Errorf("-interval %v cuts -d %v into more than %d windows", o.interval, o.duration, maxWindows)
	case o.sweep != "" && (o.rate > 0 || o.watch):
		return o, errors.New("-sweep runs closed loops at set concurrencies: not with -rate or -watch")
	case o.watch && o.interval == 0:
		return o, errors.New("-watch samples every -interval, which must be positive")
	}
	if o.watch && o.watchURL == "" {
		o.watchURL = o.url + "/metrics"
	}
	if o.adminToken == "" { // not the flag's default, which -h would print
		o.adminToken = os.Getenv("INSTACHAT_ADMIN_TOKEN")
	}
	switch *cpu {
	case "off":
	case "":
		o.cpuURLs = []string{o.url + "/metrics"}
	default:
		for _, u := range strings.Split(*cpu, ",") {
			if u = strings.TrimSpace(u); u != "" {
				o.cpuURLs = append(o.cpuURLs, u)
			}
		}
	}
	return o, nil
}

// Report is what Load prints; -json prints it as is.
type Report struct {
	Scenario string  `json:"scenario"`
	URL      string  `json:"url"`
	Chats    int     `json:"chats"`
	BodySize int     `json:"body_size"`
	Rate     float64 `json:"rate,omitempty"`       // -rate: requests per second asked for
	Interval float64 `json:"interval_s,omitempty"` // seconds per window
	Points   []Point `json:"points"`               // one per concurrency level: one, or eight with -sweep
	Lag      *Lag    `json:"lag,omitempty"`
	Watch    *Watch  `json:"watch,omitempty"`
}

// Point is the load at one concurrency. The baseline runs first, then
// Instachat.
type Point struct {
	Concurrency int     `json:"concurrency"`
	Baseline    *Result `json:"baseline,omitempty"`
	Target      Result  `json:"target"`
	Ratio       float64 `json:"ratio,omitempty"` // Target.Throughput / Baseline.Throughput
	// BaselineCPU is the baseline server's CPU, CPU each measured
	// Instachat process's (-cpu), during their loads.
	BaselineCPU *CPU  `json:"baseline_cpu,omitempty"`
	CPU         []CPU `json:"cpu,omitempty"`
}

// sweepLevels are the concurrencies of -sweep.
var sweepLevels = []int{1, 2, 4, 8, 16, 32, 64, 128}

// Load is `instachat-bench load`: it creates an application and chats
// through the API (unless -token names them), then loads the server at -url
// with the scenario and prints the report to stdout. A live progress bar
// goes to stderr when it is a terminal.
func Load(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	// Lag probes poll concurrently: keep their connections alive.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = lagInFlight
	defer tr.CloseIdleConnections()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: tr}
	client := instachathttp.NewClient(o.url, hc)
	w, err := setup(ctx, o, client, stderr)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	ops := w.ops(o.scenario)
	levels := []int{o.concurrency}
	if o.sweep != "" {
		levels = sweepLevels
	}
	rep := Report{Scenario: o.scenario, URL: o.url, Chats: o.chats, BodySize: o.bodySize, Rate: o.rate, Interval: o.interval.Seconds()}
	for _, c := range levels {
		p := Point{Concurrency: c}
		if o.baseline {
			if p.Baseline, p.BaselineCPU, err = runBaseline(ctx, ops, c, o, stderr); err != nil {
				return err
			}
		}
		meter := &cpuMeter{urls: o.cpuURLs, token: o.adminToken, client: hc}
		meter.begin(ctx)
		start := time.Now()
		var lag chan []lagSample
		if o.sweep == "" && o.lagSamples > 0 {
			// Probes run alongside the load: the lag that matters is the
			// one under load.
			lag = make(chan []lagSample, 1)
			go func() { lag <- probeLag(ctx, client, w, o, start) }()
		}
		var wt *watcher
		stopWatch, watchDone := make(chan struct{}), make(chan struct{})
		if o.watch {
			wt = &watcher{url: o.watchURL, token: o.adminToken, client: hc, start: start, interval: o.interval}
			go func() {
				defer close(watchDone)
				wt.run(ctx, stopWatch)
			}()
		}
		p.Target, err = driveFrom(ctx, start, o.url, ops, c, o, "instachat", stderr)
		if err == nil && len(o.cpuURLs) > 0 {
			p.CPU = meter.end(ctx, p.Target.Requests)
		}
		if wt != nil {
			close(stopWatch)
			<-watchDone
		}
		if err != nil {
			return err
		}
		if lag != nil {
			samples := <-lag
			rep.Lag = summarizeLag(samples)
			p.Target.addLag(samples, o.interval)
		}
		if wt != nil {
			rep.Watch = wt.result(p.Target.Windows)
		}
		if p.Baseline != nil && p.Baseline.Throughput > 0 {
			p.Ratio = p.Target.Throughput / p.Baseline.Throughput
		}
		rep.Points = append(rep.Points, p)
	}
	if o.sweep != "" {
		if err := writeCharts(o.sweep, rep); err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.print(stdout, o)
}

func (r Report) print(w io.Writer, o options) error {
	each := o.duration.String() + " per load"
	if o.requests > 0 {
		each = strconv.Itoa(o.requests) + " requests per load"
	}
	if o.rate > 0 {
		each += fmt.Sprintf(", open loop at %g requests/s", o.rate)
	}
	fmt.Fprintf(w, "instachat-bench load: %s on %s, %d chats, %d-byte bodies, %s\n\n", r.Scenario, r.URL, r.Chats, r.BodySize, each)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "conns\tserver\trequests\treq/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\terrors\t")
	for _, p := range r.Points {
		if p.Baseline != nil {
			fmt.Fprintf(tw, "%d\tbaseline\t%s\n", p.Concurrency, p.Baseline.columns())
		}
		fmt.Fprintf(tw, "%d\tinstachat\t%s\n", p.Concurrency, p.Target.columns())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Points {
		if p.Baseline != nil {
			fmt.Fprintf(w, "ratio at %d connections: %.2f of the baseline's throughput (the baseline ran first)\n", p.Concurrency, p.Ratio)
		}
		if len(p.CPU) > 0 || p.BaselineCPU != nil {
			printCPU(w, p)
		}
		if s := p.Target.Schedule; s != nil {
			fmt.Fprintf(w, "schedule: %d requests due at %g/s, %d sent, %d of them late (more than %v behind: all %d "+
				"connections busy), %d never sent (no connection came free before the load ended); send delay p99 %.2f "+
				"ms, max %.2f ms; latencies count from each request's scheduled time\n",
				s.Scheduled, s.Rate, s.Sent, s.Late, lateAfter, p.Concurrency, s.Missed, s.Delay.P99, s.Delay.Max)
		}
	}
	if l := r.Lag; l != nil {
		fmt.Fprintf(w, "\nvisibility lag of %d creates (%d failed)\n", l.Samples, l.Failed)
		fmt.Fprintln(tw, "\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
		fmt.Fprintf(tw, "until GET answers 200\t%s\n", l.Read.columns())
		fmt.Fprintf(tw, "until search finds it\t%s\n", l.Search.columns())
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "lag trend over the load: %+.1f ms/min until GET, %+.1f ms/min until search (least squares)\n", l.ReadTrend, l.SearchTrend)
	}
	if wa := r.Watch; wa != nil {
		fmt.Fprintf(w, "\nserver at %s: %d scrapes, %d failed", wa.URL, len(wa.Samples), wa.Failed)
		if wa.LastError != "" {
			fmt.Fprintf(w, " (last: %s)", wa.LastError)
		}
		fmt.Fprintln(w)
		fmt.Fprintln(tw, "\tload start\tfirst window\tlast window\tlast/first\tmax\t")
		fmt.Fprintf(tw, "resident MiB\t%s\n", wa.RSS.columns(1<<20))
		fmt.Fprintf(tw, "goroutines\t%s\n", wa.Goroutines.columns(1))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Points) == 1 && len(r.Points[0].Target.Windows) > 0 {
		return printWindows(w, r.Points[0].Target.Windows, o, r.Lag != nil, r.Watch != nil)
	}
	return nil
}

// printCPU prints the CPU per request of the baseline and of each measured
// process at one concurrency, each process also as a multiple of the
// baseline's.
func printCPU(w io.Writer, p Point) {
	var parts []string
	var base float64
	if b := p.BaselineCPU; b != nil {
		if b.Error != "" {
			parts = append(parts, "baseline not measured ("+b.Error+")")
		} else {
			base = b.PerRequest
			parts = append(parts, fmt.Sprintf("baseline %.1f µs", b.PerRequest))
		}
	}
	for _, c := range p.CPU {
		switch {
		case c.Error != "":
			parts = append(parts, fmt.Sprintf("%s not measured (%s)", c.Process, c.Error))
		case base > 0:
			parts = append(parts, fmt.Sprintf("%s %.1f µs (%.2f× the baseline)", c.Process, c.PerRequest, c.PerRequest/base))
		default:
			parts = append(parts, fmt.Sprintf("%s %.1f µs", c.Process, c.PerRequest))
		}
	}
	fmt.Fprintf(w, "CPU per request at %d connections: %s\n", p.Concurrency, strings.Join(parts, "; "))
}

func (g Gauge) columns(unit float64) string {
	ratio := "-"
	if g.FirstWindow > 0 {
		ratio = fmt.Sprintf("%.2f", g.LastWindow/g.FirstWindow)
	}
	return fmt.Sprintf("%.1f\t%.1f\t%.1f\t%s\t%.1f\t", g.Start/unit, g.FirstWindow/unit, g.LastWindow/unit, ratio, g.Max/unit)
}

// printWindows prints the per-window series of the load, with the lag and
// server columns when they were measured.
func printWindows(w io.Writer, ws []Window, o options, lag, watch bool) error {
	fmt.Fprintf(w, "\nper %v window, by when each answer came\n", o.interval)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "from s\tfor s\trequests\treq/s\tp50 ms\tp99 ms\terrors\t"
	if o.rate > 0 {
		head += "late\t"
	}
	if lag {
		head += "lag n\tGET lag p99 ms\tsearch lag p99 ms\t"
	}
	if watch {
		head += "RSS MiB\tgoroutines\t"
	}
	fmt.Fprintln(tw, head)
	for _, win := range ws {
		var errs int64
		for _, n := range win.Errors {
			errs += n
		}
		row := fmt.Sprintf("%.1f\t%.1f\t%d\t%.0f\t%.2f\t%.2f\t%d\t", win.Start, win.Seconds, win.Requests,
			win.Throughput, win.Latency.P50, win.Latency.P99, errs)
		if o.rate > 0 {
			row += fmt.Sprintf("%d\t", win.Late)
		}
		if lag {
			read, search := "-", "-"
			if win.LagRead != nil {
				read, search = fmt.Sprintf("%.2f", win.LagRead.P99), fmt.Sprintf("%.2f", win.LagSearch.P99)
			}
			row += fmt.Sprintf("%d\t%s\t%s\t", win.LagSamples, read, search)
		}
		if watch {
			row += fmt.Sprintf("%.1f\t%.0f\t", win.RSSBytes/(1<<20), win.Goroutines)
		}
		fmt.Fprintln(tw, row)
	}
	return tw.Flush()
}

func (r Result) columns() string {
	errs := "0"
	if len(r.Errors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			parts = append(parts, fmt.Sprintf("%s×%d", k, r.Errors[k]))
		}
		errs = strings.Join(parts, " ")
	}
	return fmt.Sprintf("%d\t%.0f\t%s%s\t", r.Requests, r.Throughput, r.Latency.columns(), errs)
}

func (l Latency) columns() string {
	return fmt.Sprintf("%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t", l.P50, l.P90, l.P99, l.P999, l.Max)
}
