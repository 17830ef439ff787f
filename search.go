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
func MatchesTerm(body, term string) bool {
	lower := strings.ToLower(body)
	if utf8.RuneCountInString(term) >= MinSubstringTerm {
		return strings.Contains(lower, term)
	}
	for i := 0; ; {
		j := strings.Index(lower[i:], term)
		if j < 0 {
			return false
		}
		at := i + j
		if at == 0 {
			return true
		}
		prev, _ := utf8.DecodeLastRuneInString(lower[:at])
		if !unicode.IsLetter(prev) && !unicode.IsDigit(prev) {
			return true
		}
		_, size := utf8.DecodeRuneInString(lower[at:])
		i = at + size
	}
}
