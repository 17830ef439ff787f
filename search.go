package instachat

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MinSubstringTerm is the shortest term, in characters, that matches anywhere
// inside a body; shorter terms match the start of a word only.
const MinSubstringTerm = 3

// MaxSearchTerms and MaxSearchQueryChars bound a query.
const (
	MaxSearchTerms      = 16
	MaxSearchQueryChars = 256
)

// SearchQuery asks for messages of one chat matching every term.
type SearchQuery struct {
	Token  string
	Chat   int64
	Terms  []string // lower-cased, non-empty, see ParseSearchTerms
	Offset int      // results to skip (search pages by rank, not by key)
	Limit  int
}

// ParseSearchTerms splits a query on white space into lower-cased terms.
// It returns EBADREQUEST for an empty or oversized query.
func ParseSearchTerms(q string) ([]string, error) {
	if !utf8.ValidString(q) {
		return nil, Errorf(EBADREQUEST, "q must be valid UTF-8")
	}
	if utf8.RuneCountInString(q) > MaxSearchQueryChars {
		return nil, Errorf(EBADREQUEST, "q must be at most %d characters", MaxSearchQueryChars)
	}
	terms := strings.FieldsFunc(strings.ToLower(q), func(r rune) bool { return unicode.IsSpace(r) || r == 0 })
	if len(terms) == 0 {
		return nil, Errorf(EBADREQUEST, "q must contain at least one term")
	}
	if len(terms) > MaxSearchTerms {
		return nil, Errorf(EBADREQUEST, "q must have at most %d terms", MaxSearchTerms)
	}
	return terms, nil
}

// MatchesTerm reports whether body matches one lower-cased term by the rules
// of Searcher: a substring for long terms, a word prefix for short ones.
// Backends that cannot express the short-term rule in their engine use it as
// a filter, and the conformance suite uses it as the oracle.
func MatchesTerm(body, term string) bool { return matchesLower(strings.ToLower(body), term) }

// MatchesAll reports whether body matches every lower-cased term by the
// rule of MatchesTerm: whether a search of those terms finds it.
func MatchesAll(body string, terms []string) bool {
	lower := strings.ToLower(body)
	for _, term := range terms {
		if !matchesLower(lower, term) {
			return false
		}
	}
	return true
}

// matchesLower is MatchesTerm of an already lower-cased body.
func matchesLower(lower, term string) bool {
	if utf8.RuneCountInString(term) >= MinSubstringTerm {
		return strings.Contains(lower, term)
	}
	matches, _ := TermOccurrences(lower, term)
	return matches > 0 || term == "" // "" starts every body
}

// TermOccurrences counts where the lower-cased term occurs in lower, a
// lower-cased body, by the rule of MatchesTerm — anywhere for a term of
// MinSubstringTerm characters or more, at the start of a word for a
// shorter one — and how many of those occurrences are whole words, for
// backends that rank in Go. Occurrences may overlap, as FTS5 counts a
// phrase's.
func TermOccurrences(lower, term string) (matches, words int) {
	if term == "" {
		return 0, 0
	}
	long := utf8.RuneCountInString(term) >= MinSubstringTerm
	for i := 0; ; {
		j := strings.Index(lower[i:], term)
		if j < 0 {
			return matches, words
		}
		at, end := i+j, i+j+len(term)
		prev, _ := utf8.DecodeLastRuneInString(lower[:at])
		next, _ := utf8.DecodeRuneInString(lower[end:])
		startsWord := at == 0 || !wordRune(prev)
		if long || startsWord {
			matches++
			if startsWord && (end == len(lower) || !wordRune(next)) {
				words++
			}
		}
		_, size := utf8.DecodeRuneInString(lower[at:])
		i = at + size
	}
}

// wordRune reports whether r belongs to a word, as search draws words.
func wordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
