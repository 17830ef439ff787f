package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/server"
)

// These are the CI smoke bench: a few hundred requests against a real
// embedded server, to prove the tools work. They never assert speed.

func startServer(t *testing.T, dir string) *server.Server {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = dir
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
	if err := Run(t.Context(), append(args, "-json"), &stdout, &stderr); err != nil {
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

func TestTextReport(t *testing.T) {
	url := startServer(t, t.TempDir()).URL()
	var stdout bytes.Buffer
	if err := Run(t.Context(), []string{"-url", url, "-n", "50", "-c", "2", "-baseline", "-lag-samples", "2"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"baseline", "instachat", "p99 ms", "ratio at 2 connections", "until search finds it"} {
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

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope"},
		{"-c", "0"},
		{"-url", "localhost:8080"},
		{"-n", "0", "-d", "0"},
		{"extra"},
	} {
		if err := Run(t.Context(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("Run %v: no error", args)
		}
	}
}

// TestSeedContinuesNumbering seeds 100 messages over 2×3 chats (17, 17, 17
// and 17, 16, 16), then a server on the directory must number on from there.
func TestSeedContinuesNumbering(t *testing.T) {
	dir := t.TempDir()
	var stdout bytes.Buffer
	if err := Seed(t.Context(), []string{"-data-dir", dir, "-apps", "2", "-chats", "3", "-messages", "100", "-batch", "7"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "rows/s") {
		t.Errorf("report: %q", stdout.String())
	}
	client := instachathttp.NewClient(startServer(t, dir).URL(), nil)
	ctx := t.Context()
	apps, _, err := client.Applications(ctx, 10, "")
	if err != nil || len(apps) != 2 {
		t.Fatalf("applications: %d, %v", len(apps), err)
	}
	want := [][]int64{{17, 17, 17}, {17, 16, 16}}
	for a, app := range apps {
		if app.ChatsCount != 3 {
			t.Errorf("app %d: chats_count %d, want 3", a, app.ChatsCount)
		}
		if ch, _, err := client.CreateChat(ctx, app.Token, ""); err != nil || ch.Number != 4 {
			t.Errorf("app %d: new chat %+v, %v; want number 4", a, ch, err)
		}
		for c, n := range want[a] {
			chat := int64(c + 1)
			if ch, err := client.Chat(ctx, app.Token, chat); err != nil || ch.MessagesCount != n {
				t.Errorf("app %d chat %d: %+v, %v; want %d messages", a, chat, ch, err, n)
			}
			if m, _, err := client.CreateMessage(ctx, app.Token, chat, "next"); err != nil || m.Number != n+1 {
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
