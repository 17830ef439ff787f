package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/instachat/instachat"
)

// TestSearcher checks a Searcher backend, engine naming what ranks its
// results. open returns the searcher and put, which makes each message exist
// with its body — inserting it, or replacing the body of the message with
// its (token, chat, number) — and searchable once put returns. Every
// subtest searches applications of its own.
//
// Which messages match is one rule for every engine. How they rank is not:
// the contract says only "best match first", and each engine judges "best"
// its own way, so each engine's ranking is stated by cases tagged for it
// (search_ranking.go), which run on that engine only.
func TestSearcher(t *testing.T, engine SearchEngine,
	open func(t *testing.T) (instachat.Searcher, func(ctx context.Context, msgs []*instachat.Message) error)) {
	if engine.Engine&EngineAll == 0 {
		t.Fatalf("TestSearcher needs the engine under test, got %+v", engine)
	}
	opened := func(test func(*testing.T, instachat.Searcher, func(context.Context, []*instachat.Message) error)) func(*testing.T) {
		return func(t *testing.T) { s, put := open(t); test(t, s, put) }
	}
	for _, c := range []struct {
		name    string
		engines Engine
		test    func(*testing.T, instachat.Searcher, func(context.Context, []*instachat.Message) error)
	}{
		{"a long term matches any substring", EngineAll, testSearchSubstring},
		{"a short term matches the start of a word", EngineAll, testSearchShortTermsMatchWordStarts},
		{"matching ignores case beyond ASCII", EngineAll, testSearchCaseInsensitiveBeyondASCII},
		{"every term must match", EngineAll, testSearchEveryTermMustMatch},
		{"a search sees only its chat", EngineAll, testSearchScopedToOneChat},
		{"an edit replaces what a message is found by", EngineAll, testSearchEdits},
		{"results carry the message as stored", EngineAll, testSearchResultsCarryTheMessage},
		{"pages cut one order, each match once", EngineAll, testSearchPagination},
		{"matches exactly what MatchesTerm matches", EngineAll, testSearchAgreesWithMatchesTerm},
		{"unicode case folding", EngineAll, testUnicodeCaseFolding},

		// Ranking: BM25, in windows of the newest matches (sqlite) or over
		// the index (Elasticsearch).
		{"ranks a whole word above a substring", EngineSQLite | EngineElasticsearch, testRankWholeWordFirst},
		{"ranks more occurrences higher", EngineSQLite | EngineElasticsearch, testRankMoreOccurrencesFirst},
		{"ranks a shorter body higher", EngineSQLite | EngineElasticsearch, testRankShorterFirst},
		{"ranks equal scores newest first", EngineSQLite, testRankTiesNewestFirst},
		{"ranks the newest window of matches before older ones", EngineSQLite,
			func(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
				testRankNewestWindowFirst(t, s, put, engine.RankWindow)
			}},
		{"ranks equal scores in number order", EngineElasticsearch, testRankTiesInNumberOrder},
		// The MySQL fallback computes no rank.
		{"returns matches in number order, however well they match", EngineMySQL, testRankNumberOrder},
	} {
		if c.engines&engine.Engine != 0 {
			t.Run(c.name, opened(c.test))
		}
	}
}

func testSearchSubstring(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, "Supercalifragilistic", "super", "fragile califs")
	searchWant(t, s, token, 1, "califrag", 1)
	searchWant(t, s, token, 1, "ragil", 1, 3)
	searchWant(t, s, token, 1, "SUPER", 1, 2)
	searchWant(t, s, token, 1, "istic", 1)
	searchWant(t, s, token, 1, "calico")
}

func testSearchShortTermsMatchWordStarts(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, "hi there", "say hi", "this", "Hi-five", "chi", "(hi)", "I agree")
	searchWant(t, s, token, 1, "hi", 1, 2, 4, 6)
	searchWant(t, s, token, 1, "th", 1, 3)
	searchWant(t, s, token, 1, "i", 7)
	searchWant(t, s, token, 1, "gr")
}

func testSearchCaseInsensitiveBeyondASCII(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, "ÉCOLE normale", "une école", "ecole sans accent", "NAÏVE", "naïve")
	searchWant(t, s, token, 1, "ÉCOLE", 1, 2)
	searchWant(t, s, token, 1, "école", 1, 2)
	searchWant(t, s, token, 1, "ecole", 3)
	searchWant(t, s, token, 1, "É", 1, 2)
	searchWant(t, s, token, 1, "éC", 1, 2)
	searchWant(t, s, token, 1, "aïv", 4, 5)
}

