package sqlite

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// stopIndexer stops db's indexer goroutine, so that what the store's
// writes queue stays queued until the test calls SyncIndex.
func stopIndexer(t *testing.T, db *DB) {
	t.Helper()
	db.index.cancel()
	<-db.index.done
}

// searchAll returns the numbers of every page of a search for term, pages
// of size, in their order.
func searchAll(t *testing.T, db *DB, token string, chat int64, term string, size int) []int64 {
	t.Helper()
	var all []int64
	for offset := 0; ; offset += size {
		hits, err := db.SearchMessageNumbers(t.Context(), instachat.SearchQuery{Token: token, Chat: chat, Terms: []string{term},
			Offset: offset, Limit: size})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hits {
			all = append(all, h.Number)
		}
		if len(hits) < size {
			return all
		}
	}
}

// TestSearchIsExactWhileTheIndexLags: with the indexer stopped, creates,
// edits and deletes stay queued, and search must find exactly what
// MatchesTerm finds, in the order and pages it will once the index holds
// them, with part of the chat indexed and part queued.
func TestSearchIsExactWhileTheIndexLags(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	token, at := instachat.NewToken(), time.Now()
	create := func(from, to int64) {
		t.Helper()
		var creates []instachat.Create
		for n := from; n <= to; n++ {
			body := fmt.Sprintf("zebra %d", n)
			if n%3 == 0 {
				body = fmt.Sprintf("zebra zebra crossing %d", n)
			}
			creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: n, Body: body,
				CreatedAt: at, UpdatedAt: at}})
		}
		if err := db.ApplyCreates(ctx, creates); err != nil {
			t.Fatal(err)
		}
	}
	create(1, 450)
	if err := db.SyncIndex(ctx); err != nil {
		t.Fatal(err)
	}
	stopIndexer(t, db)
	create(451, 600)
	// Edits of indexed messages, in and out of the term; a delete of an
	// indexed and of a queued message.
	for n, body := range map[int64]string{10: "no stripes", 11: "zebra zebra zebra crossing", 12: "a horse"} {
		if _, err := db.UpdateMessage(ctx, token, 1, n, body, at); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int64{20, 500} {
		if _, err := db.DeleteMessage(ctx, token, 1, n, at); err != nil {
			t.Fatal(err)
		}
	}
	var queued int
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM index_queue`).Scan(&queued); err != nil || queued < 150 {
		t.Fatalf("%d rows queued (%v): the indexer did not stay stopped", queued, err)
	}
	var want []int64
	for n := int64(600); n >= 1; n-- {
		if !slices.Contains([]int64{10, 12, 20, 500}, n) {
			want = append(want, n)
		}
	}
	lagging := map[int][]int64{}
	for _, size := range []int{7, 20, 200, 1000} {
		got := searchAll(t, db, token, 1, "zebra", size)
		slices.Sort(got)
		slices.Reverse(got)
		if !slices.Equal(got, want) {
			t.Fatalf("pages of %d while the index lags: %d matches, want %d (each once)", size, len(got), len(want))
		}
		lagging[size] = searchAll(t, db, token, 1, "zebra", size)
	}
	if err := db.SyncIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM index_queue`).Scan(&queued); err != nil || queued != 0 {
		t.Errorf("%d rows queued after SyncIndex (%v)", queued, err)
	}
	for size, before := range lagging {
		if got := searchAll(t, db, token, 1, "zebra", size); !slices.Equal(got, before) {
			t.Errorf("pages of %d: the order changed once indexed:\n%v\nwas\n%v", size, got[:min(len(got), 30)], before[:min(len(before), 30)])
		}
	}
	integrityCheck(t, db)
}

