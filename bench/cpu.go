package bench

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// CPU is the processor time a process spent during one load, and per
// request answered: for an Instachat process read from
// process_cpu_seconds_total on its /metrics before and after the load, for
// the baseline from getrusage in the child process that serves it, so
// that neither counts the load generator's own work.
type CPU struct {
	Process    string  `json:"process"`                      // the /metrics URL, or "baseline"
	Seconds    float64 `json:"cpu_s"`                        // user + system, during the load
	PerRequest float64 `json:"cpu_us_per_request,omitempty"` // µs per request answered
	Error      string  `json:"error,omitempty"`              // why it could not be measured
}

// cpuMetric is the Go client's process collector's counter (Linux only).
const cpuMetric = "process_cpu_seconds_total"

// scrapeCPU reads process_cpu_seconds_total from the Prometheus text at url.
func scrapeCPU(ctx context.Context, client *http.Client, url, token string) (float64, error) {
	families, err := scrapeFamilies(ctx, client, url, token)
	if err != nil {
		return 0, err
	}
	f := families[cpuMetric]
	if f == nil || len(f.GetMetric()) == 0 || f.GetMetric()[0].GetCounter() == nil {
		return 0, fmt.Errorf("GET %s: no counter %s", url, cpuMetric)
	}
	return f.GetMetric()[0].GetCounter().GetValue(), nil
}

// scrapeFamilies GETs a Prometheus text exposition, with the admin token
// as a Bearer credential when one is given.
func scrapeFamilies(ctx context.Context, client *http.Client, url, token string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized {
			hint = " (pass -admin-token or set INSTACHAT_ADMIN_TOKEN to the server's admin token)"
		}
		return nil, fmt.Errorf("GET %s: %s%s", url, resp.Status, hint)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return families, nil
}

// cpuMeter measures the CPU of the Instachat processes whose /metrics URLs
// it scrapes, across one load.
type cpuMeter struct {
	urls   []string
	token  string
	client *http.Client
	start  []float64
	errs   []error
}

func (m *cpuMeter) begin(ctx context.Context) {
	m.start, m.errs = make([]float64, len(m.urls)), make([]error, len(m.urls))
	for i, u := range m.urls {
		m.start[i], m.errs[i] = scrapeCPU(ctx, m.client, u, m.token)
	}
}

// end returns each process's CPU since begin, per request of requests.
func (m *cpuMeter) end(ctx context.Context, requests int64) []CPU {
	out := make([]CPU, len(m.urls))
	for i, u := range m.urls {
		out[i].Process = u
		err := m.errs[i]
		if err == nil {
			var now float64
			if now, err = scrapeCPU(ctx, m.client, u, m.token); err == nil {
				out[i].Seconds = now - m.start[i]
			}
		}
		if err != nil {
			out[i].Error = err.Error()
			continue
		}
		out[i].perRequest(requests)
	}
	return out
}

func (c *CPU) perRequest(requests int64) {
	if requests > 0 {
		c.PerRequest = c.Seconds / float64(requests) * 1e6
	}
}

// The baseline runs in a child process, this program run again with
// baselineChildEnv set, so that its CPU is its own: in the bench process
// it would share the counters with the load generator. The child listens
// on a loopback port, prints its address, then answers each line it reads
// with its CPU seconds so far, and exits when its input closes.
const baselineChildEnv = "INSTACHAT_BENCH_BASELINE_CHILD"

func init() {
	// Any program that links package bench (cmd/instachat-bench, its
	// tests) becomes the baseline server when started as its child.
	if os.Getenv(baselineChildEnv) == "1" {
		os.Exit(serveBaselineChild(os.Stdin, os.Stdout))
	}
}

func serveBaselineChild(in io.Reader, out io.Writer) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go (&http.Server{Handler: baselineHandler()}).Serve(ln)
	fmt.Fprintln(out, ln.Addr().String())
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		s, err := selfCPU()
		if err != nil {
			fmt.Fprintln(out, "error", err)
			continue
		}
		fmt.Fprintln(out, strconv.FormatFloat(s, 'f', -1, 64))
	}
	return 0
}

// selfCPU is this process's user and system time, in seconds.
func selfCPU() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), nil
}

// baselineChild is a running baseline server.
type baselineChild struct {
	cmd  *exec.Cmd
	addr string
	in   io.WriteCloser
	out  *bufio.Scanner
}

func startBaselineChild(ctx context.Context) (*baselineChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), baselineChildEnv+"=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &baselineChild{cmd: cmd, in: in, out: bufio.NewScanner(outPipe)}
	line, err := c.line()
	if err != nil {
		c.close()
		return nil, fmt.Errorf("baseline child: %w", err)
	}
	if _, _, err := net.SplitHostPort(line); err != nil {
		c.close()
		return nil, fmt.Errorf("baseline child printed %q, not its address", line)
	}
	c.addr = line
	return c, nil
}

func (c *baselineChild) line() (string, error) {
	done := make(chan bool, 1)
	go func() { done <- c.out.Scan() }()
	select {
	case ok := <-done:
		if !ok {
			return "", cmp.Or(c.out.Err(), io.ErrUnexpectedEOF)
		}
		return c.out.Text(), nil
	case <-time.After(10 * time.Second):
		return "", errors.New("no answer in 10 s")
	}
}

// cpu asks the child for its CPU seconds so far.
func (c *baselineChild) cpu() (float64, error) {
	if _, err := io.WriteString(c.in, "cpu\n"); err != nil {
		return 0, err
	}
	line, err := c.line()
	if err != nil {
		return 0, err
	}
	if strings.HasPrefix(line, "error ") {
		return 0, errors.New(strings.TrimPrefix(line, "error "))
	}
	return strconv.ParseFloat(line, 64)
}

// close ends the child: it exits when its input closes.
func (c *baselineChild) close() {
	c.in.Close()
	c.cmd.Wait()
}
