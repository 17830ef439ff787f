package sqlite

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/instachat/instachat"
)

// TestSearchFoldsCaseAsMatchesTerm sweeps every rune Go lower-cases: for
// each, a message "x"+r+"y" and queries made of r's lower case and of every
// other case form of it (unicode.SimpleFold's orbit, upper and title case),
// each parsed as a client's query is. Every query must return exactly the
// messages instachat.MatchesTerm accepts — no miss (a rune SQLite does not
// fold as Go does) and no extra (one SQLite folds and Go does not, such as ς
// into σ). The messages go in once through ApplyCreates and once, in another
// chat, through an edit, the two ways a body reaches the index.
func TestSearchFoldsCaseAsMatchesTerm(t *testing.T) {
	var cased []rune
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if unicode.ToLower(r) != r {
			cased = append(cased, r)
		}
	}
	if len(cased) < 1400 {
		t.Fatalf("only %d runes that Go lower-cases; the sweep would prove little", len(cased))
	}
	db := openTest(t)
	token := instachat.NewToken()
	created, edited := chatKey{token, 1}, chatKey{token, 2}
	bodies := make([]string, len(cased))
	now := time.Now()
	var creates []instachat.Create
	for i, r := range cased {
		bodies[i] = "x" + string(r) + "y"
		n := int64(i + 1)
		creates = append(creates,
			instachat.Create{Message: &instachat.Message{Token: token, Chat: created.number, Number: n, Body: bodies[i], CreatedAt: now, UpdatedAt: now}},
			instachat.Create{Message: &instachat.Message{Token: token, Chat: edited.number, Number: n, Body: "placeholder", CreatedAt: now, UpdatedAt: now}})
	}
	if err := db.ApplyCreates(t.Context(), creates); err != nil {
		t.Fatal(err)
	}
	for i, b := range bodies {
		if _, err := db.UpdateMessage(t.Context(), token, edited.number, int64(i+1), b, now); err != nil {
			t.Fatal(err)
		}
	}

	// Which queries to ask: each form of each cased rune between x and y.
	var queries []string
	asked := map[string]bool{}
	for _, r := range cased {
		forms := []rune{r, unicode.ToLower(r), unicode.ToUpper(r), unicode.ToTitle(r)}
		for c := unicode.SimpleFold(r); c != r; c = unicode.SimpleFold(c) {
			forms = append(forms, c)
		}
		for _, c := range forms {
			if q := "x" + string(c) + "y"; !asked[q] {
				asked[q] = true
				queries = append(queries, q)
			}
		}
	}
	var misses, extras []string
	missed := map[int64]bool{} // messages some query missed, in either chat
	for _, q := range queries {
		terms, err := instachat.ParseSearchTerms(q)
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for i, b := range bodies {
			if instachat.MatchesTerm(b, terms[0]) {
				want = append(want, int64(i+1))
			}
		}
		for _, c := range []chatKey{created, edited} {
			msgs, err := engineSearch(t.Context(), db, instachat.SearchQuery{Token: token, Chat: c.number, Terms: terms, Limit: len(bodies) + 1})
			if err != nil {
				t.Fatalf("search %q: %v", q, err)
			}
			var got []int64
			for _, m := range msgs {
				got = append(got, m.Number)
			}
			slices.Sort(got)
			for _, n := range want {
				if _, found := slices.BinarySearch(got, n); !found {
					missed[n] = true
					misses = append(misses, fmt.Sprintf("chat %d: %q (%U) misses %q", c.number, q, []rune(q)[1], bodies[n-1]))
				}
			}
			for _, n := range got {
				if _, found := slices.BinarySearch(want, n); !found {
					extras = append(extras, fmt.Sprintf("chat %d: %q (%U) returns %q", c.number, q, []rune(q)[1], bodies[n-1]))
				}
			}
		}
	}
	if len(misses)+len(extras) > 0 {
		t.Errorf("%d runes, %d queries in 2 chats: %d misses (of %d messages), %d results MatchesTerm refuses\n%s\n%s", len(cased), len(queries),
			len(misses), len(missed), len(extras), strings.Join(misses[:min(len(misses), 10)], "\n"), strings.Join(extras[:min(len(extras), 10)], "\n"))
	}
}

// TestMigrationRebuildsIndexInGoCase opens a data dir as every one was
// before 0005 — bodies indexed as they are, folded by SQLite — with this
// code: search must find what MatchesTerm finds in the messages already
// stored, not what SQLite's folding found, and new messages and edits must
// reach the rebuilt index.
func TestMigrationRebuildsIndexInGoCase(t *testing.T) {
	ctx := t.Context()
	old := makeOldDataDir(t, "0005")
	token := instachat.NewToken()
	bodies := []string{"İstanbul Ankara", "ΟΔΟΣ road", "\u13a0\u13a1\u13a2 Cherokee", "Stra\u017f\u017fe", "plain words"}
	for i, b := range bodies {
		for _, q := range []string{
			`INSERT INTO search_scopes (app_token, chat_number) VALUES (?1, 1) ON CONFLICT DO NOTHING`,
			`INSERT INTO messages (app_token, chat_number, number, body, created_at, updated_at) VALUES (?1, 1, ?2, ?3, 0, 0)`,
			`INSERT INTO message_index (rowid, body) SELECT id << 32 | (0xffffffff - ?2), ?3 FROM search_scopes WHERE app_token = ?1`,
		} {
			old.exec(q, token, i+1, b)
		}
	}
	// The old index shows the defect this migration mends.
	var oldFinds int
	if err := old.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM message_index WHERE message_index MATCH '"οδος"'`).Scan(&oldFinds); err != nil || oldFinds != 1 {
		t.Fatalf("before 0005, the index finds %d messages for οδος, %v; want SQLite's folding to find ΟΔΟΣ", oldFinds, err)
	}

	db := old.open()
	c := chatKey{token, 1}
	for q, want := range map[string][]int64{
		"istanbul": {1}, "İSTANBUL": {1}, "ankara": {1},
		"ΟΔΟΣ": {2}, "οδοσ": {2}, "οδος": nil,
		"\uab70\uab71\uab72": {3}, "\u13a0\u13a1": {3}, "cherokee": {3},
		"stra\u017f\u017fe": {4}, "strasse": nil,
		"plain": {5}, "words": {5},
	} {
		searchFinds(t, db, c, q, want...)
	}
	var tokenizer string
	if err := indexConn(t, db).QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'message_index'`).Scan(&tokenizer); err != nil ||
		!strings.Contains(tokenizer, "'trigram case_sensitive 1'") {
		t.Errorf("message_index is %q, %v; want a case-sensitive trigram index", tokenizer, err)
	}

	now := time.Now()
	if err := db.ApplyCreates(ctx, []instachat.Create{
		{Message: &instachat.Message{Token: token, Chat: 1, Number: 6, Body: "\u1c90\u1c91\u1c92 new", CreatedAt: now, UpdatedAt: now}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateMessage(ctx, token, 1, 5, "İZMİR", now); err != nil {
		t.Fatal(err)
	}
	searchFinds(t, db, c, "\u10d0\u10d1\u10d2", 6)
	searchFinds(t, db, c, "izmir", 5)
	searchFinds(t, db, c, "plain")

	wantInts(t, db, map[string]int{
		`SELECT COUNT(*) FROM message_index`:                         len(bodies) + 1,
		`SELECT v FROM message_index_config WHERE k = 'automerge'`:   16,
		`SELECT v FROM message_index_config WHERE k = 'crisismerge'`: 64,
	})
	integrityCheck(t, db)
}
