package inmem

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/instachat/instachat"
)

// BenchmarkSequencerNextMessage takes message numbers from every core at
// once, each goroutine in its own chat of one application, as a busy
// application's dispatcher does.
func BenchmarkSequencerNextMessage(b *testing.B) {
	ctx := context.Background()
	s := NewSequencer()
	token := instachat.NewToken()
	s.AddApplication(ctx, token)
	const chats = 4
	for range chats {
		s.NextChatNumber(ctx, token)
	}
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		chat := next.Add(1)%chats + 1
		for pb.Next() {
			if _, err := s.NextMessageNumber(ctx, token, chat); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkQueueRoundTrip is the time a create waits in Publish with a
// store that takes no time: the cost of the queue itself. creates/batch
// shows how much group commit gathers.
func BenchmarkQueueRoundTrip(b *testing.B) {
	q := NewQueue(QueueOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	var creates, batches atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Consume(ctx, func(_ context.Context, batch []instachat.Create) error {
			creates.Add(int64(len(batch)))
			batches.Add(1)
			return nil
		})
	}()
	c := instachat.Create{Message: &instachat.Message{Token: instachat.NewToken(), Chat: 1, Number: 1, Body: "hi"}}
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := instachat.Publish(ctx, q, c); err != nil {
				b.Fatal(err)
			}
		}
	})
	cancel()
	<-done
	b.ReportMetric(float64(creates.Load())/float64(batches.Load()), "creates/batch")
}
