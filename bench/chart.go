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
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: %s, %d chats, %d-byte bodies", c.title, r.Scenario, r.Chats, r.BodySize)
		p.X.Label.Text = "concurrent connections"
		p.X.Scale, p.X.Tick.Marker = plot.LogScale{}, ticks
		p.Y.Label.Text = c.unit
		p.Y.Min = 0
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
		if err := p.Save(16*vg.Centimeter, 10*vg.Centimeter, filepath.Join(dir, c.file)); err != nil {
			return err
		}
	}
	return nil
}
