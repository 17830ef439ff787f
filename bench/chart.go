package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// writeCharts draws throughput and p99 latency against concurrency, with
// the baseline's when it ran, as throughput.svg and p99.svg in dir.
func writeCharts(dir string, r Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var ticks plot.ConstantTicks
	for _, p := range r.Points {
		ticks = append(ticks, plot.Tick{Value: float64(p.Concurrency), Label: strconv.Itoa(p.Concurrency)})
	}
	for _, c := range []struct {
		file, title, unit string
		value             func(Result) float64
	}{
		{"throughput.svg", "throughput", "requests/s", func(r Result) float64 { return r.Throughput }},
		{"p99.svg", "p99 latency", "ms", func(r Result) float64 { return r.Latency.P99 }},
	} {
		p := newChart(fmt.Sprintf("%s: %s, %d chats, %d-byte bodies", c.title, r.Scenario, r.Chats, r.BodySize), "concurrent connections", c.unit)
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, ticks
		p.Legend.Top, p.Legend.Left = true, true
		var target, baseline plotter.XYs
		for _, pt := range r.Points {
			target = append(target, plotter.XY{X: float64(pt.Concurrency), Y: c.value(pt.Target)})
			if pt.Baseline != nil {
				baseline = append(baseline, plotter.XY{X: float64(pt.Concurrency), Y: c.value(*pt.Baseline)})
			}
		}
		lines := []any{"instachat", target}
		if len(baseline) > 0 {
			lines = append(lines, "bare net/http baseline", baseline)
		}
		if err := plotutil.AddLinePoints(p, lines...); err != nil {
			return err
		}
		if err := saveChart(p, filepath.Join(dir, c.file)); err != nil {
			return err
		}
	}
	return nil
}

// newChart is a plot with its labels and the y axis from 0.
func newChart(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Y.Min = 0
	return p
}

// saveChart writes p to path in the format its extension names.
func saveChart(p *plot.Plot, path string) error {
	return p.Save(16*vg.Centimeter, 10*vg.Centimeter, path)
}

// writeGrowthChart draws create throughput against stored messages into
// dir/growth.svg, with the empty store's figure and 0.9 of it (the target)
// across the chart.
func writeGrowthChart(dir string, r GrowthReport) (string, error) {
	if len(r.Steps) == 0 {
		return "", nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	var top int64
	for _, s := range r.Steps {
		top = max(top, s.Stored)
	}
	scale, unit := 1.0, "stored messages"
	switch {
	case top >= 1_000_000:
		scale, unit = 1e6, "stored messages (millions)"
	case top >= 1_000:
		scale, unit = 1e3, "stored messages (thousands)"
	}
	p := newChart(fmt.Sprintf("create throughput against stored messages: %d connections, %d chats, %gs per load",
		r.Concurrency, r.Chats, r.LoadSeconds), unit, "creates/s")
	p.Legend.Top, p.Legend.Left = false, true
	var measured plotter.XYs
	for _, s := range r.Steps {
		measured = append(measured, plotter.XY{X: float64(s.Stored) / scale, Y: s.Result.Throughput})
	}
	if err := plotutil.AddLinePoints(p, "instachat", measured); err != nil {
		return "", err
	}
	empty := r.Steps[0].Result.Throughput
	for i, ref := range []struct {
		name   string
		factor float64
	}{{"empty store", 1}, {"0.9 × empty store (target)", 0.9}} {
		l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: ref.factor * empty}, {X: float64(top) / scale, Y: ref.factor * empty}})
		if err != nil {
			return "", err
		}
		l.Color, l.Dashes = plotutil.Color(i+1), plotutil.Dashes(i+1)
		p.Add(l)
		p.Legend.Add(ref.name, l)
	}
	path := filepath.Join(dir, "growth.svg")
	return path, saveChart(p, path)
}
