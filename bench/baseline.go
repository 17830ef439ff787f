package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// baselineHandler is what Instachat is measured against: it decodes the
// JSON a create sends and answers a number, as Instachat's create does, and
// nothing else. Reads get the same answer, with 200.
func baselineHandler() http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		if r.Method == http.MethodPost {
			var req struct {
				Body *string `json:"body"`
				Name *string `json:"name"`
			}
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			status = http.StatusCreated
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(struct {
			Number int64 `json:"number"`
		}{n.Add(1)})
	})
}

// runBaseline serves baselineHandler for the time of one load, with
// net/http's defaults, in a child process (see baselineChildEnv) whose CPU
// it reports. Where no child can start, it serves in this process and
// reports why the CPU is not measured.
func runBaseline(ctx context.Context, ops []*op, c int, o options, stderr io.Writer) (*Result, *CPU, error) {
	cpu := &CPU{Process: "baseline"}
	child, err := startBaselineChild(ctx)
	if err != nil {
		cpu.Error = "served in the bench process: " + err.Error()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		srv := &http.Server{Handler: baselineHandler()}
		go srv.Serve(ln)
		defer srv.Close()
		r, err := drive(ctx, "http://"+ln.Addr().String(), ops, c, o, "baseline", stderr)
		return &r, cpu, err
	}
	defer child.close()
	before, err := child.cpu()
	if err != nil {
		return nil, nil, fmt.Errorf("baseline child: %w", err)
	}
	r, err := drive(ctx, "http://"+child.addr, ops, c, o, "baseline", stderr)
	if err != nil {
		return nil, nil, err
	}
	after, err := child.cpu()
	if err != nil {
		cpu.Error = err.Error()
	} else {
		cpu.Seconds = after - before
		cpu.perRequest(r.Requests)
	}
	return &r, cpu, nil
}
