package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/dispatch"
	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/inmem"
)

// Benchmarks of the create hot path above the store. The sequencer, queue
// round trip, batch insert and search have theirs in inmem, kafka, sqlite
// and mysql.

// parallelism × GOMAXPROCS creates are in flight at once, as under load, so
// that the group-commit queue batches and ns/op is the cost of a create, not
// the latency of a queue round trip.
const parallelism = 16

// newDispatcher returns the embedded dispatcher — in-memory sequencer and
// group-commit queue — whose consumer stores nothing, and an application
// with chat 1.
func newDispatcher(b *testing.B) (*dispatch.Dispatcher, string) {
	ctx, cancel := context.WithCancel(context.Background())
	q := inmem.NewQueue(inmem.QueueOptions{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Consume(ctx, func(context.Context, []instachat.Create) error { return nil })
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	seq := inmem.NewSequencer()
	token := instachat.NewToken()
	seq.AddApplication(ctx, token)
	if _, err := seq.NextChatNumber(ctx, token); err != nil {
		b.Fatal(err)
	}
	return dispatch.New(seq, q), token
}

// BenchmarkDispatchCreateMessage is validation, numbering and the queue
// round trip of a create, from every core as a server sees them.
func BenchmarkDispatchCreateMessage(b *testing.B) {
	d, token := newDispatcher(b)
	body := text(rand.New(rand.NewPCG(1, 2)), "", 100)
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := d.CreateMessage(b.Context(), token, 1, body, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkCreateMessageHTTP is BenchmarkDispatchCreateMessage through the
// real handler: routing, decoding the request and encoding the answer. The
// difference between the two is the HTTP layer's cost per create (plus
// httptest's, building the request and recording the answer).
func BenchmarkCreateMessageHTTP(b *testing.B) {
	for _, size := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint("body=", size), func(b *testing.B) {
			d, token := newDispatcher(b)
			h := (&instachathttp.Server{Creator: d, Dispatch: true}).Handler()
			path := chatPath(token, 1) + "/messages"
			body := messageJSON(text(rand.New(rand.NewPCG(1, 2)), "", size))
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.SetParallelism(parallelism)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
					r.Header.Set("Content-Type", "application/json")
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					if w.Code != http.StatusCreated {
						b.Errorf("status %d: %s", w.Code, w.Body)
						return
					}
				}
			})
		})
	}
}