func testSearchEveryTermMustMatch(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, "red apple pie", "green apple", "red car", "apple, red")
	searchWant(t, s, token, 1, "red apple", 1, 4)
	searchWant(t, s, token, 1, "apple", 1, 2, 4)
	searchWant(t, s, token, 1, "red car apple")
	searchWant(t, s, token, 1, "re app", 1, 4)
	searchWant(t, s, token, 1, "gr apple", 2)
	searchWant(t, s, token, 1, "r c", 3)
}

func testSearchScopedToOneChat(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token, other := instachat.NewToken(), instachat.NewToken()
	searchPut(t, put, token, 1, "shared words")
	searchPut(t, put, token, 2, "shared words")
	searchPut(t, put, other, 1, "shared words")
	for _, q := range []string{"shared", "sh", "sh words"} {
		got := searchAll(t, s, token, 1, q)
		if len(got) != 1 || got[0].Token != token || got[0].Chat != 1 {
			t.Errorf("search %q in one chat returned %s; want only that chat's message", q, searchShow(got))
		}
	}
}

func testSearchEdits(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	msgs := searchPut(t, put, token, 1, "alpha bravo", "alpha charlie")
	edited := *msgs[0]
	edited.Body, edited.UpdatedAt = "delta echo", storeTime(9)
	if err := put(t.Context(), []*instachat.Message{&edited}); err != nil {
		t.Fatalf("put an edit: %v", err)
	}
	searchWant(t, s, token, 1, "bravo")
	searchWant(t, s, token, 1, "br")
	searchWant(t, s, token, 1, "alpha", 2)
	searchWant(t, s, token, 1, "delta", 1)
	searchWant(t, s, token, 1, "ec", 1)
	if got := searchAll(t, s, token, 1, "echo"); len(got) != 1 || !sameMessage(got[0], &edited) {
		t.Errorf("search for the edited text returned %s; want %+v", searchShow(got), edited)
	}
}

func testSearchResultsCarryTheMessage(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	msgs := searchPut(t, put, token, 3, storeText...)
	for i, m := range msgs {
		q := strings.Fields(m.Body)[0]
		var found bool
		for _, r := range searchAll(t, s, token, 3, q) {
			found = found || sameMessage(r, m)
		}
		if !found {
			t.Errorf("search %q did not return message %d as put: %+v", q, i+1, *m)
		}
	}
}

func testSearchPagination(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	bodies := make([]string, 25)
	for i := range bodies {
		bodies[i] = strings.Repeat("needle ", 1+i%4) + strings.Repeat("hay ", 1+i%5)
	}
	searchPut(t, put, token, 1, bodies...)
	for _, q := range []string{"needle", "ne", "needle ha"} {
		all := searchPage(t, s, token, 1, q, 0, 100)
		var paged []*instachat.Message
		for offset := 0; offset < 35; offset += 7 {
			page := searchPage(t, s, token, 1, q, offset, 7)
			if want := min(7, max(0, 25-offset)); len(page) != want {
				t.Fatalf("search %q, offset %d, limit 7: %d results, want %d", q, offset, len(page), want)
			}
			paged = append(paged, page...)
		}
		if got, want := searchNumbers(paged), searchNumbers(all); !slices.Equal(got, want) || len(want) != 25 {
			t.Errorf("search %q page by page returned %v; in one page %v; want the same 25", q, got, want)
		}
	}
}

func testSearchAgreesWithMatchesTerm(t *testing.T, s instachat.Searcher, put func(context.Context, []*instachat.Message) error) {
	token := instachat.NewToken()
	vocabulary := []string{"alpha", "Alphabet", "beta", "betamax", "ÉCOLE", "école", "ecole", "hi", "hit", "this",
		"chi", "say", "Supercalifragilistic", "naïve", "NAÏVE", "x1", "über", "Straße", "data", "metadata", "日本語"}
	separators := []string{" ", "  ", ", ", "-", ". ", "!", "\n"}
	rng := rand.New(rand.NewPCG(1, 2))
	bodies := make([]string, 200)
	for i := range bodies {
		var b strings.Builder
		for w := range 1 + rng.IntN(6) {
			if w > 0 {
				b.WriteString(separators[rng.IntN(len(separators))])
			}
			word := vocabulary[rng.IntN(len(vocabulary))]
			if rng.IntN(4) == 0 {
				word = strings.ToUpper(word)
			}
			b.WriteString(word)
		}
		bodies[i] = b.String()
	}
	searchPut(t, put, token, 1, bodies...)
	for _, q := range []string{"alpha", "pha", "a", "al", "ÉCO", "é", "hi", "th", "this", "califrag", "ta",
		"hi alpha", "be ta", "école naïve", "ï", "x", "1", "ü", "straße", "本語", "data me", "nothing"} {
		terms, err := instachat.ParseSearchTerms(q)
		if err != nil {
			t.Fatal(err)
		}
		var want []int64
		for i, b := range bodies {
			if !slices.ContainsFunc(terms, func(term string) bool { return !instachat.MatchesTerm(b, term) }) {
				want = append(want, int64(i+1))
			}
		}
		got := searchNumbers(searchAll(t, s, token, 1, q))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("search %q returned %d messages %v\nMatchesTerm says %d: %v", q, len(got), got, len(want), want)
		}
	}
}