// TestIndexIsRebuiltWhenItsFileIsLost: the index holds nothing the store
// does not, so a data dir whose index file is gone gets it back at the
// next start.
func TestIndexIsRebuiltWhenItsFileIsLost(t *testing.T) {
	path := t.TempDir() + "/instachat.db"
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	token, at := instachat.NewToken(), time.Now()
	var creates []instachat.Create
	for n := int64(1); n <= 50; n++ {
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1 + n%2, Number: n, Body: fmt.Sprintf("giraffe %d", n),
			CreatedAt: at, UpdatedAt: at}})
	}
	if err := db.ApplyCreates(ctx, creates); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + indexSuffix + suffix); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	db, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stopIndexer(t, db)
	wantInts(t, db, map[string]int{`SELECT COUNT(*) FROM message_index WHERE message_index MATCH 'giraffe'`: 50})
	if got := searchAll(t, db, token, 2, "giraffe", 10); len(got) != 25 {
		t.Errorf("chat 2: %d matches, want 25", len(got))
	}
}

// TestErasureRemovesADeletedChatFromTheIndexFile: once the indexer erased
// a deleted chat, no entry of it is left, its scope is gone, and the
// index's pages shrank by about the chat's share: the trigrams of its
// bodies are not just hidden under tombstones.
func TestErasureRemovesADeletedChatFromTheIndexFile(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	token, at := instachat.NewToken(), time.Now()
	if err := db.CreateApplication(ctx, &instachat.Application{Token: token, Name: "a", CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	creates := []instachat.Create{
		{Chat: &instachat.Chat{Token: token, Number: 1, CreatedAt: at, UpdatedAt: at}},
		{Chat: &instachat.Chat{Token: token, Number: 2, CreatedAt: at, UpdatedAt: at}},
	}
	for n := int64(1); n <= 3000; n++ {
		creates = append(creates,
			instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: n, Body: fmt.Sprintf("secret okapi words %d of the deleted chat", n),
				CreatedAt: at, UpdatedAt: at}},
			instachat.Create{Message: &instachat.Message{Token: token, Chat: 2, Number: n, Body: fmt.Sprintf("kept quagga %d", n),
				CreatedAt: at, UpdatedAt: at}})
	}
	if err := db.ApplyCreates(ctx, creates); err != nil {
		t.Fatal(err)
	}
	ix := indexConn(t, db)
	if _, err := ix.ExecContext(ctx, `INSERT INTO message_index (message_index) VALUES ('optimize')`); err != nil {
		t.Fatal(err)
	}
	size := func() (bytes int64) {
		t.Helper()
		if err := ix.QueryRowContext(ctx, `SELECT SUM(LENGTH(block)) FROM message_index_data`).Scan(&bytes); err != nil {
			t.Fatal(err)
		}
		return bytes
	}
	before := size()
	if _, err := db.DeleteChat(ctx, token, 1, at); err != nil {
		t.Fatal(err)
	}
	ix = indexConn(t, db)
	after := size()
	wantInts(t, db, map[string]int{
		`SELECT COUNT(*) FROM message_index WHERE message_index MATCH 'okapi'`:  0,
		`SELECT COUNT(*) FROM message_index WHERE message_index MATCH 'quagga'`: 3000,
		`SELECT COUNT(*) FROM search_scopes WHERE chat_number = 1`:              0,
		`SELECT COUNT(*) FROM store.index_erasures`:                             0,
		`SELECT erasure FROM index_state`:                                       1,
		`SELECT COUNT(*) FROM index_state WHERE merge_pages IS NULL`:            1,
	})
	if after > before*2/3 {
		t.Errorf("the index holds %d bytes after erasing the larger of two chats, %d before: its entries' bytes stayed", after, before)
	}
	searchFinds(t, db, chatKey{token, 2}, "quagga 2999", 2999)
	integrityCheck(t, db)
}

// TestIndexBatchWhoseFirstMessageIsDeleted: a chat's first batch whose first
// message was deleted before the indexer saw it must still index the rest
// (a scope looked up for the deleted one, and not found, was kept as "no
// scope" for the whole batch, and the chat's other messages were lost).
func TestIndexBatchWhoseFirstMessageIsDeleted(t *testing.T) {
	db := openTest(t)
	stopIndexer(t, db)
	ctx := t.Context()
	token, at := instachat.NewToken(), time.Now()
	var creates []instachat.Create
	for n := int64(1); n <= 5; n++ {
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: n, Body: "lemur words",
			CreatedAt: at, UpdatedAt: at}})
	}
	if err := db.ApplyCreates(ctx, creates); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteMessage(ctx, token, 1, 1, at); err != nil {
		t.Fatal(err)
	}
	wantInts(t, db, map[string]int{`SELECT COUNT(*) FROM message_index WHERE message_index MATCH 'lemur'`: 4})
	searchFinds(t, db, chatKey{token, 1}, "lemur", 5, 4, 3, 2)
}

