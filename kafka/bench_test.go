package kafka

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// publishers is how many requests publish at once, as under an HTTP load.
const publishers = 64

// publishAll publishes b.N messages from the publishers, each as one
// request of its own application, and reports the mean time a publisher
// waited for the brokers.
func publishAll(b *testing.B, q *Queue) {
	b.SetParallelism((publishers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var waited atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		m := *messages(1, instachat.NewToken())[0].Message
		for pb.Next() {
			m.Number++
			msg := m
			start := time.Now()
			if err := instachat.Publish(context.Background(), q, instachat.Create{Message: &msg}); err != nil {
				b.Error(err)
				return
			}
			waited.Add(int64(time.Since(start)))
		}
	})
	b.ReportMetric(float64(waited.Load())/float64(b.N)/1e3, "µs/publish")
}

func BenchmarkPublish(b *testing.B) {
	publishAll(b, open(b, newCluster(b), Config{}))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}

// BenchmarkRoundTrip times creates from Publish to the handler.
func BenchmarkRoundTrip(b *testing.B) {
	q := open(b, newCluster(b), Config{})
	handled, all := 0, make(chan struct{})
	consume(b, q, func(batch []instachat.Create) error { // called serially
		if handled < b.N && handled+len(batch) >= b.N {
			close(all)
		}
		handled += len(batch)
		return nil
	}, nil)
	publishAll(b, q)
	<-all
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "creates/s")
}
