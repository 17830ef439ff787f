package bench

import (
	"context"
	"encoding/json"
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

// runBaseline serves baselineHandler on a port of its own for the time of
// one load, with net/http's defaults.
func runBaseline(ctx context.Context, ops []*op, c int, o options, stderr io.Writer) (*Result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: baselineHandler()}
	go srv.Serve(ln)
	defer srv.Close()
	r, err := drive(ctx, "http://"+ln.Addr().String(), ops, c, o, "baseline", stderr)
	return &r, err
}
