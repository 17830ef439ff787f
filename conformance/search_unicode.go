package conformance

import (
	"context"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/instachat/instachat"
)

// unicodeBodies are the messages of testUnicodeCaseFolding, numbered from 1.
// Runes that a Unicode normalization would change (the Kelvin sign,
// combining marks) are escaped, so an editor cannot quietly replace them.
var unicodeBodies = []string{
	"İstanbul Ankara",                // 1: Turkish dotted capital I; Go lowers it to i, one byte shorter
	"ISTANBUL",                       // 2
	"ıstanbul",                       // 3: Turkish dotless ı, its own lower case
	"I\u0307stanbul",                 // 4: I and a combining dot above: lowers to i, then the dot
	"ΟΔΟΣ road",                      // 5: capital Σ lowers to σ
	"οδος",                           // 6: final ς, which Go does not fold into σ
	"Stra\u017f\u017fe",              // 7: long s ſ, its own lower case
	"STRASSE",                        // 8
	"\u00b5-metal",                   // 9: the micro sign µ, its own lower case
	"\u039c-METAL",                   // 10: Greek capital Μ, lowers to μ (U+03BC)
	"\u13a0\u13a1\u13a2",             // 11: Cherokee capitals, which lower to U+AB70…
	"\uab70\uab71\uab72",             // 12: Cherokee small letters
	"\u1c90\u1c91\u1c92",             // 13: Georgian Mtavruli, which lower to Mkhedruli
	"\u10d0\u10d1\u10d2",             // 14: Georgian Mkhedruli
	"E\u0301COLE",                    // 15: É decomposed: E and a combining acute accent
	"\u00e9cole",                     // 16: é precomposed
	"\uff21\uff22\uff23",             // 17: fullwidth ＡＢＣ, which lower to fullwidth ａｂｃ
	"abc",                            // 18
	"\u212aelvin",                    // 19: the Kelvin sign, which lowers to ASCII k
	"\u023a\u023e tax",               // 20: Ⱥ and Ⱦ lower to ⱥ and ⱦ, one byte longer each
	"GRO\u1e9e",                      // 21: capital ẞ lowers to ß, one byte shorter
	"\U00010400\U00010401",           // 22: Deseret capitals, outside the Basic Multilingual Plane
	"\U0001e900\U0001e901\U0001e902", // 23: Adlam capitals
	"\u01c5emal",                     // 24: titlecase ǅ lowers to ǆ, one letter, not d and ž
}

// unicodeWant spells out what MatchesTerm answers for key queries, so that
// the table cannot pass by agreeing with an oracle that matches nothing, and
// a change to the rule shows here first.
var unicodeWant = []struct {
	q    string
	want []int64
}{
	{"İstanbul", []int64{1, 2}}, // parsed as "istanbul"
	{"istanbul", []int64{1, 2}},
	{"ISTANBUL", []int64{1, 2}},
	{"ıstanbul", []int64{3}},
	{"İs", []int64{1, 2}}, // a short term: the start of a word
	{"ı", []int64{3}},
	{"i\u0307st", []int64{4}},
	{"ΟΔΟΣ", []int64{5}}, // parsed as "οδοσ"
	{"οδοσ", []int64{5}},
	{"οδος", []int64{6}},
	{"ΟΔΟς", []int64{6}},
	{"stra\u017f\u017fe", []int64{7}},
	{"STRA\u017f\u017fE", []int64{7}},
	{"strasse", []int64{8}},
	{"\u00b5-metal", []int64{9}},
	{"\u03bc-metal", []int64{10}},
	{"\u039c-METAL", []int64{10}},
	{"\u13a0\u13a1\u13a2", []int64{11, 12}},
	{"\uab70\uab71\uab72", []int64{11, 12}},
	{"\u13a0", []int64{11, 12}},
	{"\uab70", []int64{11, 12}},
	{"\u1c90\u1c91\u1c92", []int64{13, 14}},
	{"\u10d0\u10d1\u10d2", []int64{13, 14}},
	{"\u1c90", []int64{13, 14}},
	{"\u00e9cole", []int64{16}},
	{"e\u0301cole", []int64{15}},
	{"E\u0301", []int64{15}},
	{"co", []int64{15}}, // after a combining mark, which is not a letter
	{"\uff21\uff22\uff23", []int64{17}},
	{"\uff41\uff42\uff43", []int64{17}},
	{"abc", []int64{18}},
	{"ABC", []int64{18}},
	{"kelvin", []int64{19}},
	{"\u212aELVIN", []int64{19}},
	{"\u2c65\u2c66", []int64{20}},
	{"\u023a\u023e TAX", []int64{20}},
	{"gro\u00df", []int64{21}},
	{"GRO\u1e9e", []int64{21}},
	{"\U00010428\U00010429", []int64{22}},
	{"\U00010400\U00010401", []int64{22}},
	{"\U0001e922\U0001e923\U0001e924", []int64{23}},
	{"\u01c4EMAL", []int64{24}},
	{"\u01c6e", []int64{24}},
	{"gross", nil},
	{"d\u017eemal", nil},
	{"\u0130stanbul", []int64{1, 2}},
}

