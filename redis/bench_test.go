package redis

import (
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/instachat/instachat"
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
