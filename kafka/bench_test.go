package kafka

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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

// BenchmarkDrain drains a backlog of one application with many chats from
// 12 partitions with 1, 2 and 4 workers (Consume calls of one group), its
// records keyed as encode keys them (by=chat) and, for comparison, all by
// the token (by=token, the keying before messages were keyed by chat). A
// worker's batch costs what drainCost models of a store's transaction, a
// wait rather than CPU, so that the figures show how the records spread
// over workers, not how fast this machine's cores are. Each iteration
// starts a cluster, waits until every worker owns partitions, then
// publishes the backlog and times until the last create was handled.
//
//	go test -run='^$' -bench=Drain -benchtime=1x ./kafka/
func BenchmarkDrain(b *testing.B) {
	for _, by := range []string{"chat", "token"} {
		for _, workers := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("by=%s/workers=%d", by, workers), func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					drain(b, by == "token", workers)
				}
			})
		}
	}
}

const (
	drainChats, drainEach = 200, 50 // 10,000 message creates
	drainBatch            = 100     // MaxBatch of each worker
)

// drainCost is what handling a batch of n creates costs: a commit and a
// little per row.
func drainCost(n int) time.Duration { return 2*time.Millisecond + time.Duration(n)*20*time.Microsecond }

func drain(b *testing.B, byToken bool, workers int) {
	c := newCluster(b)
	q := open(b, c, Config{Partitions: 12, MaxBatch: drainBatch})
	token := instachat.NewToken()
	creates := chatMessages(token, drainChats, drainEach)
	var handled atomic.Int64
	all := make(chan struct{})
	for range workers {
		consume(b, q, func(batch []instachat.Create) error {
			time.Sleep(drainCost(len(batch)))
			if handled.Add(int64(len(batch))) == int64(len(creates)) {
				close(all)
			}
			return nil
		}, nil)
	}
	waitMembers(b, c, workers)
	recs := make([]*kgo.Record, len(creates))
	for i, cr := range creates {
		k, v, err := encode(cr)
		if err != nil {
			b.Fatal(err)
		}
		if byToken {
			k = []byte(token)
		}
		recs[i] = &kgo.Record{Topic: q.cfg.Topic, Key: k, Value: v}
	}
	b.StartTimer()
	start := time.Now()
	wait, err := q.enqueue(b.Context(), recs...)
	if err != nil {
		b.Fatal(err)
	}
	if err := wait(b.Context()); err != nil {
		b.Fatal(err)
	}
	select {
	case <-all:
	case <-time.After(time.Minute):
		b.Fatalf("handled %d creates of %d in a minute", handled.Load(), len(creates))
	}
	b.StopTimer()
	b.ReportMetric(float64(len(creates))/time.Since(start).Seconds(), "creates/s")
}
