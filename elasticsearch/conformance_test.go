package elasticsearch_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
	"github.com/instachat/instachat/elasticsearch"
	"github.com/instachat/instachat/internal/testenv"
	"github.com/instachat/instachat/search"
	"github.com/instachat/instachat/sqlite"
)

// TestSearcher runs the conformance suite on a real cluster — the only test
// of what the analyzers actually index, and of how Elasticsearch ranks (the
// cases tagged EngineElasticsearch) — each subtest in an index of its own.
// It skips without INSTACHAT_TEST_ELASTICSEARCH_URL: everywhere else this
// package is checked against recorded answers only (elasticsearch_test.go).
func TestSearcher(t *testing.T) {
	url := testenv.Lookup(t, "INSTACHAT_TEST_ELASTICSEARCH_URL")
	conformance.TestSearcher(t, conformance.SearchEngine{Engine: conformance.EngineElasticsearch},
		func(t *testing.T) (instachat.Searcher, func(context.Context, []*instachat.Message) error) {
			// The rows come from a store, as in production; sqlite is the
			// one that needs no server.
			x, store := openLive(t, url)
			return search.New(store, x), conformance.PutThroughStore(store, x.IndexMessages)
		})
}

// TestSearchForget runs the conformance suite of deletes on a real cluster:
// a deleted message's tombstone, a reclaimed chat's and application's
// delete by query. It skips without INSTACHAT_TEST_ELASTICSEARCH_URL.
func TestSearchForget(t *testing.T) {
	url := testenv.Lookup(t, "INSTACHAT_TEST_ELASTICSEARCH_URL")
	conformance.TestSearchForget(t,
		func(t *testing.T) (instachat.Store, instachat.SearchEngine, func(context.Context, []*instachat.Message) error) {
			x, store := openLive(t, url)
			// Deletes reach the index as they do in production: a
			// message's through search.Indexing, a chat's and an
			// application's through the reclaim.
			return &search.Indexing{Store: store, Indexer: x}, x, conformance.PutThroughStore(store, x.IndexMessages)
		})
}

// openLive opens an index of its own on the cluster at url, deleted when the
// test ends, and a sqlite store for the rows.
func openLive(t *testing.T, url string) (*elasticsearch.Index, *sqlite.DB) {
	t.Helper()
	cfg := elasticsearch.Config{URL: url, Index: "instachat-test-" + strings.ToLower(rand.Text()), Refresh: "wait_for"}
	x, err := elasticsearch.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		// t.Context() is already done when cleanups run.
		if err := x.DeleteIndex(context.Background()); err != nil {
			t.Errorf("deleting index %s: %v", cfg.Index, err)
		}
	})
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "instachat.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return x, store
}
