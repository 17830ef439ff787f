package sqlite

import (
	"context"
	"database/sql"
	"fmt"
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
	old := makeOldDataDir(t, "0002")
	a, b := instachat.NewToken(), instachat.NewToken()
	chats := []chatKey{{a, 1}, {b, 1}, {a, 2}} // a's chat 2 has no row
	const perChat = 30
	for _, token := range []string{a, b} {
		old.exec(`INSERT INTO applications (token, name, created_at, updated_at) VALUES (?, 'old', 0, 0)`, token)
		old.exec(`INSERT INTO chats (app_token, number, name, created_at, updated_at) VALUES (?, 1, '', 0, 0)`, token)
	}
	// Interleaved, as workers store them: no chat's ids are contiguous.
	for n := 1; n <= perChat; n++ {
		for _, c := range chats {
			old.exec(`INSERT INTO messages (app_token, chat_number, number, body, created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0)`,
				c.token, c.number, n, "shared words, "+tag(int64(n)))
		}
	}
	// Never issued, and beyond the index's 32 bits: it must be left out,
	// not land in another chat's range.
	old.exec(`INSERT INTO messages (app_token, chat_number, number, body, created_at, updated_at) VALUES (?, 1, ?, 'shared overflow', 0, 0)`,
		a, int64(1)<<32)
	old.exec(`INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')`)
	old.exec(`UPDATE messages SET body = 'shared, edited before the migration' WHERE app_token = ? AND chat_number = 1 AND number = 1`, b)

	db := old.open()
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

	wantInts(t, db, map[string]int{
		`SELECT COUNT(*) FROM message_index WHERE message_index MATCH 'overflow'`:  0,
		`SELECT COUNT(*) FROM message_index`:                                       len(chats)*perChat + 2,
		`SELECT COUNT(*) FROM store.sqlite_schema WHERE name LIKE 'messages_fts%'`: 0,
		`SELECT v FROM message_index_config WHERE k = 'automerge'`:                 16,
		`SELECT v FROM message_index_config WHERE k = 'crisismerge'`:               64,
	})
	integrityCheck(t, db)
}

// tag names a message within its chat; every chat has the same tags, so
// finding one checks the scope too.
func tag(n int64) string { return fmt.Sprintf("tag%03d", n) }

// engineSearch is what package search does with the engine's hits, without
// its check that the chat row exists (these tests store messages before
// their chat): it loads them, and fails unless every hit is a message of the
// chat.
func engineSearch(ctx context.Context, db *DB, q instachat.SearchQuery) ([]*instachat.Message, error) {
	hits, err := db.SearchMessageNumbers(ctx, q)
	if err != nil {
		return nil, err
	}
	numbers := make([]int64, len(hits))
	for i, h := range hits {
		numbers[i] = h.Number
	}
	stored, err := db.FindMessages(ctx, q.Token, q.Chat, numbers)
	if err != nil {
		return nil, err
	}
	byNumber := map[int64]*instachat.Message{}
	for _, m := range stored {
		byNumber[m.Number] = m
	}
	msgs := make([]*instachat.Message, len(hits))
	for i, h := range hits {
		if msgs[i] = byNumber[h.Number]; msgs[i] == nil {
			return nil, fmt.Errorf("hit %d is no message of chat %d", h.Number, q.Chat)
		}
	}
	return msgs, nil
}

// searchFinds checks which messages of the chat a search returns, in order.
func searchFinds(t *testing.T, db *DB, c chatKey, q string, want ...int64) {
	t.Helper()
	terms, err := instachat.ParseSearchTerms(q)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := engineSearch(t.Context(), db, instachat.SearchQuery{Token: c.token, Chat: c.number, Terms: terms, Limit: 100})
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
	// Which messages match is what is checked here; TestSearchRanks*
	// check the order.
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("search %q in chat %d returned %v, want %v", q, c.number, got, want)
	}
}

// wantInts checks what each query, of one integer, answers on db's
// reader.
func wantInts(t *testing.T, db *DB, queries map[string]int) {
	t.Helper()
	ix := indexConn(t, db)
	for query, want := range queries {
		var got int
		if err := ix.QueryRowContext(t.Context(), query).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", query, got, err, want)
		}
	}
}

// indexConn brings db's index up to date and returns its connection, on
// which the index's tables are main and the store's are attached as store.
func indexConn(t *testing.T, db *DB) *sql.Conn {
	t.Helper()
	if err := db.SyncIndex(t.Context()); err != nil {
		t.Fatalf("indexing: %v", err)
	}
	return db.index.conn
}

