package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"
)

// Watch is the server's resident memory and goroutines over a load
// (-watch), scraped from its Prometheus /metrics as the load begins, at the
// end of every window, and after the load.
type Watch struct {
	URL        string        `json:"url"`
	Samples    []WatchSample `json:"samples"`
	Failed     int           `json:"failed,omitempty"` // scrapes that gave no figures
	LastError  string        `json:"last_error,omitempty"`
	RSS        Gauge         `json:"rss_bytes"`
	Goroutines Gauge         `json:"goroutines"`
}

// WatchSample is one scrape.
type WatchSample struct {
	At         float64 `json:"at_s"` // since the load began
	RSSBytes   float64 `json:"rss_bytes"`
	Goroutines float64 `json:"goroutines"`
}

// Gauge is one figure over a load: it stayed flat when LastWindow is close
// to FirstWindow (Start is before the load had warmed anything up).
type Gauge struct {
	Start       float64 `json:"start"`        // as the load began
	FirstWindow float64 `json:"first_window"` // at the end of the first window
	LastWindow  float64 `json:"last_window"`  // at the end of the last
	Max         float64 `json:"max"`
}

// The Prometheus metrics -watch reads; the Go client registers both by
// default (process_* on Linux only).
const (
	rssMetric        = "process_resident_memory_bytes"
	goroutinesMetric = "go_goroutines"
)

// watcher scrapes url at start and every interval after it.
type watcher struct {
	url      string
	token    string // sent as a Bearer credential when the server guards /metrics
	client   *http.Client
	start    time.Time
	interval time.Duration

	samples []WatchSample
	failed  int
	lastErr error
}

// run scrapes at start + k × interval until stop closes, then once more.
func (wt *watcher) run(ctx context.Context, stop <-chan struct{}) {
	for k := 1; ; k++ {
		wt.scrapeOnce(ctx)
		timer := time.NewTimer(time.Until(wt.start.Add(time.Duration(k) * wt.interval)))
		select {
		case <-timer.C:
		case <-stop:
			timer.Stop()
			wt.scrapeOnce(ctx)
			return
		case <-ctx.Done():
			timer.Stop()
			return
		}
	}
}

func (wt *watcher) scrapeOnce(ctx context.Context) {
	at := time.Now()
	rss, goroutines, err := scrape(ctx, wt.client, wt.url, wt.token)
	if err != nil {
		wt.failed++
		wt.lastErr = err
		return
	}
	wt.samples = append(wt.samples, WatchSample{At: at.Sub(wt.start).Seconds(), RSSBytes: rss, Goroutines: goroutines})
}

// scrape reads the resident memory and goroutines from a Prometheus text
// exposition at url.
func scrape(ctx context.Context, client *http.Client, url, token string) (rss, goroutines float64, err error) {
	g, err := scrapeGauges(ctx, client, url, token, rssMetric, goroutinesMetric)
	return g[rssMetric], g[goroutinesMetric], err
}

// scrapeGauges reads the named gauges from a Prometheus text exposition at
// url, each the sum of its series; a gauge missing is an error.
func scrapeGauges(ctx context.Context, client *http.Client, url, token string, names ...string) (map[string]float64, error) {
	families, err := scrapeFamilies(ctx, client, url, token)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(names))
	var errs []error
	for _, name := range names {
		f := families[name]
		if f == nil || len(f.GetMetric()) == 0 || f.GetMetric()[0].GetGauge() == nil {
			errs = append(errs, fmt.Errorf("GET %s: no gauge %s", url, name))
			continue
		}
		for _, m := range f.GetMetric() {
			out[name] += m.GetGauge().GetValue()
		}
	}
	return out, errors.Join(errs...)
}

// result puts into each window the sample nearest its end, and sums up.
func (wt *watcher) result(windows []Window) *Watch {
	w := &Watch{URL: wt.url, Samples: wt.samples, Failed: wt.failed}
	if wt.lastErr != nil {
		w.LastError = wt.lastErr.Error()
	}
	if len(wt.samples) == 0 {
		return w
	}
	nearest := func(at float64) WatchSample {
		best := wt.samples[0]
		for _, s := range wt.samples[1:] {
			if math.Abs(s.At-at) < math.Abs(best.At-at) {
				best = s
			}
		}
		return best
	}
	for k := range windows {
		s := nearest(windows[k].Start + windows[k].Seconds)
		windows[k].RSSBytes, windows[k].Goroutines = s.RSSBytes, s.Goroutines
	}
	first, last := wt.samples[0], wt.samples[len(wt.samples)-1]
	if len(windows) > 0 {
		first, last = nearest(windows[0].Start+windows[0].Seconds), nearest(windows[len(windows)-1].Start+windows[len(windows)-1].Seconds)
	}
	w.RSS = Gauge{Start: wt.samples[0].RSSBytes, FirstWindow: first.RSSBytes, LastWindow: last.RSSBytes}
	w.Goroutines = Gauge{Start: wt.samples[0].Goroutines, FirstWindow: first.Goroutines, LastWindow: last.Goroutines}
	for _, s := range wt.samples {
		w.RSS.Max = max(w.RSS.Max, s.RSSBytes)
		w.Goroutines.Max = max(w.Goroutines.Max, s.Goroutines)
	}
	return w
}
