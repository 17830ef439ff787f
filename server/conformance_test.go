package server_test

import (
	"context"
	"testing"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/server"
	"github.com/instachat/instachat/sqlite"
)

// overHTTP is a Store whose reads go through the real server over HTTP,
// with the Go client, and whose writes go to the server's own database
// directly: the suites' writes set tokens, numbers and times of their
// choosing (CreateApplication, ApplyCreates, the renames and edits with
// their time), and call what the API does not serve (Recount,
// HighestNumber, Watermarks, FindMessages), which no API client can. So
// every read a case makes — what it checks — is answered by the API, from
// what the store holds.
type overHTTP struct {
	instachat.Store
	api *instachathttp.Client
}

func (s overHTTP) FindApplication(ctx context.Context, token string) (*instachat.Application, error) {
	return s.api.FindApplication(ctx, token)
}

func (s overHTTP) ListApplications(ctx context.Context, after string, limit int) ([]*instachat.Application, error) {
	return s.api.ListApplications(ctx, after, limit)
}

func (s overHTTP) FindChat(ctx context.Context, token string, number int64) (*instachat.Chat, error) {
	return s.api.FindChat(ctx, token, number)
}

func (s overHTTP) ListChats(ctx context.Context, token string, after int64, limit int) ([]*instachat.Chat, error) {
	return s.api.ListChats(ctx, token, after, limit)
}

func (s overHTTP) FindMessage(ctx context.Context, token string, chat, number int64) (*instachat.Message, error) {
	return s.api.FindMessage(ctx, token, chat, number)
}

func (s overHTTP) ListMessages(ctx context.Context, token string, chat int64, after int64, limit int) ([]*instachat.Message, error) {
	return s.api.ListMessages(ctx, token, chat, after, limit)
}

func (s overHTTP) ListChanges(ctx context.Context, q instachat.ChangesQuery) (*instachat.ChangesPage, error) {
	return s.api.ListChanges(ctx, q)
}

// startWithStore starts the embedded server and opens a second handle on
// its database, closed first at the end of the test.
func startWithStore(t *testing.T) (*running, *sqlite.DB) {
	t.Helper()
	dir := t.TempDir()
	r := start(t, dir)
	cfg := server.DefaultConfig()
	cfg.DataDir = dir
	db, err := server.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return r, db
}

// TestStoreConformanceOverHTTP runs the store suite with its reads
// through the API, on one server shared by the cases (each works under
// applications of its own).
func TestStoreConformanceOverHTTP(t *testing.T) {
	r, db := startWithStore(t)
	conformance.TestStore(t, func(*testing.T) instachat.Store { return overHTTP{Store: db, api: r.client} })
}

// TestSearcherConformanceOverHTTP runs the search suite with the client as
// the Searcher: every search goes through the API to the embedded engine
// (SQLite's FTS5, indexed in the transactions of the rows that put
// writes).
func TestSearcherConformanceOverHTTP(t *testing.T) {
	r, db := startWithStore(t)
	conformance.TestSearcher(t, conformance.SearchEngine{Engine: conformance.EngineSQLite, RankWindow: sqlite.RankWindow},
		func(t *testing.T) (instachat.Searcher, func(context.Context, []*instachat.Message) error) {
			return r.client, conformance.PutThroughStore(db, nil)
		})
}

// TestFeedChangesConformanceOverHTTP runs the feed cases that read what
// ListChanges lists through the API; the cases of the revisions kept in
// the rows are the store's alone (TestFeeds), as the API does not show
// them.
func TestFeedChangesConformanceOverHTTP(t *testing.T) {
	r, db := startWithStore(t)
	conformance.TestFeedChanges(t, func(*testing.T) instachat.Store { return overHTTP{Store: db, api: r.client} })
}

// openProductionOverHTTP starts a production process and opens its MySQL
// database beside it, as startWithStore does for the embedded one.
func openProductionOverHTTP(t *testing.T) (*running, server.MaintenanceStore) {
	t.Helper()
	cfg := productionConfig(t)
	r := startProduction(t, cfg)
	db, err := server.OpenMaintenanceStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return r, db
}

// TestProductionConformanceOverHTTP runs the same suites through a
// production process: MySQL behind the API, and its search fallback.
func TestProductionConformanceOverHTTP(t *testing.T) {
	r, db := openProductionOverHTTP(t)
	open := func(*testing.T) instachat.Store { return overHTTP{Store: db, api: r.client} }
	t.Run("store", func(t *testing.T) { conformance.TestStore(t, open) })
	t.Run("feed changes", func(t *testing.T) { conformance.TestFeedChanges(t, open) })
	t.Run("search", func(t *testing.T) {
		conformance.TestSearcher(t, conformance.SearchEngine{Engine: conformance.EngineMySQL},
			func(t *testing.T) (instachat.Searcher, func(context.Context, []*instachat.Message) error) {
				return r.client, conformance.PutThroughStore(db, nil)
			})
	})
}
