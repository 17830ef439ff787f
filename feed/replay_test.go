package feed_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/feed"
	"github.com/instachat/instachat/inmem"
	"github.com/instachat/instachat/sqlite"
)

// pageCounter is the store's Feeds, counting the pages read and the
// largest asked for.
type pageCounter struct {
	instachat.Feeds
	pages, largest int
}

func (p *pageCounter) ListChanges(ctx context.Context, q instachat.ChangesQuery) (*instachat.ChangesPage, error) {
	p.pages++
	p.largest = max(p.largest, q.Limit)
	return p.Feeds.ListChanges(ctx, q)
}

// countingWriter counts what a stream writes, keeping none of it.
type countingWriter struct {
	events, created int
	last            int64
	synced          int64
	cancel          context.CancelFunc
}

func (w *countingWriter) Event(e instachat.Event) error {
	if e.Event == instachat.EventSynced {
		w.synced = e.Revision
		w.cancel()
		return nil
	}
	if e.Revision <= w.last {
		return fmt.Errorf("revision %d after %d", e.Revision, w.last)
	}
	w.last = e.Revision
	w.events++
	if e.Event == instachat.EventMessageCreated {
		w.created++
	}
	return nil
}

func (w *countingWriter) Heartbeat() error { return nil }

// TestReplayOfAHundredThousandMessages resumes from 0 on a chat of 100,000
// messages in SQLite (10,000 under -race): the replay reads them page after page, never more
// than a page at once, and writes each once, as created, before synced.
func TestReplayOfAHundredThousandMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 100,000 messages: not run with -short")
	}
	n := int64(100_000)
	if raceDetector {
		n = 10_000 // the same paging, at a cost -race can afford
	}
	db, err := sqlite.Open(filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	at := time.Now().UTC().Truncate(time.Microsecond)
	app := &instachat.Application{Token: instachat.NewToken(), Name: "big", CreatedAt: at, UpdatedAt: at}
	if err := db.CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	batch := []instachat.Create{{Chat: &instachat.Chat{Token: app.Token, Number: 1, Name: "c", CreatedAt: at, UpdatedAt: at}}}
	for i := int64(1); i <= n; i++ {
		batch = append(batch, instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: 1, Number: i,
			Body: fmt.Sprintf("message %d", i), CreatedAt: at, UpdatedAt: at}})
		if len(batch) == 1000 || i == n {
			if err := db.ApplyCreates(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	feeds := &pageCounter{Feeds: db}
	s := &feed.Streamer{Feeds: feeds, Broker: inmem.NewBroker(inmem.BrokerOptions{})}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := s.Open(runCtx, instachat.Topic{Token: app.Token, Chat: 1}, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w := &countingWriter{cancel: cancel}
	if err := st.Run(runCtx, w); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run ended with %v", err)
	}
	if int64(w.events) != n || int64(w.created) != n || w.synced != n || w.last != n {
		t.Fatalf("replayed %d events (%d created) up to %d, synced at %d; want %d of each", w.events, w.created, w.last, w.synced, n)
	}
	if want := int(n) / feed.DefaultPageSize; feeds.pages < want || feeds.largest > feed.DefaultPageSize {
		t.Fatalf("%d pages read, the largest of %d; want at least %d of at most %d", feeds.pages, feeds.largest, want, feed.DefaultPageSize)
	}
	t.Logf("%d messages replayed in %d pages", n, feeds.pages)
}