// searchPut puts one message per body, numbered from 1, and returns them.
func searchPut(t *testing.T, put func(context.Context, []*instachat.Message) error, token string, chat int64, bodies ...string) []*instachat.Message {
	t.Helper()
	msgs := make([]*instachat.Message, len(bodies))
	for i, b := range bodies {
		msgs[i] = &instachat.Message{Token: token, Chat: chat, Number: int64(i + 1), Body: b, CreatedAt: storeTime(i), UpdatedAt: storeTime(i + 1)}
	}
	if err := put(t.Context(), msgs); err != nil {
		t.Fatalf("put: %v", err)
	}
	return msgs
}

func searchPage(t *testing.T, s instachat.Searcher, token string, chat int64, q string, offset, limit int) []*instachat.Message {
	t.Helper()
	terms, err := instachat.ParseSearchTerms(q)
	if err != nil {
		t.Fatalf("ParseSearchTerms(%q): %v", q, err)
	}
	got, err := s.SearchMessages(t.Context(), instachat.SearchQuery{Token: token, Chat: chat, Terms: terms, Offset: offset, Limit: limit})
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	if len(got) > limit {
		t.Fatalf("search %q with limit %d returned %d results", q, limit, len(got))
	}
	return got
}

// searchAll returns every result, page by page, and fails on a message
// returned twice.
func searchAll(t *testing.T, s instachat.Searcher, token string, chat int64, q string) []*instachat.Message {
	t.Helper()
	const limit = 10
	var all []*instachat.Message
	type key struct {
		token        string
		chat, number int64
	}
	seen := map[key]bool{}
	for offset := 0; ; offset += limit {
		page := searchPage(t, s, token, chat, q, offset, limit)
		for _, m := range page {
			k := key{m.Token, m.Chat, m.Number}
			if seen[k] {
				t.Fatalf("search %q returned %+v twice, the second time at offset %d", q, k, offset)
			}
			seen[k] = true
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
	}
}

// searchWant checks which messages of the chat match q, ignoring order.
func searchWant(t *testing.T, s instachat.Searcher, token string, chat int64, q string, want ...int64) {
	t.Helper()
	got := searchNumbers(searchAll(t, s, token, chat, q))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("search %q returned messages %v, want %v", q, got, want)
	}
}

func searchNumbers(msgs []*instachat.Message) []int64 {
	n := make([]int64, len(msgs))
	for i, m := range msgs {
		n[i] = m.Number
	}
	return n
}

func searchShow(msgs []*instachat.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "[%s chat %d #%d %q] ", m.Token, m.Chat, m.Number, m.Body)
	}
	return b.String()
}

// PutThroughStore is TestSearcher's put through a store, for a searcher
// that loads its results from it (package search): new messages go in
// through ApplyCreates, with their application and chat rows when missing,
// new bodies of existing ones through UpdateMessage; then index, when not
// nil, is given them too (a search engine apart from the store).
func PutThroughStore(s instachat.Store, index func(context.Context, []*instachat.Message) error) func(context.Context, []*instachat.Message) error {
	return func(ctx context.Context, msgs []*instachat.Message) error {
		type chat struct {
			token  string
			number int64
		}
		var creates []instachat.Create
		seen := map[chat]bool{}
		for _, m := range msgs {
			if c := (chat{m.Token, m.Chat}); !seen[c] {
				seen[c] = true
				app := &instachat.Application{Token: m.Token, Name: "search", CreatedAt: m.CreatedAt, UpdatedAt: m.CreatedAt}
				if err := s.CreateApplication(ctx, app); err != nil && instachat.ErrorCode(err) != instachat.ECONFLICT {
					return err
				}
				creates = append(creates, instachat.Create{Chat: &instachat.Chat{Token: m.Token, Number: m.Chat, CreatedAt: m.CreatedAt, UpdatedAt: m.CreatedAt}})
			}
		}
		for _, m := range msgs {
			creates = append(creates, instachat.Create{Message: m})
		}
		if err := s.ApplyCreates(ctx, creates); err != nil {
			return err
		}
		for _, m := range msgs {
			if _, err := s.UpdateMessage(ctx, m.Token, m.Chat, m.Number, m.Body, m.UpdatedAt); err != nil {
				return err
			}
		}
		if index != nil {
			return index(ctx, msgs)
		}
		return nil
	}
}