// TestIndexBacklog counts what the stopped indexer has not applied, and
// nothing once it has.
func TestIndexBacklog(t *testing.T) {
	db := openTest(t)
	stopIndexer(t, db)
	ctx := t.Context()
	token, at := instachat.NewToken(), time.Now()
	if err := db.CreateApplication(ctx, &instachat.Application{Token: token, Name: "a", CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	creates := []instachat.Create{{Chat: &instachat.Chat{Token: token, Number: 1, CreatedAt: at, UpdatedAt: at}}}
	for n := int64(1); n <= 3; n++ {
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: n, Body: "b", CreatedAt: at, UpdatedAt: at}})
	}
	if err := db.ApplyCreates(ctx, creates); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateMessage(ctx, token, 1, 2, "edited", at); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteChat(ctx, token, 1, at); err != nil {
		t.Fatal(err)
	}
	if q, e, err := db.IndexBacklog(ctx); err != nil || q != 4 || e != 1 {
		t.Errorf("IndexBacklog = %d queued, %d erasures, %v; want 4 and 1", q, e, err)
	}
	if err := db.SyncIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if q, e, err := db.IndexBacklog(ctx); err != nil || q != 0 || e != 0 {
		t.Errorf("IndexBacklog after SyncIndex = %d queued, %d erasures, %v; want none", q, e, err)
	}
}

