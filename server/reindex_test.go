package server_test

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/testenv"
	"github.com/instachat/instachat/server"
)

// TestReindexRebuildsTheSearchIndexFromTheStore stores 2,204 messages
// straight into MySQL, none of them indexed, in chats of 1,200, 5, none and
// 999 messages across three applications (one without chats), then runs
// Reindex against the replaying Elasticsearch: every stored message must
// reach it with its body, in bulk requests of at most 1,000, and the log
// must say how many. With Elasticsearch out of reach, Reindex fails and
// says so.
func TestReindexRebuildsTheSearchIndexFromTheStore(t *testing.T) {
	cfg := productionConfig(t)
	es := replayElasticsearch(t)
	cfg.ElasticsearchURL = es.url
	ctx := t.Context()
	store, err := server.OpenMaintenanceStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	want := map[string]string{} // body by document id
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
				m := &instachat.Message{Token: app.Token, Chat: chat, Number: k + 1, Body: fmt.Sprintf("app %d chat %d message %d", a, chat, k+1), CreatedAt: now, UpdatedAt: now}
				creates = append(creates, instachat.Create{Message: m})
				want[fmt.Sprintf("%s/%d/%d", app.Token, chat, k+1)] = m.Body
			}
		}
		for len(creates) > 0 {
			n := min(len(creates), 1000)
			if err := store.ApplyCreates(ctx, creates[:n]); err != nil {
				t.Fatal(err)
			}
			creates = creates[n:]
		}
	}

	var logs testenv.Buffer
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), &logs), nil))
	start := time.Now()
	if err := server.Reindex(ctx, cfg, logger); err != nil {
		t.Fatal(err)
	}
	t.Logf("reindexed %d messages in %v", len(want), time.Since(start).Round(time.Millisecond))
	es.mu.Lock()
	indexed, bulks := len(es.indexed), es.bulks
	for id, body := range want {
		if got, ok := es.indexed[id]; !ok || got != body {
			t.Errorf("document %s: %q, want %q", id, got, body)
		}
	}
	es.mu.Unlock()
	if indexed != len(want) {
		t.Errorf("%d documents indexed, want the %d messages stored", indexed, len(want))
	}
	if len(bulks) != 3 || bulks[0] != 1000 || bulks[1] != 1000 {
		t.Errorf("bulk requests of %v documents, want 1000, 1000 and the rest", bulks)
	}
	if done := fmt.Sprintf("applications=3 chats=4 messages=%d", len(want)); strings.Count(logs.String(), done) != 1 {
		t.Errorf("the log does not say %q:\n%s", done, logs.String())
	}

	es.net.down()
	if err := server.Reindex(ctx, cfg, logger); instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
		t.Errorf("reindex without Elasticsearch: %v, want it unavailable", err)
	}
}
