package elasticsearch

import (
	"maps"
	"slices"
)

type object = map[string]any

// notWord is one character that is neither a letter nor a decimal digit —
// the classes of unicode.IsLetter and unicode.IsDigit. Java's matcher may
// try a match in the middle of a surrogate pair, where the lone second half
// (\p{Cs}) would pass for a separator and cut a letter outside the Basic
// Multilingual Plane in two; excluding it keeps such a letter a letter,
// while a supplementary symbol (an emoji), read whole from its first half,
// stays a separator.
const notWord = `[^\p{L}\p{Nd}\p{Cs}]`

// settings define the analyzers of the mapping's fields; see the package
// documentation for why each exists.
var settings = object{
	"analysis": object{
		"char_filter": object{
			// A separator before the body makes its first character a word
			// start like any other, for the tokenizer below, which can only
			// see word starts after a separator.
			"instachat_lead": object{"type": "pattern_replace", "pattern": "^", "replacement": " "},
		},
		"tokenizer": object{
			// No token_chars: spaces and punctuation are kept, so a term
			// like "lo," matches "hello, world".
			"instachat_trigram": object{"type": "ngram", "min_gram": 3, "max_gram": 3},
			// Each match is one separator; the group, captured in a
			// look-ahead so that matches do not consume it, is the one or
			// two characters after it. The next match starts right after
			// the separator, so runs of separators are each seen.
			"instachat_word_start": object{"type": "pattern", "pattern": notWord + `(?=(.{1,2}))`, "group": 1},
			"instachat_word":       object{"type": "pattern", "pattern": notWord + "+"},
		},
		"filter": object{
			"instachat_prefix": object{"type": "edge_ngram", "min_gram": 1, "max_gram": 2},
		},
		"analyzer": object{
			"instachat_trigram": object{"type": "custom", "tokenizer": "instachat_trigram", "filter": []string{"lowercase"}},
			"instachat_word_start": object{"type": "custom", "char_filter": []string{"instachat_lead"},
				"tokenizer": "instachat_word_start", "filter": []string{"lowercase", "instachat_prefix"}},
			"instachat_word": object{"type": "custom", "tokenizer": "instachat_word", "filter": []string{"lowercase"}},
		},
	},
}

// mappings is explicit and strict, so a document with a stray field fails
// loudly instead of growing the mapping. It holds only strings, so that
// mismatch can compare it with the mapping Elasticsearch returns.
var mappings = object{
	"dynamic": "strict",
	"properties": object{
		"token":  object{"type": "keyword"},
		"chat":   object{"type": "long"},
		"number": object{"type": "long"},
		"body": object{"type": "text", "analyzer": "instachat_word", "fields": object{
			// The search analyzer defaults to the index analyzer: a query
			// term is cut into trigrams too, and match_phrase puts them in
			// a row.
			"ngram": object{"type": "text", "analyzer": "instachat_trigram"},
			// Only term queries read it, so positions would be waste.
			"start": object{"type": "text", "analyzer": "instachat_word_start", "index_options": "freqs"},
		}},
		// Written with microseconds; the date type keeps milliseconds for
		// range queries, and _source keeps the microseconds for results.
		"created_at": object{"type": "date"},
		"updated_at": object{"type": "date"},
	},
}

// mismatch returns the path of the first value of want that got lacks or
// holds differently, or "" when got has all of want. got may hold more:
// Elasticsearch adds what it infers, and an index may have gained fields.
func mismatch(want, got any, path string) string {
	w, ok := want.(object)
	if !ok {
		if want != got {
			return path
		}
		return ""
	}
	g, _ := got.(object)
	for _, k := range slices.Sorted(maps.Keys(w)) {
		if p := mismatch(w[k], g[k], path+"."+k); p != "" {
			return p
		}
	}
	return ""
}