// TestIndexerLeavesTheStoreWritable: a transaction of the indexer, which
// begins IMMEDIATE on the index file, must not hold the store's write lock
// (it did while the store was attached read-write: every batch, erasure
// step and merge held up every create).
func TestIndexerLeavesTheStoreWritable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "instachat.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stopIndexer(t, db)
	tx, err := db.index.conn.BeginTx(t.Context(), nil) // as indexer.step does
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM store.index_queue`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", dsn(path, url.Values{"_pragma": {"busy_timeout(0)"}, "_txlock": {"immediate"}}))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	w, err := other.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatalf("the store is locked while the indexer's transaction is open: %v", err)
	}
	w.Rollback()
}

// TestQueuedSearchReadsOnlyTheQueue: the search of a chat's queued
// messages is driven by the queue's index on the chat, not by the chat's
// messages (it read every message of the chat on every search).
func TestQueuedSearchReadsOnlyTheQueue(t *testing.T) {
	db := openTest(t)
	plan := queryPlan(t, db, queuedSearch(1), "t", 1, "x", 20)
	joined := strings.Join(plan, "\n")
	if !strings.Contains(joined, "USING INTEGER PRIMARY KEY (rowid=?)") || !strings.Contains(joined, "index_queue USING INDEX index_queue_chat") ||
		strings.Contains(joined, "sqlite_autoindex_messages") {
		t.Errorf("queued search plan:\n%s\nwant the queue's chat index, then messages by rowid", joined)
	}
}

// indexSession opens path, stores messages from..to of chat 1 holding
// word, brings the index up to date and closes the store.
func indexSession(t *testing.T, path, token, word string, from, to int64) {
	t.Helper()
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	var cs []instachat.Create
	for n := from; n <= to; n++ {
		cs = append(cs, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: n, Body: fmt.Sprintf("%s %d", word, n),
			CreatedAt: at, UpdatedAt: at}})
	}
	if err := db.ApplyCreates(t.Context(), cs); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncIndex(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// restore puts back file's copy old, with no WAL beside it.
func restore(t *testing.T, file string, old []byte) {
	t.Helper()
	os.Remove(file + "-wal")
	os.Remove(file + "-shm")
	if err := os.WriteFile(file, old, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAnIndexThatDoesNotMatchItsStoreIsRebuilt: an index file older than
// its store (restored from a backup, or a power loss took its last commits
// but not the store's trim), one newer (the store restored), and one of
// another data dir are each rebuilt at Open; before, each was trusted and
// search lost messages for good.
func TestAnIndexThatDoesNotMatchItsStoreIsRebuilt(t *testing.T) {
	find := func(t *testing.T, path, token, word string, want int) {
		t.Helper()
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if got := searchAll(t, db, token, 1, word, 100); len(got) != want {
			t.Errorf("search for %q finds %d messages, want %d", word, len(got), want)
		}
	}
	t.Run("IndexOlder", func(t *testing.T) {
		path, token := filepath.Join(t.TempDir(), "instachat.db"), instachat.NewToken()
		indexSession(t, path, token, "alpaca", 1, 10)
		old, err := os.ReadFile(path + indexSuffix)
		if err != nil {
			t.Fatal(err)
		}
		indexSession(t, path, token, "alpaca", 11, 20)
		restore(t, path+indexSuffix, old)
		find(t, path, token, "alpaca", 20)
	})
	t.Run("StoreOlder", func(t *testing.T) {
		path, token := filepath.Join(t.TempDir(), "instachat.db"), instachat.NewToken()
		indexSession(t, path, token, "alpaca", 1, 10)
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		indexSession(t, path, token, "alpaca", 11, 20)
		restore(t, path, old)
		indexSession(t, path, token, "bison", 11, 15)
		find(t, path, token, "bison", 5)
		find(t, path, token, "alpaca", 10)
	})
	t.Run("AnotherStore", func(t *testing.T) {
		dir, token := t.TempDir(), instachat.NewToken()
		a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
		indexSession(t, a, token, "alpaca", 1, 10)
		indexSession(t, b, token, "bison", 1, 10)
		other, err := os.ReadFile(b + indexSuffix)
		if err != nil {
			t.Fatal(err)
		}
		restore(t, a+indexSuffix, other)
		find(t, a, token, "alpaca", 10)
		find(t, a, token, "bison", 0)
	})
	t.Run("NotADatabase", func(t *testing.T) {
		path, token := filepath.Join(t.TempDir(), "instachat.db"), instachat.NewToken()
		indexSession(t, path, token, "alpaca", 1, 10)
		restore(t, path+indexSuffix, []byte("this is not a database file, and it is long enough to have a header"))
		find(t, path, token, "alpaca", 10)
	})
}

// TestErasureOfAnApplicationTakesManyChatsAStep: an application's erasure
// deletes the entries and scopes of many chats in each step (one step per
// chat made an application of 100,000 chats take about ten minutes), and
// leaves none of them.
func TestErasureOfAnApplicationTakesManyChatsAStep(t *testing.T) {
	db := openTest(t)
	stopIndexer(t, db)
	ctx := t.Context()
	token, at := instachat.NewToken(), time.Now()
	if err := db.CreateApplication(ctx, &instachat.Application{Token: token, Name: "a", CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	var creates []instachat.Create
	for c := int64(1); c <= 600; c++ {
		creates = append(creates, instachat.Create{Chat: &instachat.Chat{Token: token, Number: c, CreatedAt: at, UpdatedAt: at}})
		for n := int64(1); n <= 3; n++ {
			creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: c, Number: n, Body: "tapir " + tag(c),
				CreatedAt: at, UpdatedAt: at}})
		}
	}
	if err := db.ApplyCreates(ctx, creates); err != nil {
		t.Fatal(err)
	}
	wantInts(t, db, map[string]int{`SELECT COUNT(*) FROM search_scopes`: 600})
	if err := db.DeleteApplication(ctx, token, at); err != nil {
		t.Fatal(err)
	}
	steps := 0
	for ; steps < 100; steps++ {
		n, err := db.index.step(ctx, db.index.eraseStep)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	// 1,800 entries of 600 chats: one step for 2,000 entries of 500
	// chats, one for the rest, then merging and the watermark.
	if steps > 10 {
		t.Errorf("the erasure of 600 chats took %d steps", steps)
	}
	wantInts(t, db, map[string]int{
		`SELECT COUNT(*) FROM search_scopes`:                                   0,
		`SELECT COUNT(*) FROM message_index WHERE message_index MATCH 'tapir'`: 0,
		`SELECT erasure FROM index_state`:                                      1,
	})
}
