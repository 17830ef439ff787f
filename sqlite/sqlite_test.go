package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
	"github.com/instachat/instachat/search"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "instachat.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStoreConformance(t *testing.T) {
	conformance.TestStore(t, func(t *testing.T) instachat.Store { return openTest(t) })
}

func TestStoreConformanceShared(t *testing.T) {
	db := openTest(t)
	conformance.TestStore(t, func(*testing.T) instachat.Store { return db })
}

func TestSearcherConformance(t *testing.T) {
	conformance.TestSearcher(t, conformance.SearchEngine{Engine: conformance.EngineSQLite,
		RankWindow: RankWindow}, func(t *testing.T) (instachat.Searcher, func(context.Context, []*instachat.Message) error) {
		db := openTest(t)
		return search.New(db, db), conformance.PutThroughStore(db, nil)
	})
}

// TestSearchForgetConformance: the store's own search forgets what its
// Reclaim erases, ForgetScope having nothing to do.
func TestSearchForgetConformance(t *testing.T) {
	conformance.TestSearchForget(t,
		func(t *testing.T) (instachat.Store, instachat.SearchEngine, func(context.Context, []*instachat.Message) error) {
			db := openTest(t)
			return db, db, conformance.PutThroughStore(db, nil)
		})
}

func TestReopenKeepsDataAndSkipsMigrations(t *testing.T) {
	// Characters that mean something in a URI must stay part of the name.
	path := filepath.Join(t.TempDir(), "insta chat?#%41.db")
	db, err := Open(path, Options{Synchronous: "full"})
	if err != nil {
		t.Fatal(err)
	}
	app := &instachat.Application{Token: instachat.NewToken(), Name: "kept"}
	if err := db.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	before := appliedMigrations(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer db.Close()
	if got, err := db.FindApplication(t.Context(), app.Token); err != nil || got.Name != app.Name {
		t.Fatalf("after reopen FindApplication = %+v, %v", got, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database is not at the path given: %v", err)
	}
	after := appliedMigrations(t, db)
	names, _ := migrations.ReadDir("migrations")
	if len(before) != len(names) || len(after) != len(names) {
		t.Fatalf("%d migrations, %d recorded after open and %d after reopen", len(names), len(before), len(after))
	}
	for version, at := range before {
		if after[version] != at {
			t.Errorf("migration %s applied again on reopen", version)
		}
	}
}

// appliedMigrations maps each recorded version to when it was applied.
func appliedMigrations(t *testing.T, db *DB) map[string]int64 {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	applied := map[string]int64{}
	for rows.Next() {
		var version string
		var at int64
		if err := rows.Scan(&version, &at); err != nil {
			t.Fatal(err)
		}
		applied[version] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return applied
}

// TestOpenRelativePath opens the default data dir's database, which is
// relative to the working directory.
func TestOpenRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("instachat-data", 0o750); err != nil {
		t.Fatal(err)
	}
	db, err := Open(filepath.Join("instachat-data", "instachat.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := os.Stat(filepath.Join(dir, "instachat-data", "instachat.db")); err != nil {
		t.Fatalf("the database is not under the working directory: %v", err)
	}
}

func TestOpenRefusesUnknownSynchronous(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{Synchronous: "OFF"}); err == nil {
		t.Fatal("Open with synchronous OFF succeeded; it gives up crash safety")
	}
}

// TestTrigramFTS5 guards the build of SQLite the driver ships: search needs
// FTS5 and its trigram tokenizer with case folding beyond ASCII.
func TestTrigramFTS5(t *testing.T) {
	db := openTest(t)
	var n int
	err := db.read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM pragma_compile_options WHERE compile_options = 'ENABLE_FTS5'`).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("SQLite is built without FTS5 (%d, %v)", n, err)
	}
	w := db.write
	if _, err := w.ExecContext(t.Context(),
		`CREATE VIRTUAL TABLE temp.trigram_probe USING fts5 (body, tokenize = 'trigram case_sensitive 0')`); err != nil {
		t.Fatalf("no trigram tokenizer: %v", err)
	}
	if _, err := w.ExecContext(t.Context(), `INSERT INTO temp.trigram_probe (body) VALUES ('Une ÉCOLE')`); err != nil {
		t.Fatal(err)
	}
	if err := w.QueryRowContext(t.Context(),
		`SELECT COUNT(*) FROM temp.trigram_probe WHERE trigram_probe MATCH '"cole" AND "écol"'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("trigram substring, case-folded: %d rows, %v; want 1", n, err)
	}
}

func TestErrorsAreClientSafe(t *testing.T) {
	db := openTest(t)
	app := &instachat.Application{Token: instachat.NewToken(), Name: "x"}
	if err := db.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	errs := map[string]error{"application already exists": db.CreateApplication(t.Context(), app)}
	_, errs["application not found"] = db.FindApplication(t.Context(), instachat.NewToken())
	_, errs["chat not found"] = db.FindChat(t.Context(), app.Token, 1)
	_, errs["message not found"] = db.FindMessage(t.Context(), app.Token, 1, 1)
	for want, err := range errs {
		if got := instachat.ErrorMessage(err); got != want {
			t.Errorf("client sees %q, want %q", got, want)
		}
	}
}

// TestRecountRepairsCounts breaks the counts behind the store's back, which
// the conformance suite cannot do, and has Recount mend them.
func TestRecountRepairsCounts(t *testing.T) {
	db := openTest(t)
	app := &instachat.Application{Token: instachat.NewToken(), Name: "x"}
	if err := db.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	m := func(chat, n int64) instachat.Create {
		return instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: chat, Number: n, Body: "b"}}
	}
	if err := db.ApplyCreates(t.Context(), []instachat.Create{
		{Chat: &instachat.Chat{Token: app.Token, Number: 1}}, {Chat: &instachat.Chat{Token: app.Token, Number: 2}},
		m(1, 1), m(1, 2), m(1, 3),
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(t.Context(), `UPDATE applications SET chats_count = 7; UPDATE chats SET messages_count = 9`); err != nil {
		t.Fatal(err)
	}
	if err := db.Recount(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindApplication(t.Context(), app.Token)
	if err != nil || got.ChatsCount != 2 {
		t.Errorf("chats_count after Recount = %+v, %v; want 2", got, err)
	}
	for chat, want := range map[int64]int64{1: 3, 2: 0} {
		if c, err := db.FindChat(t.Context(), app.Token, chat); err != nil || c.MessagesCount != want {
			t.Errorf("chat %d after Recount = %+v, %v; want messages_count %d", chat, c, err, want)
		}
	}
}

func TestFeedsConformance(t *testing.T) {
	conformance.TestFeeds(t, func(t *testing.T) instachat.Store { return openTest(t) })
}

func TestFeedsConformanceShared(t *testing.T) {
	db := openTest(t)
	conformance.TestFeeds(t, func(*testing.T) instachat.Store { return db })
}

func TestDeletesConformance(t *testing.T) {
	conformance.TestDeletes(t, func(t *testing.T) instachat.Store { return openTest(t) })
}

func TestDeletesConformanceShared(t *testing.T) {
	db := openTest(t)
	conformance.TestDeletes(t, func(*testing.T) instachat.Store { return db })
}

// TestDeleteErasesTheBody: a deleted message's body is gone from its row
// and from the search index, in the transaction of the deletion.
func TestDeleteErasesTheBody(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	token, at := instachat.NewToken(), time.Now()
	if err := db.CreateApplication(ctx, &instachat.Application{Token: token, Name: "a", CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	creates := []instachat.Create{{Chat: &instachat.Chat{Token: token, Number: 1, CreatedAt: at, UpdatedAt: at}}}
	for n, body := range []string{"keep this zebra", "erase this zebra", "secret zebra words"} {
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: int64(n + 1), Body: body,
			CreatedAt: at, UpdatedAt: at}})
	}
	if err := db.ApplyCreates(ctx, creates); err != nil {
		t.Fatal(err)
	}
	search := func(term string) []int64 {
		t.Helper()
		hits, err := db.SearchMessageNumbers(ctx, instachat.SearchQuery{Token: token, Chat: 1, Terms: []string{term}, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ns []int64
		for _, h := range hits {
			ns = append(ns, h.Number)
		}
		slices.Sort(ns)
		return ns
	}
	if got := search("zebra"); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("search before the delete: %v", got)
	}
	for _, n := range []int64{2, 3} {
		if _, err := db.DeleteMessage(ctx, token, 1, n, at.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if got := search("zebra"); !slices.Equal(got, []int64{1}) {
		t.Errorf("the engine still finds %v, want [1]: the deleted messages are left in the index", got)
	}
	var entries int
	err := indexConn(t, db).QueryRowContext(ctx, `SELECT COUNT(*) FROM message_index WHERE message_index MATCH '"erase" OR "secret"'`).Scan(&entries)
	if err != nil || entries != 0 {
		t.Errorf("the index holds %d entries of the deleted bodies (%v), want none", entries, err)
	}
	var bodies int
	err = db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM messages WHERE body <> '' AND number IN (2, 3)`).Scan(&bodies)
	if err != nil || bodies != 0 {
		t.Errorf("%d deleted rows keep a body (%v)", bodies, err)
	}
}
