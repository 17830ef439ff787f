package instachat_test

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/instachat/instachat"
)

// Fuzz targets for the parsers that take client text outside a body:
// search queries and cursors. Their seed corpora are in testdata/fuzz;
// .ci/run fuzzes each for a few seconds.

// isASCII reports whether s is 7-bit.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// matchesTermASCII is the reference for MatchesTerm on ASCII text, written
// from the contract rather than from the code: a term of MinSubstringTerm
// characters or more matches anywhere in the lower-cased body, a shorter one
// only where no letter or digit precedes it.
func matchesTermASCII(body, term string) bool {
	body = strings.ToLower(body)
	if len(term) >= instachat.MinSubstringTerm {
		return strings.Contains(body, term)
	}
	for i := 0; i+len(term) <= len(body); i++ {
		if body[i:i+len(term)] != term {
			continue
		}
		if i == 0 {
			return true
		}
		if c := body[i-1]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return true
		}
	}
	return false
}

// parseTerms is the reference for ParseSearchTerms: the runs of q between
// white space and NUL, lower-cased, if q is valid UTF-8 of at most
// MaxSearchQueryChars characters with 1 to MaxSearchTerms of them.
func parseTerms(q string) ([]string, bool) {
	if !utf8.ValidString(q) || utf8.RuneCountInString(q) > instachat.MaxSearchQueryChars {
		return nil, false
	}
	var terms []string
	var term []rune
	for _, r := range q + " " {
		if !unicode.IsSpace(r) && r != 0 {
			term = append(term, unicode.ToLower(r))
		} else if len(term) > 0 {
			terms, term = append(terms, string(term)), nil
		}
	}
	return terms, len(terms) > 0 && len(terms) <= instachat.MaxSearchTerms
}

// FuzzSearchTerms parses q as a search query and matches its terms, and q
// itself lower-cased, against body. Parsing never panics and yields 1 to
// MaxSearchTerms non-empty, lower-cased terms, those parseTerms finds, or
// EBADREQUEST; MatchesTerm agrees with matchesTermASCII on ASCII text, and
// on any text matches only a body that holds the term.
func FuzzSearchTerms(f *testing.F) {
	for _, q := range []string{"hello", "HEL", "he", "a b", "", " \t\n", "\x00", "a\x00b", "\xff", "naïve", "İ", "ǅ", "ẞ",
		"\u00a0x\u2003y\u3000", strings.Repeat("a ", 16), strings.Repeat("a ", 17), strings.Repeat("é", 256), strings.Repeat("é", 257)} {
		f.Add(q, "Hello world, say hello: help-wanted 42he")
	}
	for _, body := range []string{"", "he", "the", "x-he", "4he", "_he", "HE", "hEllo", "héllo", "ÀHE", "İstanbul", "ǆ", "\xffhe"} {
		f.Add("he", body)
	}
	f.Fuzz(func(t *testing.T, q, body string) {
		terms, err := instachat.ParseSearchTerms(q)
		want, ok := parseTerms(q)
		if (err == nil) != ok || err != nil && instachat.ErrorCode(err) != instachat.EBADREQUEST || err == nil && !slices.Equal(terms, want) {
			t.Fatalf("ParseSearchTerms(%q) = %q, %v; want %q, ok %v", q, terms, err, want, ok)
		}
		for _, term := range terms {
			if term == "" || term != strings.ToLower(term) {
				t.Fatalf("ParseSearchTerms(%q) has term %q", q, term)
			}
		}

		for _, term := range append(terms, strings.ToLower(q)) {
			if term == "" {
				continue
			}
			got := instachat.MatchesTerm(body, term)
			if isASCII(body) && isASCII(term) {
				if want := matchesTermASCII(body, term); got != want {
					t.Fatalf("MatchesTerm(%q, %q) = %v, want %v", body, term, got, want)
				}
			}
			if got && !strings.Contains(strings.ToLower(body), term) {
				t.Fatalf("MatchesTerm(%q, %q) without the term in the body", body, term)
			}
		}
	})
}

// FuzzCursors round-trips numbers and tokens through their cursors, and
// decodes arbitrary cursors: never a panic, only EBADREQUEST, never a
// negative number or a malformed token, and no cursor of one kind passes
// for the other.
func FuzzCursors(f *testing.F) {
	f.Add(int64(0), "AAAAAAAAAAAAAAAAAAAAAA", "")
	f.Add(int64(1), "fuzzFUZZfuzzFUZZfuzz_-", instachat.EncodeCursor(42))
	f.Add(int64(1<<63-1), "short", instachat.EncodeTokenCursor("AAAAAAAAAAAAAAAAAAAAAA"))
	f.Add(int64(-1), "", instachat.EncodeCursor(-1))
	for _, s := range []string{"x", "n", "bg", "bjE", "bjF", "bi0x", "bisx", "bjAx", "=", "bjE=", "dA", "dEFB",
		"\xff", "bjk5OTk5OTk5OTk5OTk5OTk5OTk5OQ"} {
		f.Add(int64(7), "", s)
	}
	f.Fuzz(func(t *testing.T, n int64, token, s string) {
		if n >= 0 {
			c := instachat.EncodeCursor(n)
			if got, err := instachat.DecodeCursor(c); err != nil || got != n {
				t.Fatalf("DecodeCursor(EncodeCursor(%d)) = %d, %v", n, got, err)
			}
			if _, err := instachat.DecodeTokenCursor(c); err == nil {
				t.Fatalf("number cursor %q decodes as a token cursor", c)
			}
		}
		if instachat.ValidToken(token) {
			c := instachat.EncodeTokenCursor(token)
			if got, err := instachat.DecodeTokenCursor(c); err != nil || got != token {
				t.Fatalf("DecodeTokenCursor(EncodeTokenCursor(%q)) = %q, %v", token, got, err)
			}
			if _, err := instachat.DecodeCursor(c); err == nil {
				t.Fatalf("token cursor %q decodes as a number cursor", c)
			}
		}

		got, err := instachat.DecodeCursor(s)
		switch {
		case err != nil && instachat.ErrorCode(err) != instachat.EBADREQUEST:
			t.Fatalf("DecodeCursor(%q): %v, want %s", s, err, instachat.EBADREQUEST)
		case err == nil && (got < 0 || s == "" && got != 0):
			t.Fatalf("DecodeCursor(%q) = %d", s, got)
		}
		tok, err := instachat.DecodeTokenCursor(s)
		switch {
		case err != nil && instachat.ErrorCode(err) != instachat.EBADREQUEST:
			t.Fatalf("DecodeTokenCursor(%q): %v, want %s", s, err, instachat.EBADREQUEST)
		case err == nil && (s == "") != (tok == "") || tok != "" && !instachat.ValidToken(tok):
			t.Fatalf("DecodeTokenCursor(%q) = %q", s, tok)
		}
	})
}
