package mysql

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/worker"
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

// BenchmarkReclaimBatch measures the background erasure of a large deleted
// chat: it stores a chat of 200,000 messages of about 100 bytes (multi-row
// INSERTs, not timed), deletes it, then runs Reclaim with the production
// batch size, worker.DefaultReclaimBatch, the most rows the worker's
// Reclaimer asks for (Reclaim deletes at most reclaimMaxRows of them), until
// nothing is left. Each call is one transaction of one DELETE (after a
// SELECT of the oldest reclaim), so its time bounds how long it holds the
// row locks it takes; the issue asks for about 100 ms at most. Reported:
// the median, p99 and slowest call, the rows a call erased, and the rate.
func BenchmarkReclaimBatch(b *testing.B) {
	const messages = 200_000
	limit := worker.DefaultReclaimBatch
	db := openTest(b)
	ctx := b.Context()
	var took []time.Duration
	var erased int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		app := newApp(b, db)
		populateChat(b, db, app.Token, 1, messages)
		if _, err := db.DeleteChat(ctx, app.Token, 1, time.Now()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for left := int64(messages); ; {
			start := time.Now()
			n, err := db.Reclaim(ctx, limit, nil)
			d := time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if n == 0 {
				break
			}
			if left > 0 { // else the call that erased the reclaim itself
				took = append(took, d)
				erased += n
				left -= n
			}
		}
	}
	b.StopTimer()
	if len(took) == 0 {
		b.Fatal("no batch erased anything")
	}
	var total time.Duration
	for _, d := range took {
		total += d
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(took[len(took)/2]), "ms/batch-median")
	b.ReportMetric(ms(took[len(took)*99/100]), "ms/batch-p99")
	b.ReportMetric(ms(took[len(took)-1]), "ms/batch-max")
	b.ReportMetric(float64(erased)/float64(len(took)), "rows/batch")
	b.ReportMetric(float64(erased)/total.Seconds(), "rows/s")
}
