package instachat_test

import (
	"strings"
	"testing"

	"github.com/instachat/instachat"
)

func TestTermOccurrences(t *testing.T) {
	for _, tc := range []struct {
		body, term     string
		matches, words int
	}{
		{"concatenate cat", "cat", 2, 1},
		{"cat, cat! (cat)", "cat", 3, 3},
		{"aaaa", "aaa", 2, 0}, // overlapping, as FTS5 counts
		{"hi hiking chi this", "hi", 2, 1},
		{"x1 x 1x", "x", 2, 1},
		{"école, l'école écoles", "école", 3, 2},
		{"日本語の日本", "日本", 1, 0},
		{"nothing", "cat", 0, 0},
	} {
		if m, w := instachat.TermOccurrences(tc.body, tc.term); m != tc.matches || w != tc.words {
			t.Errorf("TermOccurrences(%q, %q) = %d, %d; want %d, %d", tc.body, tc.term, m, w, tc.matches, tc.words)
		}
	}
}

// TestTermOccurrencesAgreeWithMatchesTerm: a message matches a term exactly
// when the ranking counts an occurrence of it. MatchesTerm decides short
// terms through TermOccurrences, so what this checks is the long-term rule
// (a substring, by strings.Contains) and that whole words never outnumber
// occurrences.
func TestTermOccurrencesAgreeWithMatchesTerm(t *testing.T) {
	bodies := []string{"hi there", "say hi", "this", "Hi-five", "chi", "(hi)", "ÉCOLE normale", "une école", "naïve",
		"x1 y2", "Straße", "日本語", "data metadata", "aaaa", "", "a", "hi\x00hi"}
	terms := []string{"hi", "h", "i", "th", "is", "école", "é", "éc", "aïv", "x", "1", "2", "straße", "本語", "日", "data", "ta", "aa", "aaa", "a"}
	for _, b := range bodies {
		for _, term := range terms {
			m, w := instachat.TermOccurrences(strings.ToLower(b), term)
			if (m > 0) != instachat.MatchesTerm(b, term) || w > m {
				t.Errorf("TermOccurrences(%q, %q) = %d, %d; MatchesTerm says %v", b, term, m, w, instachat.MatchesTerm(b, term))
			}
		}
	}
}

// TestMatchesAllIsEveryTerm: MatchesAll is MatchesTerm of each term, and
// nothing for no terms.
func TestMatchesAllIsEveryTerm(t *testing.T) {
	for _, c := range []struct {
		body  string
		terms []string
		want  bool
	}{
		{"İstanbul Ankara", []string{"istanbul", "ank"}, true},
		{"İstanbul Ankara", []string{"istanbul", "kara"}, true}, // kara: a substring, 4 runes
		{"İstanbul Ankara", []string{"istanbul", "nk"}, false},  // nk: short, not at a word start
		{"hello world", []string{"hello", "worlds"}, false},
		{"hello world", nil, true},
	} {
		if got := instachat.MatchesAll(c.body, c.terms); got != c.want {
			t.Errorf("MatchesAll(%q, %q) = %v, want %v", c.body, c.terms, got, c.want)
		}
		each := true
		for _, term := range c.terms {
			each = each && instachat.MatchesTerm(c.body, term)
		}
		if each != c.want {
			t.Errorf("MatchesTerm of each of %q in %q: %v, want %v", c.terms, c.body, each, c.want)
		}
	}
}
