package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat/internal/apitest"
	"github.com/instachat/instachat/internal/testenv"
)

// TestProductionDeleteMessageErasureOutlivesAnElasticsearchOutage: a
// message deleted while Elasticsearch is unreachable is answered 204 and
// its body stays in the index at first (the API's tombstone failed); the
// erasure MySQL recorded with the deletion is sent again by the worker
// once Elasticsearch is back, so the document ends body-less. Elasticsearch
// is the recorded answers behind a switchable listener.
func TestProductionDeleteMessageErasureOutlivesAnElasticsearchOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the eraser's 10 s grace: not run with -short")
	}
	es := replayElasticsearch(t)
	cfg := productionConfig(t)
	cfg.ElasticsearchURL = es.url
	var logs testenv.Buffer
	r := startProduction(t, cfg, &logs)
	ctx := t.Context()
	app := r.appWithChat(t, "erasure outage", "")
	m, _, err := apitest.PostMessage(ctx, r.client, app.Token, 1, "a secret to erase")
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/applications/%s/chats/1/messages/%d", app.Token, m.Number)
	r.readable(t, path)
	id := fmt.Sprintf("%s/1/%d", app.Token, m.Number)
	body := func() (string, bool) {
		es.mu.Lock()
		defer es.mu.Unlock()
		b, ok := es.indexed[id]
		return b, ok
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if b, _ := body(); b != m.Body {
			return fmt.Errorf("the index holds %q, want the body", b)
		}
		return nil
	})

	es.net.down()
	if st, v := r.do(t, "DELETE", path, "", ""); st != http.StatusNoContent {
		t.Fatalf("DELETE with Elasticsearch unreachable: %d %v, want 204", st, v)
	}
	if b, _ := body(); b != m.Body {
		t.Fatalf("the index holds %q right after the failed tombstone, want the body still", b)
	}
	if !strings.Contains(logs.String(), "retried_by_worker=true") {
		t.Errorf("the API's failed tombstone is not logged as retried by the worker:\n%s", logs.String())
	}
	es.net.up(t)
	back := time.Now()
	testenv.Eventually(t, 40*time.Second, func() error {
		if b, ok := body(); !ok || b != "" {
			return fmt.Errorf("the index holds %q, want the body-less tombstone", b)
		}
		return nil
	})
	t.Logf("the worker erased the body %v after Elasticsearch came back", time.Since(back).Round(time.Millisecond))
}
