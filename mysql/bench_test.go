package mysql

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// BenchmarkApplyCreates stores batches of new messages of about 100 bytes,
// spread over ten chats of one application: the worker's hot path.
func BenchmarkApplyCreates(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("messages=%d", size), func(b *testing.B) {
			db := openTest(b)
			app := newApp(b, db)
			const chats = 10
			now := time.Now()
			batch := make([]instachat.Create, chats)
			for i := range batch {
				batch[i] = instachat.Create{Chat: &instachat.Chat{Token: app.Token, Number: int64(i + 1), CreatedAt: now, UpdatedAt: now}}
			}
			if err := db.ApplyCreates(b.Context(), batch); err != nil {
				b.Fatal(err)
			}
			body := strings.Repeat("lorem ipsum ", 9)[:100]
			next := make([]int64, chats)
			batch = make([]instachat.Create, size)
			for b.Loop() {
				for i := range batch {
					chat := i % chats
					next[chat]++
					batch[i] = instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: int64(chat + 1),
						Number: next[chat], Body: body, CreatedAt: now, UpdatedAt: now}}
				}
				if err := db.ApplyCreates(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