// integrityCheck has FTS5 check the index's structure.
func integrityCheck(t *testing.T, db *DB) {
	t.Helper()
	if _, err := indexConn(t, db).ExecContext(t.Context(), `INSERT INTO message_index (message_index) VALUES ('integrity-check')`); err != nil {
		t.Errorf("index integrity check: %v", err)
	}
}

// TestSearchSeeksTheChatsRange guards what makes search independent of the
// other chats and of how many messages match: FTS5 receives the rowid range
// (its plan's index string shows the bounds as '>' and '<') as the outer
// loop and hands rows over in the ORDER BY's order, so no sorter has to see
// every match and the query stops after the windows it needs.
func TestSearchSeeksTheChatsRange(t *testing.T) {
	db := openTest(t)
	plan := queryPlan(t, db, indexSearch(1), "t", 1, `"abc"`, 1<<32, 2<<32-1, "x", 20, 0)
	outer := plan[0]
	if len(plan) != 2 || !strings.HasPrefix(outer, "SCAN idx.message_index VIRTUAL TABLE INDEX") ||
		!strings.Contains(outer, ">") || !strings.Contains(outer, "<") || !strings.Contains(plan[1], "SEARCH m USING INDEX") {
		t.Errorf("search plan:\n%s\nwant the index, given the rowid range, as the outer loop and no sorter", strings.Join(plan, "\n"))
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
	if err := db.ApplyCreates(t.Context(), []instachat.Create{{Message: &instachat.Message{Token: token, Chat: 1,
		Number: maxMessageNumber, Body: "the last"}}}); err != nil {
		t.Fatal(err)
	}
	searchFinds(t, db, chatKey{token, 1}, "last", maxMessageNumber)
}

// TestPurgeRemovesIndexEntries deletes messages behind the store's back, as
// an operator might: search must not find them, nor count their entries
// against a page, and the indexer deletes their entries, whose trigrams
// would otherwise stay in the index file.
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
	for _, sync := range []bool{false, true} {
		if sync {
			integrityCheck(t, db)
		}
		searchFinds(t, db, chatKey{token, 1}, "kept", 6, 4, 3, 1)
		searchFinds(t, db, chatKey{token, 1}, tag(5))
		hits, err := db.SearchMessageNumbers(t.Context(), instachat.SearchQuery{Token: token, Chat: 1, Terms: []string{"kept"}, Limit: 2})
		if err != nil || len(hits) != 2 {
			t.Errorf("a page of 2 holds %d hits, %v", len(hits), err)
		}
	}
	wantInts(t, db, map[string]int{`SELECT COUNT(*) FROM message_index WHERE message_index MATCH 'kept'`: 4})
}

// TestSearchFindsOnlyItsChat checks which messages each kind of query finds:
// long terms only, long and short, short only; and a chat with no messages.
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

// putBodies stores one message per body in the chat, numbered from 1.
func putBodies(t *testing.T, db *DB, c chatKey, bodies ...string) {
	t.Helper()
	now := time.Now()
	creates := make([]instachat.Create, len(bodies))
	for i, b := range bodies {
		creates[i] = instachat.Create{Message: &instachat.Message{Token: c.token, Chat: c.number,
			Number: int64(i + 1), Body: b, CreatedAt: now, UpdatedAt: now}}
	}
	if err := db.ApplyCreates(t.Context(), creates); err != nil {
		t.Fatal(err)
	}
}

// searchRanked returns the numbers of one page of a search ranked in windows
// of the given size.
func searchRanked(t *testing.T, db *DB, c chatKey, q string, window, offset, limit int) []int64 {
	t.Helper()
	terms, err := instachat.ParseSearchTerms(q)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, err := db.search(t.Context(), instachat.SearchQuery{Token: c.token, Chat: c.number, Terms: terms, Offset: offset, Limit: limit}, window)
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	numbers := make([]int64, len(msgs))
	for i, m := range msgs {
		if m.Token != c.token || m.Chat != c.number || m.Body == "" || m.CreatedAt.IsZero() {
			t.Fatalf("search %q returned %+v; want a whole message of the chat", q, *m)
		}
		numbers[i] = m.Number
	}
	return numbers
}

