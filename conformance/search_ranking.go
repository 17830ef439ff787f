package conformance

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/instachat/instachat"
)

// Engine names a search engine, as Mattermost's searchtest tags its cases:
// a case tagged with some engines runs on those only, so that where engines
// differ — in how they rank — each one's behaviour is stated and tested
// instead of left unchecked.
type Engine uint

const (
	// EngineSQLite is package sqlite: BM25 computed in Go, in windows of the
	// chat's newest matches (sqlite.SearchMessages), whole words weighing
	// above substrings, equal scores newest first.
	EngineSQLite Engine = 1 << iota
	// EngineElasticsearch is package elasticsearch: Elasticsearch's BM25
	// over the index, a whole word adding a should clause, equal scores in
	// number order. Its suite runs only against a live cluster
	// (INSTACHAT_TEST_ELASTICSEARCH_URL); the recorded answers of its unit
	// tests cannot show how Elasticsearch ranks.
	EngineElasticsearch
	// EngineMySQL is the MySQL fallback used without a search engine: no
	// rank, matches in number order.
	EngineMySQL

	EngineAll = EngineSQLite | EngineElasticsearch | EngineMySQL
)

// SearchEngine describes the engine behind a Searcher under test.
type SearchEngine struct {
	Engine Engine
	// RankWindow is, for EngineSQLite, how many of the chat's newest
	// matches are ranked together (sqlite.RankWindow).
	RankWindow int
}

// searchRanked checks the order in which the chat's messages matching q
// come back, across pages.
func searchRanked(t *testing.T, s instachat.Searcher, token string, chat int64, q string, want ...int64) {
	t.Helper()
	if got := searchNumbers(searchAll(t, s, token, chat, q)); !slices.Equal(got, want) {
		t.Errorf("search %q ranked messages %v, want %v", q, got, want)
	}
}

// The cases below put the message that should rank first in the middle, so
// that neither number order nor newest first can pass them by chance.

func testRankWholeWordFirst(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	// The whole word sits in the longest body, so that it is the word,
	// not the length, that ranks it first.
	searchPut(t, put, token, 1, "concatenate", "the cat sat on a mat", "scatter")
	searchRanked(t, s, token, 1, "cat", 2, 3, 1)
}

func testRankMoreOccurrencesFirst(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	// One length, one number of words: only the count of "cat" differs.
	searchPut(t, put, token, 1, "cat dog dog dog", "cat cat cat dog", "cat cat dog dog")
	searchRanked(t, s, token, 1, "cat", 2, 3, 1)
}

func testRankShorterFirst(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, "cat with a very long tail of many more words", "cat", "cat and two words")
	searchRanked(t, s, token, 1, "cat", 2, 3, 1)
}

func testRankTiesNewestFirst(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, "same cat", "same cat", "other", "same cat")
	searchRanked(t, s, token, 1, "cat", 4, 2, 1)
}

func testRankTiesInNumberOrder(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, "same cat", "same cat", "other", "same cat")
	searchRanked(t, s, token, 1, "cat", 1, 2, 4)
}

func testRankNumberOrder(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	// Worst match first, best last: a ranking engine would reverse them.
	searchPut(t, put, token, 1, "concatenate them all", "scatter cat", "cat cat", "cat")
	searchRanked(t, s, token, 1, "cat", 1, 2, 3, 4)
}

// testRankNewestWindowFirst puts window+1 matches: the best of them the
// oldest, the best of the newest window in its middle. The newest window is
// ranked first, so its best leads and the oldest, best of all, comes last,
// alone in the second window; BM25 over every match would put it first,
// newest first would lead with the newest.
func testRankNewestWindowFirst(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error, window int) {
	if window < 2 {
		t.Fatalf("SearchEngine.RankWindow = %d; the sqlite engine ranks windows of the newest matches", window)
	}
	token := instachat.NewToken()
	bodies := make([]string, window+1)
	for i := range bodies {
		bodies[i] = "concatenate " + strings.Repeat("x", i%7)
	}
	bodies[0] = "cat"
	middle := window/2 + 1 // a message of the newest window
	bodies[middle-1] = "a cat concatenate"
	searchPut(t, put, token, 1, bodies...)
	got := searchNumbers(searchAll(t, s, token, 1, "cat"))
	if len(got) != window+1 {
		t.Fatalf("search returned %d messages, want all %d", len(got), window+1)
	}
	if got[0] != int64(middle) || got[window] != 1 {
		t.Errorf("search ranked message %d first and %d last; want %d, the best of the newest %d matches, first, and 1, older, last",
			got[0], got[window], middle, window)
	}
}