// testUnicodeCaseFolding holds a backend to MatchesTerm's case rule beyond
// ASCII and Latin-1: Go's lower case (unicode.ToLower, rune by rune, no
// normalization, no special casing), whatever the engine's own case folding
// says. It runs the spelled-out queries above, then every word of every body
// in its own case, lower case, upper case and with each rune swapped for
// each of its other case forms (unicode.SimpleFold) where one is not ASCII,
// and the first one and
// two letters of each (the short-term rule), each against MatchesTerm. Every
// backend must pass it; sqlite and MySQL therefore answer alike.
//
// Elasticsearch runs this suite only against a live cluster
// (INSTACHAT_TEST_ELASTICSEARCH_URL); its recorded answers replay fixed
// searches and cannot say what its analyzers make of these bodies, so on
// recorded answers this case is not run for it.
func testUnicodeCaseFolding(t *testing.T, s instachat.Searcher, put func(ctx context.Context, msgs []*instachat.Message) error) {
	token := instachat.NewToken()
	searchPut(t, put, token, 1, unicodeBodies...)

	oracle := func(bodies []string, q string) []int64 {
		t.Helper()
		terms, err := instachat.ParseSearchTerms(q)
		if err != nil {
			t.Fatalf("ParseSearchTerms(%q): %v", q, err)
		}
		var want []int64
		for i, b := range bodies {
			if !slices.ContainsFunc(terms, func(term string) bool { return !instachat.MatchesTerm(b, term) }) {
				want = append(want, int64(i+1))
			}
		}
		return want
	}
	for _, c := range unicodeWant {
		if got := oracle(unicodeBodies, c.q); !slices.Equal(got, c.want) {
			t.Errorf("the table says %q matches %v; MatchesTerm says %v", c.q, c.want, got)
		}
		searchWant(t, s, token, 1, c.q, c.want...)
	}

	asked := map[string]bool{}
	for _, c := range unicodeWant {
		asked[c.q] = true
	}
	var queries []string
	ask := func(q string) {
		if !asked[q] && strings.TrimSpace(q) != "" {
			asked[q] = true
			queries = append(queries, q)
		}
	}
	for _, b := range unicodeBodies {
		for _, w := range strings.Fields(b) {
			ask(w)
			ask(strings.ToLower(w))
			ask(strings.ToUpper(w))
			runes := []rune(w)
			for i, r := range runes {
				if !beyondASCII(r) {
					continue // ASCII case is checked elsewhere
				}
				for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
					swapped := slices.Clone(runes)
					swapped[i] = f
					ask(string(swapped))
				}
			}
			for n := 1; n <= 2 && n < len(runes); n++ {
				ask(string(runes[:n]))
				ask(strings.ToUpper(string(runes[:n])))
			}
		}
	}
	for _, q := range queries {
		searchWant(t, s, token, 1, q, oracle(unicodeBodies, q)...)
	}

	// An edit replaces what the old body matched with what the new one does.
	msgs := searchPut(t, put, token, 2, "İstanbul", "\u13a0\u13a1\u13a2")
	edited := []*instachat.Message{{Token: token, Chat: 2, Number: 1, Body: "ΟΔΟΣ", CreatedAt: msgs[0].CreatedAt, UpdatedAt: storeTime(9)},
		{Token: token, Chat: 2, Number: 2, Body: "\u1c90\u1c91\u1c92", CreatedAt: msgs[1].CreatedAt, UpdatedAt: storeTime(9)}}
	if err := put(t.Context(), edited); err != nil {
		t.Fatalf("put an edit: %v", err)
	}
	for _, c := range []struct {
		q    string
		want []int64
	}{
		{"istanbul", nil}, {"İs", nil}, {"οδοσ", []int64{1}}, {"ΟΔΟΣ", []int64{1}}, {"οδος", nil},
		{"\uab70\uab71\uab72", nil}, {"\u10d0\u10d1\u10d2", []int64{2}}, {"\u1c90", []int64{2}},
	} {
		if got := oracle([]string{edited[0].Body, edited[1].Body}, c.q); !slices.Equal(got, c.want) {
			t.Errorf("the table says %q matches %v after the edits; MatchesTerm says %v", c.q, c.want, got)
		}
		searchWant(t, s, token, 2, c.q, c.want...)
	}
}

// beyondASCII reports whether r or one of its other case forms is not ASCII,
// as s is (ſ) and k (the Kelvin sign).
func beyondASCII(r rune) bool {
	for f := unicode.SimpleFold(r); ; f = unicode.SimpleFold(f) {
		if f > unicode.MaxASCII {
			return true
		}
		if f == r {
			return false
		}
	}
}
