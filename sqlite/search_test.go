package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// TestMigrationIndexesExistingMessages makes a data dir as every one was
// before scoped search — 0001 only, its messages in the old index, a message
// stored before its chat row, an edit — and opens it with this code: search
// must find every message, and new messages and edits must reach the
// converted index.
func TestMigrationIndexesExistingMessages(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "instachat.db")
	old, err := sql.Open("sqlite", dsn(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := applyMigrations(ctx, old, []string{"migrations/0001_init.sql"}); err != nil {
		t.Fatal(err)
	}
	a, b := instachat.NewToken(), instachat.NewToken()
	chats := []chatKey{{a, 1}, {b, 1}, {a, 2}} // a's chat 2 has no row
	const perChat = 30
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := old.ExecContext(ctx, query, args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	for _, token := range []string{a, b} {
		exec(`INSERT INTO applications (token, name, created_at, updated_at) VALUES (?, 'old', 0, 0)`, token)
		exec(`INSERT INTO chats (app_token, number, name, created_at, updated_at) VALUES (?, 1, '', 0, 0)`, token)
	}
	// Interleaved, as workers store them: no chat's ids are contiguous.
	for n := 1; n <= perChat; n++ {
		for _, c := range chats {
			exec(`INSERT INTO messages (app_token, chat_number, number, body, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0)`,
				c.token, c.number, n, "shared words, "+tag(int64(n)))
		}
	}
	// Never issued, and beyond the index's 32 bits: it must be left out,
	// not land in another chat's range.
	exec(`INSERT INTO messages (app_token, chat_number, number, body, created_at, updated_at) VALUES (?, 1, ?, 'shared overflow', 0, 0)`, a, int64(1)<<32)
	exec(`INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')`)
	exec(`UPDATE messages SET body = 'shared, edited before the migration' WHERE app_token = ? AND chat_number = 1 AND number = 1`, b)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("open the old database: %v", err)
	}
	defer db.Close()
	for _, c := range chats {
		want := make([]int64, perChat)
		for i := range want {
			want[i] = int64(perChat - i)
		}
		searchFinds(t, db, c, "shared", want...)
		for _, n := range []int64{2, perChat} {
			searchFinds(t, db, c, tag(n), n)
		}
	}
	searchFinds(t, db, chatKey{b, 1}, "edited", 1)
	searchFinds(t, db, chatKey{b, 1}, tag(1))

	// A new message in a migrated chat, one in a new chat, an edit.
	now := time.Now()
	if err := db.ApplyCreates(ctx, []instachat.Create{
		{Message: &instachat.Message{Token: a, Chat: 1, Number: perChat + 1, Body: "shared, after", CreatedAt: now, UpdatedAt: now}},
		{Message: &instachat.Message{Token: a, Chat: 3, Number: 1, Body: "shared, new chat", CreatedAt: now, UpdatedAt: now}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateMessage(ctx, a, 2, 5, "rewritten", now); err != nil {
		t.Fatal(err)
	}
	searchFinds(t, db, chatKey{a, 1}, "after", perChat+1)
	searchFinds(t, db, chatKey{a, 3}, "shared", 1)
	searchFinds(t, db, chatKey{a, 2}, "rewritten", 5)
	searchFinds(t, db, chatKey{a, 2}, tag(5))

	for query, want := range map[string]int{
		`SELECT COUNT(*) FROM message_index WHERE message_index MATCH 'overflow'`: 0,
		`SELECT COUNT(*) FROM message_index`:                                      len(chats)*perChat + 2,
		`SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'messages_fts%'`:      0,
		`SELECT v FROM message_index_config WHERE k = 'automerge'`:                16,
	} {
		var got int
		if err := db.read.QueryRowContext(ctx, query).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", query, got, err, want)
		}
	}
	integrityCheck(t, db)
}

// tag names a message within its chat; every chat has the same tags, so
// finding one checks the scope too.
func tag(n int64) string { return fmt.Sprintf("tag%03d", n) }

// searchFinds checks which messages of the chat a search returns, in order.
func searchFinds(t *testing.T, db *DB, c chatKey, q string, want ...int64) {
	t.Helper()
	terms, err := instachat.ParseSearchTerms(q)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := db.SearchMessages(t.Context(), instachat.SearchQuery{Token: c.token, Chat: c.number, Terms: terms, Limit: 100})
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	got := make([]int64, len(msgs))
	for i, m := range msgs {
		if m.Token != c.token || m.Chat != c.number {
			t.Fatalf("search %q in chat %d returned message %d of chat %d", q, c.number, m.Number, m.Chat)
		}
		got[i] = m.Number
	}
	// Ranking is bm25's; which messages match is what is checked here.
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("search %q in chat %d returned %v, want %v", q, c.number, got, want)
	}
}

// integrityCheck has FTS5 check the index's structure.
func integrityCheck(t *testing.T, db *DB) {
	t.Helper()
	if _, err := db.write.ExecContext(t.Context(), `INSERT INTO message_index (message_index) VALUES ('integrity-check')`); err != nil {
		t.Errorf("index integrity check: %v", err)
	}
}

// TestSearchSeeksTheChatsRange guards what makes search independent of the
// other chats: FTS5 receives the rowid range (its plan's index string shows
// the bounds as '>' and '<') as the outer loop, so only the chat's matches
// are read and ranked.
func TestSearchSeeksTheChatsRange(t *testing.T) {
	db := openTest(t)
	rows, err := db.read.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+indexSearch(1), "t", 1, `"abc"`, 1<<32, 2<<32-1, "x", 20, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	outer := plan[0]
	if !strings.HasPrefix(outer, "SCAN message_index VIRTUAL TABLE INDEX") ||
		!strings.Contains(outer, ">") || !strings.Contains(outer, "<") || !strings.Contains(plan[1], "SEARCH m USING INDEX") {
		t.Errorf("search plan:\n%s\nwant the index, given the rowid range, as the outer loop", strings.Join(plan, "\n"))
	}
}

func TestApplyCreatesRefusesNumbersBeyondTheIndex(t *testing.T) {
	db := openTest(t)
	token := instachat.NewToken()
	for _, n := range []int64{0, -1, maxMessageNumber + 1} {
		err := db.ApplyCreates(t.Context(), []instachat.Create{{Message: &instachat.Message{Token: token, Chat: 1, Number: n, Body: "b"}}})
		if instachat.ErrorCode(err) != instachat.EINVALID {
			t.Errorf("ApplyCreates of message number %d: %v, want EINVALID", n, err)
		}
	}
	if err := db.ApplyCreates(t.Context(), []instachat.Create{{Message: &instachat.Message{Token: token, Chat: 1, Number: maxMessageNumber, Body: "the last"}}}); err != nil {
		t.Fatal(err)
	}
	searchFinds(t, db, chatKey{token, 1}, "last", maxMessageNumber)
}

// TestPurgeRemovesIndexEntries deletes messages behind the store's back, as
// an operator might: their entries must go, or they would take places in a
// page and join to nothing.
func TestPurgeRemovesIndexEntries(t *testing.T) {
	db := openTest(t)
	token := instachat.NewToken()
	var creates []instachat.Create
	for n := range int64(6) {
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: n + 1, Body: "kept " + tag(n+1)}})
	}
	if err := db.ApplyCreates(t.Context(), creates); err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.ExecContext(t.Context(), `DELETE FROM messages WHERE number IN (2, 5)`); err != nil {
		t.Fatal(err)
	}
	searchFinds(t, db, chatKey{token, 1}, "kept", 6, 4, 3, 1)
	searchFinds(t, db, chatKey{token, 1}, tag(5))
	var entries int
	if err := db.read.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM message_index WHERE message_index MATCH 'kept'`).Scan(&entries); err != nil || entries != 4 {
		t.Errorf("%d index entries for 4 messages, %v", entries, err)
	}
	integrityCheck(t, db)
}

// TestSearchNewestFirst checks the order of each kind of query: long terms
// only, long and short, short only; and a chat with no messages.
func TestSearchFindsOnlyItsChat(t *testing.T) {
	db := openTest(t)
	token := instachat.NewToken()
	var creates []instachat.Create
	for i, body := range []string{"red apple", "green apple", "red car", "apple, red", "rediscover"} {
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: int64(i + 1), Body: body}})
	}
	if err := db.ApplyCreates(t.Context(), creates); err != nil {
		t.Fatal(err)
	}
	c := chatKey{token, 1}
	searchFinds(t, db, c, "apple", 4, 2, 1)
	searchFinds(t, db, c, "red", 5, 4, 3, 1)
	searchFinds(t, db, c, "apple re", 4, 1)
	searchFinds(t, db, c, "re", 5, 4, 3, 1)
	searchFinds(t, db, chatKey{token, 2}, "apple")
}
