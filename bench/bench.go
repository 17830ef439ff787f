// Package bench measures Instachat. Run is `instachat bench`, a load
// generator against a running server that can drive, in the same run, a
// bare net/http handler with the identical load, so that the report states
// Instachat's throughput as a fraction of what the machine serves at all.
// Seed is `instachat seed`, a bulk loader straight into the embedded store.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	instachathttp "github.com/instachat/instachat/http"
)

// options are the flags of Run.
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
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("instachat bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8080", "base URL of the Instachat server")
	fs.StringVar(&o.scenario, "scenario", "create-messages", "the load: create-chats, create-messages, list-messages, search or mixed (80% creates, 10% lists, 10% searches)")
	fs.IntVar(&o.chats, "chats", 16, "chats the load spreads over; 1 is one hot chat")
	fs.IntVar(&o.concurrency, "c", 64, "concurrent connections")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "how long each load runs, unless -n is set")
	fs.IntVar(&o.requests, "n", 0, "requests each load sends, instead of running for -d")
	fs.IntVar(&o.bodySize, "body-size", 100, "bytes in a message body")
	fs.IntVar(&o.prefill, "prefill", 200, "messages created in each chat before a list-messages, search or mixed load")
	fs.StringVar(&o.token, "token", "", "load this application and its chats 1..-chats (e.g. made by instachat seed) instead of creating them; nothing is prefilled")
	fs.BoolVar(&o.baseline, "baseline", false, "first drive a bare net/http handler in this process with the same load, then report Instachat's throughput as a ratio of it")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.IntVar(&o.lagSamples, "lag-samples", 100, "creates, spread over the load, whose visibility lag is measured (0: none; not with -sweep)")
	fs.StringVar(&o.sweep, "sweep", "", "run at 1, 2, 4 … 128 connections and draw throughput.svg and p99.svg into this directory")
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
	}
	return o, nil
}

// Report is what Run prints; -json prints it as is.
type Report struct {
	Scenario string  `json:"scenario"`
	URL      string  `json:"url"`
	Chats    int     `json:"chats"`
	BodySize int     `json:"body_size"`
	Points   []Point `json:"points"` // one per concurrency level: one, or eight with -sweep
	Lag      *Lag    `json:"lag,omitempty"`
}

// Point is the load at one concurrency. The baseline runs first, then
// Instachat.
type Point struct {
	Concurrency int     `json:"concurrency"`
	Baseline    *Result `json:"baseline,omitempty"`
	Target      Result  `json:"target"`
	Ratio       float64 `json:"ratio,omitempty"` // Target.Throughput / Baseline.Throughput
}

// sweepLevels are the concurrencies of -sweep.
var sweepLevels = []int{1, 2, 4, 8, 16, 32, 64, 128}

// Run is `instachat bench`: it creates an application and chats through the
// API (unless -token names them), then loads the server at -url with the
// scenario and prints the report to stdout. A live progress bar goes to
// stderr when it is a terminal.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	client := instachathttp.NewClient(o.url, &http.Client{Timeout: 30 * time.Second})
	w, err := setup(ctx, o, client, stderr)
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	ops := w.ops(o.scenario)
	levels := []int{o.concurrency}
	if o.sweep != "" {
		levels = sweepLevels
	}
	rep := Report{Scenario: o.scenario, URL: o.url, Chats: o.chats, BodySize: o.bodySize}
	for _, c := range levels {
		p := Point{Concurrency: c}
		if o.baseline {
			if p.Baseline, err = runBaseline(ctx, ops, c, o, stderr); err != nil {
				return err
			}
		}
		var lag chan *Lag
		if o.sweep == "" && o.lagSamples > 0 {
			// Probes run alongside the load: the lag that matters is the
			// one under load.
			lag = make(chan *Lag, 1)
			go func() { lag <- probeLag(ctx, client, w, o) }()
		}
		if p.Target, err = drive(ctx, o.url, ops, c, o, "instachat", stderr); err != nil {
			return err
		}
		if lag != nil {
			rep.Lag = <-lag
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
	fmt.Fprintf(w, "instachat bench: %s on %s, %d chats, %d-byte bodies, %s\n\n", r.Scenario, r.URL, r.Chats, r.BodySize, each)
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
	}
	if l := r.Lag; l != nil {
		fmt.Fprintf(w, "\nvisibility lag of %d creates (%d failed)\n", l.Samples, l.Failed)
		fmt.Fprintln(tw, "\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
		fmt.Fprintf(tw, "until GET answers 200\t%s\n", l.Read.columns())
		fmt.Fprintf(tw, "until search finds it\t%s\n", l.Search.columns())
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