func TestSearchRanksBestMatchFirst(t *testing.T) {
	db := openTest(t)
	token := instachat.NewToken()
	for i, tc := range []struct {
		name, q string
		bodies  []string
		want    []int64
	}{
		{"a whole word above a part of one", "cat", []string{"the cat is here", "concatenate now"}, []int64{1, 2}},
		{"more occurrences above fewer", "fox", []string{"fox and fox and fox", "fox and dog and cow"}, []int64{1, 2}},
		{"a short body above a long one", "fox", []string{"the fox", "the fox ran over the hill and far away"}, []int64{1, 2}},
		{"equal scores newest first", "fox", []string{"red fox", "red fox", "red fox"}, []int64{3, 2, 1}},
		{"a short term as a whole word above a word start", "hi", []string{"hi there", "hiya you", "this one"}, []int64{1, 2}},
		{"every term counts", "red apple", []string{"red apple, red apple", "red apple pie now", "green apple"}, []int64{1, 2}},
		{"a long and a short term", "apple re", []string{"re: apple", "apple reduction", "apple"}, []int64{1, 2}},
		{"case ignored and accents kept, as matching does", "école", []string{"ÉCOLE, école", "une école ici", "ecole"}, []int64{1, 2}},
	} {
		c := chatKey{token, int64(i + 1)}
		putBodies(t, db, c, tc.bodies...)
		if got := searchRanked(t, db, c, tc.q, RankWindow, 0, 20); !slices.Equal(got, tc.want) {
			t.Errorf("%s: search %q in %q returned %v, want %v", tc.name, tc.q, tc.bodies, got, tc.want)
		}
	}
}

// TestSearchRanksWithinWindowsOfNewestMatches cuts ten matches, among
// messages that do not match, into windows of four: each window is ranked,
// windows follow newest first, so the best match of all (the oldest) comes
// only after the newer windows. With one window for all, it comes first.
func TestSearchRanksWithinWindowsOfNewestMatches(t *testing.T) {
	db := openTest(t)
	c := chatKey{instachat.NewToken(), 1}
	const plain = "a fox in a long line of other words"
	putBodies(t, db, c,
		"fox fox fox", plain, "no match here", "fox fox", plain, "nothing", // 1–6
		plain, plain, "fox fox", plain, plain, plain) // 7–12
	for _, tc := range []struct {
		window int
		want   []int64
	}{
		{4, []int64{9, 12, 11, 10, 4, 8, 7, 5, 1, 2}},
		{1, []int64{12, 11, 10, 9, 8, 7, 5, 4, 2, 1}}, // newest first
		{RankWindow, []int64{1, 9, 4, 12, 11, 10, 8, 7, 5, 2}},
	} {
		all := searchRanked(t, db, c, "fox", tc.window, 0, 100)
		if !slices.Equal(all, tc.want) {
			t.Errorf("windows of %d: search returned %v, want %v", tc.window, all, tc.want)
		}
		// Every page size, pages straddling windows included, cuts the
		// same order: every match exactly once.
		for limit := 1; limit <= 11; limit++ {
			var paged []int64
			for offset := 0; ; offset += limit {
				page := searchRanked(t, db, c, "fox", tc.window, offset, limit)
				paged = append(paged, page...)
				if len(page) < limit {
					break
				}
			}
			if !slices.Equal(paged, all) {
				t.Errorf("windows of %d, pages of %d: %v, want %v", tc.window, limit, paged, all)
			}
		}
		if got := searchRanked(t, db, c, "fox", tc.window, 10, 5); len(got) != 0 {
			t.Errorf("windows of %d: a page past the last match returned %v", tc.window, got)
		}
	}
	if got := searchRanked(t, db, c, "fo", 4, 0, 100); !slices.Equal(got, []int64{9, 12, 11, 10, 4, 8, 7, 5, 1, 2}) {
		t.Errorf("a short term, windows of 4: %v", got)
	}
}

// TestSearchRankIgnoresOtherChats checks that term statistics come from the
// chat: bm25 over the whole index would put message 2 first once "alpha" is
// common elsewhere and message 1 first once "beta" is.
func TestSearchRankIgnoresOtherChats(t *testing.T) {
	db := openTest(t)
	token := instachat.NewToken()
	c := chatKey{token, 1}
	putBodies(t, db, c, "alpha alpha beta", "alpha beta beta", "gamma")
	want := []int64{2, 1} // equal: newest first
	if got := searchRanked(t, db, c, "alpha beta", RankWindow, 0, 20); !slices.Equal(got, want) {
		t.Fatalf("search returned %v, want %v", got, want)
	}
	for i, common := range []string{"alpha", "beta"} {
		other := make([]string, 300)
		for j := range other {
			other[j] = strings.Repeat(common+" ", 1+j%3)
		}
		putBodies(t, db, chatKey{token, int64(i + 2)}, other...)
		if got := searchRanked(t, db, c, "alpha beta", RankWindow, 0, 20); !slices.Equal(got, want) {
			t.Errorf("with %q common in another chat: %v, want %v", common, got, want)
		}
	}
}
