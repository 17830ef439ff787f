package redis

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/redis/rueidis"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/dispatch"
)

// BenchmarkNextMessageNumber is the create path's cost in Redis: 64
// goroutines, as many concurrent requests, numbering messages over 20 chats
// of one application. ns/op is wall time per number across all of them.
func BenchmarkNextMessageNumber(b *testing.B) {
	const goroutines, chats = 64, 20
	s := open(b, testPrefix(b))
	token := instachat.NewToken()
	if err := s.AddApplication(b.Context(), token); err != nil {
		b.Fatal(err)
	}
	for range chats {
		if _, err := s.NextChatNumber(b.Context(), token); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	// RunParallel starts parallelism × GOMAXPROCS goroutines.
	b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.NextMessageNumber(b.Context(), token, next.Add(1)%chats+1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// countingClient counts the commands a Sequencer sends: each Do is one
// round trip (a script run is one EVALSHA).
type countingClient struct {
	rueidis.Client
	calls atomic.Int64
}

func (c *countingClient) Do(ctx context.Context, cmd rueidis.Completed) rueidis.RedisResult {
	c.calls.Add(1)
	return c.Client.Do(ctx, cmd)
}

// acceptingQueue takes every create at once, so that only numbering is
// measured.
type acceptingQueue struct{}

func (acceptingQueue) Enqueue(context.Context, ...instachat.Create) (func(context.Context) error, error) {
	return func(context.Context) error { return nil }, nil
}
func (acceptingQueue) Consume(ctx context.Context, _ func(context.Context, []instachat.Create) error) error {
	<-ctx.Done()
	return nil
}
func (acceptingQueue) DeadLetter(context.Context, instachat.Create, error) error { return nil }

// BenchmarkDispatchRoundTrips is the dispatcher's create path on Redis
// numbering: 64 concurrent message creates over 4 chats of one
// application, without idempotency keys. It reports the Redis round trips
// per create (trips/create), which the dispatcher lowers by taking a block
// of numbers for the creates of a chat that wait together.
//
//	go test -run='^$' -bench=DispatchRoundTrips -benchmem ./redis/
func BenchmarkDispatchRoundTrips(b *testing.B) {
	const goroutines, chats = 64, 4
	s := open(b, testPrefix(b))
	counter := &countingClient{Client: s.client}
	s.client = counter
	token := instachat.NewToken()
	if err := s.AddApplication(b.Context(), token); err != nil {
		b.Fatal(err)
	}
	for range chats {
		if _, err := s.NextChatNumber(b.Context(), token); err != nil {
			b.Fatal(err)
		}
	}
	d := dispatch.New(s, acceptingQueue{})
	var next atomic.Int64
	b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	before := counter.calls.Load()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := d.CreateMessage(b.Context(), token, next.Add(1)%chats+1, "hello", ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(counter.calls.Load()-before)/float64(b.N), "trips/create")
}
