package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/testenv"
	"github.com/instachat/instachat/sqlite"
	"github.com/instachat/instachat/worker"
)

// recordingIndexer keeps what it is asked to index, and fails when told to.
type recordingIndexer struct {
	mu      sync.Mutex
	bulks   []int             // messages per IndexMessages call
	indexed map[string]string // body by token/chat/number
	err     error
}

func (ix *recordingIndexer) DeleteMessages(context.Context, []*instachat.Message) error {
	panic("reindexing deletes nothing")
}

func (ix *recordingIndexer) IndexMessages(_ context.Context, msgs []*instachat.Message) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.err != nil {
		return ix.err
	}
	ix.bulks = append(ix.bulks, len(msgs))
	for _, m := range msgs {
		ix.indexed[fmt.Sprintf("%s/%d/%d", m.Token, m.Chat, m.Number)] = m.Body
	}
	return nil
}

// TestReindexFeedsEveryStoredMessage stores 2,204 messages, none of them
// indexed, in chats of 1,200, 5, none and 999 messages across three
// applications (one without chats), then runs Reindex: every stored message
// must reach the indexer with its body, in bulks of at most 1,000 across
// chats, and the log must say how many. An indexer that fails stops it with
// the error.
func TestReindexFeedsEveryStoredMessage(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := t.Context()
	want := map[string]string{} // body by token/chat/number
	now := time.Now().UTC().Truncate(time.Microsecond)
	for a, sizes := range [][]int{{1200, 5, 0}, {999}, {}} {
		app := &instachat.Application{Token: instachat.NewToken(), Name: fmt.Sprint("reindexed ", a), CreatedAt: now, UpdatedAt: now}
		if err := store.CreateApplication(ctx, app); err != nil {
			t.Fatal(err)
		}
		var creates []instachat.Create
		for c, n := range sizes {
			chat := int64(c + 1)
			creates = append(creates, instachat.Create{Chat: &instachat.Chat{Token: app.Token, Number: chat, CreatedAt: now, UpdatedAt: now}})
			for k := range int64(n) {
				m := &instachat.Message{Token: app.Token, Chat: chat, Number: k + 1,
					Body: fmt.Sprintf("app %d chat %d message %d", a, chat, k+1), CreatedAt: now, UpdatedAt: now}
				creates = append(creates, instachat.Create{Message: m})
				want[fmt.Sprintf("%s/%d/%d", app.Token, chat, k+1)] = m.Body
			}
		}
		if err := store.ApplyCreates(ctx, creates); err != nil {
			t.Fatal(err)
		}
	}

	var logs testenv.Buffer
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), &logs), nil))
	ix := &recordingIndexer{indexed: map[string]string{}}
	if err := worker.Reindex(ctx, store, ix, logger); err != nil {
		t.Fatal(err)
	}
	for id, body := range want {
		if got, ok := ix.indexed[id]; !ok || got != body {
			t.Errorf("message %s: %q, want %q", id, got, body)
		}
	}
	if len(ix.indexed) != len(want) {
		t.Errorf("%d messages indexed, want the %d stored", len(ix.indexed), len(want))
	}
	if len(ix.bulks) != 3 || ix.bulks[0] != 1000 || ix.bulks[1] != 1000 || ix.bulks[2] != len(want)-2000 {
		t.Errorf("bulks of %v messages, want 1000, 1000 and %d", ix.bulks, len(want)-2000)
	}
	if done := fmt.Sprintf("applications=3 chats=4 messages=%d", len(want)); strings.Count(logs.String(), done) != 1 {
		t.Errorf("the log does not say %q:\n%s", done, logs.String())
	}

	down := instachat.Errorf(instachat.EUNAVAILABLE, "search engine down")
	ix.err = down
	if err := worker.Reindex(ctx, store, ix, logger); !errors.Is(err, down) {
		t.Errorf("reindex into a failing indexer: %v, want its error", err)
	}
}
