package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/instachat/instachat"
	msqlite "modernc.org/sqlite"
)

func init() {
	// The index holds no rule of its own: it narrows the candidates, and
	// instachat_match decides every term by instachat.MatchesTerm, so
	// search cannot drift from the rule the suite checks. No SQLite
	// tokenizer expresses "a short term matches the start of a word", and
	// none folds case as Go does.
	msqlite.MustRegisterFunction("instachat_match", &msqlite.FunctionImpl{
		NArgs:         -1,
		Deterministic: true,
		// MatchesTerm keeps nothing of its arguments, so they may point
		// into SQLite's memory instead of being copied for every row.
		VolatileArgs: true,
		Scalar:       matchAll,
	})
	// instachat_lower(body) is indexText(body), for the migrations that
	// rebuild the index.
	msqlite.MustRegisterFunction("instachat_lower", &msqlite.FunctionImpl{
		NArgs:         1,
		Deterministic: true,
		Scalar: func(_ *msqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
			body, _ := args[0].(string)
			return indexText(body), nil
		},
	})
}

// indexText is what message_index holds of a body: its lower case as
// instachat.MatchesTerm computes it (strings.ToLower: Go's Unicode tables,
// rune by rune, no special casing, no normalization). The index's trigram
// tokenizer is case-sensitive (migrations/0005_go_case_folding.sql), so a
// long term — lower-cased by instachat.ParseSearchTerms — is found exactly
// where MatchesTerm looks for it. SQLite's own folding is not Go's: it
// misses case pairs (İ and i, Cherokee, Georgian Mtavruli, Adlam…) and
// joins forms Go keeps apart (ς and σ, ſ and s, µ and μ).
//
// The lower case may be longer or shorter in bytes than the body (Ⱥ, two
// bytes, lowers to ⱥ, three; İ, two, to i, one), never in runes, which is
// all the tokenizer counts. A Go release with newer Unicode tables (Go
// 1.26 has Unicode 15.0.0) may lower a rune that older entries hold in upper
// case: instachat_match still refuses every wrong candidate, but such an
// entry would be missed until a migration rebuilds the index, as 0005 does.
func indexText(body string) string { return strings.ToLower(body) }

// matchAll is instachat_match(body, term, …): 1 when body matches every
// term, by instachat.MatchesAll.
func matchAll(_ *msqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	body, _ := args[0].(string)
	terms := make([]string, len(args)-1)
	for i, a := range args[1:] {
		terms[i], _ = a.(string)
	}
	if instachat.MatchesAll(body, terms) {
		return int64(1), nil
	}
	return int64(0), nil
}

// RankWindow is how many matches SearchMessageNumbers ranks together: the newest
// RankWindow matches of the chat, then the next RankWindow, and so on: ten
// pages of 20. A search costs about its window, so a larger one costs
// more (docs/BENCHMARKS.md, BenchmarkSearchScoped).
const RankWindow = 200

// SearchMessageNumbers implements instachat.SearchEngine. "Best match first" here
// means best first among the chat's newest matches: the chat's matches,
// newest first, are cut into windows of RankWindow, each window is ranked
// (see rankWindowed), and windows follow one another newest first. A chat
// with at most RankWindow matches is ranked whole; in a bigger one, the
// first pages hold the best of its newest RankWindow matches, and an older,
// better match comes on a later page, after them. Equal scores come newest
// first. Pages cut one order, so every match comes exactly once across the
// pages of a query, as long as no message is added to the chat meanwhile.
//
// What that buys: a search reads its chat's matches in the order the index
// keeps them (its rowid range, newest first) and stops after the window
// holding the page's last result, so it costs offset+limit matches rounded
// up to whole windows, however many the chat and the other chats hold.
// FTS5's bm25, which ranked every match of the chat before, weighs each term
// by its frequency in the whole index, which FTS5 counts by reading the
// term's matches in every chat on every query, a hundred times the cost of
// a window on a large store (docs/BENCHMARKS.md).
//
// Terms of MinSubstringTerm characters or more become quoted FTS5 phrases,
// which the case-sensitive trigram tokenizer matches as substrings of the
// bodies' lower case (see indexText). Shorter terms are too short for a
// trigram. Every candidate then goes through instachat_match, which decides
// every term by instachat.MatchesTerm; when every term is short, the chat is
// scanned backwards through its unique index instead.
//
// The bodies are read to rank them, and package search loads the hits'
// rows again through FindMessages: one more query of at most a page of
// rows by key, the price of one contract for every engine.
func (db *DB) SearchMessageNumbers(ctx context.Context, q instachat.SearchQuery) ([]instachat.SearchHit, error) {
	msgs, scores, err := db.search(ctx, q, RankWindow)
	if err != nil {
		return nil, err
	}
	hits := make([]instachat.SearchHit, len(msgs))
	for i, m := range msgs {
		hits[i] = instachat.SearchHit{Number: m.Number, Score: scores[i]}
	}
	return hits, nil
}

// search is SearchMessageNumbers with windows of the given size: the page's
// matches, ranked, and their scores.
func (db *DB) search(ctx context.Context, q instachat.SearchQuery, window int) ([]*instachat.Message, []float64, error) {
	if q.Limit <= 0 {
		return nil, nil, nil
	}
	// No chat holds 2^31 matches; the bounds keep the sums below from
	// overflowing.
	offset, limit := min(max(q.Offset, 0), math.MaxInt32), min(q.Limit, math.MaxInt32)
	// The windows the page overlaps, read in one query.
	from := offset / window * window
	to := (offset + limit + window - 1) / window * window
	found, err := db.matches(ctx, q, from, to-from)
	if err != nil {
		return nil, nil, err
	}
	scores := make([]float64, 0, len(found))
	for w := 0; w < len(found); w += window {
		scores = append(scores, rankWindowed(found[w:min(w+window, len(found))], q.Terms)...)
	}
	if offset-from >= len(found) {
		return nil, nil, nil
	}
	page := offset - from
	end := min(page+limit, len(found))
	return found[page:end], scores[page:end], nil
}

// matches returns the chat's matches newest first, skipping offset and
// returning at most limit.
func (db *DB) matches(ctx context.Context, q instachat.SearchQuery, offset, limit int) ([]*instachat.Message, error) {
	var phrases []string
	terms := make([]any, len(q.Terms))
	for i, t := range q.Terms {
		terms[i] = t
		if utf8.RuneCountInString(t) >= instachat.MinSubstringTerm {
			phrases = append(phrases, `"`+strings.ReplaceAll(t, `"`, `""`)+`"`)
		}
	}
	scan := func(s scanner) (*instachat.Message, error) {
		m := instachat.Message{Token: q.Token, Chat: q.Chat}
		return &m, s.Scan(&m.Number, &m.Body, unixMicro{&m.CreatedAt}, unixMicro{&m.UpdatedAt})
	}
	if len(phrases) == 0 {
		rows, err := db.read.QueryContext(ctx, chatScan(len(terms)), slices.Concat([]any{q.Token, q.Chat}, terms, []any{limit, offset})...)
		return collect(rows, err, scan)
	}
	// The store first: a message the index does not hold yet is in the
	// queue this snapshot shows (see index.go), and decided here. The
	// index's snapshot, taken at its first read below, is as new or
	// newer: an edit or deletion committed in between, which the indexer
	// applied already, can leave out a message that matched in the
	// store's snapshot — the search then answers as of that change.
	// Nothing is ever found twice, or missed for want of an entry.
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, formatError(err, "")
	}
	defer tx.Rollback()
	// A queued match past offset+limit cannot reach the page, the index's
	// matches coming after it (by number) or left out as queued.
	rows, err := tx.StmtContext(ctx, db.searchQueued[len(terms)-1]).QueryContext(ctx,
		slices.Concat([]any{q.Token, q.Chat}, terms, []any{offset + limit})...)
	queued, err := collect(rows, err, scan)
	if err != nil {
		return nil, err
	}
	var scope int64
	switch err := tx.StmtContext(ctx, db.searchScope).QueryRowContext(ctx, q.Token, q.Chat).Scan(&scope); {
	case errors.Is(err, sql.ErrNoRows):
		return page(queued, offset, limit), nil // nothing of the chat is indexed
	case err != nil:
		return nil, formatError(err, "")
	}
	// The index's matches up to the end of the page and as many more as
	// there are queued matches, which may be among them (an edit queued
	// while the index holds its old body): enough, the queued matches left
	// out, to fill the page once the two lists are merged.
	args := slices.Concat([]any{q.Token, q.Chat, strings.Join(phrases, " AND "), scope << 32, scope<<32 | maxMessageNumber}, terms,
		[]any{offset + limit + len(queued), 0})
	if n := len(terms); n <= len(db.searchIndex) {
		rows, err = tx.StmtContext(ctx, db.searchIndex[n-1]).QueryContext(ctx, args...)
	} else {
		rows, err = tx.QueryContext(ctx, indexSearch(len(terms)), args...)
	}
	indexed, err := collect(rows, err, scan)
	if err != nil || len(queued) == 0 {
		return page(indexed, offset, limit), err
	}
	isQueued := make(map[int64]bool, len(queued))
	for _, m := range queued {
		isQueued[m.Number] = true
	}
	indexed = slices.DeleteFunc(indexed, func(m *instachat.Message) bool { return isQueued[m.Number] })
	merged := slices.Concat(queued, indexed)
	slices.SortStableFunc(merged, func(a, b *instachat.Message) int { return cmp.Compare(b.Number, a.Number) })
	return page(merged, offset, limit), nil
}

// page returns at most limit of found after the first offset.
func page(found []*instachat.Message, offset, limit int) []*instachat.Message {
	if offset >= len(found) {
		return nil
	}
	return found[offset:min(offset+limit, len(found))]
}

// The queries below take the chat's token and number, then (indexSearch) the
// FTS5 query and the chat's rowid range, then every term, then the limit and
// offset. They return the number, body and times of the chat's
// matches, newest first.

// chatScan searches a chat for short terms only.
func chatScan(terms int) string {
	return `SELECT number, body, created_at, updated_at FROM messages WHERE app_token = ? AND chat_number = ?` + matchTerms(terms, "body") +
		` ORDER BY number DESC LIMIT ? OFFSET ?`
}

// queuedSearch searches the chat's messages in the index's queue, newest
// first, each once however many times it is queued, up to a limit. The
// queue's index on the chat drives it, and the messages are read by id:
// it costs what the chat has queued, not the chat.
func queuedSearch(terms int) string {
	return `SELECT number, body, created_at, updated_at FROM messages
		WHERE id IN (SELECT message_id FROM index_queue WHERE app_token = ?1 AND chat_number = ?2) AND deleted_at IS NULL` +
		matchTerms(terms, "body") + ` ORDER BY number DESC LIMIT ?`
}

// indexSearch searches a chat for at least one long term. The index is the
// outer loop, confined to the chat by the rowid range and yielding rows in
// the order of the ORDER BY, so the query stops as soon as it has the
// window, however many messages match, and never computes FTS5's rank;
// instachat_match filters the rows on the way. The join undoes indexRowid.
func indexSearch(terms int) string {
	low := strconv.Itoa(maxMessageNumber)
	return `SELECT m.number, m.body, m.created_at, m.updated_at
		FROM idx.message_index JOIN messages m
			ON m.app_token = ? AND m.chat_number = ? AND m.number = ` + low + ` - (message_index.rowid & ` + low + `)
		WHERE message_index MATCH ? AND message_index.rowid BETWEEN ? AND ? AND m.deleted_at IS NULL` + matchTerms(terms, "m.body") + `
		ORDER BY message_index.rowid LIMIT ? OFFSET ?`
}

// matchTerms keeps the rows whose body matches n terms by MatchesTerm.
func matchTerms(n int, body string) string {
	return ` AND instachat_match(` + body + strings.Repeat(`, ?`, n) + `)`
}

// The parameters of BM25 as Lucene and FTS5 set them by default.
const (
	bm25K1 = 1.2  // how fast repeated occurrences stop adding
	bm25B  = 0.75 // how much a longer body dilutes an occurrence
)

// rankWindowed orders one window of matches, given newest first, best match
// first; equal scores stay newest first. It returns the scores in the new
// order.
//
// The score is BM25 with the window as the collection. Each term counts
// twice, like the must and should clauses of the Elasticsearch backend:
//
//   - its occurrences as MatchesTerm finds them (substrings for long terms,
//     word starts for short ones), weighted 1. Every message of the window
//     matches every term, so a term's document frequency in the window is
//     the window's size and cannot tell terms apart: inverse document
//     frequency would weigh all terms the same, so it is left out.
//   - its occurrences as a whole word (bounded by neither letters nor
//     digits), weighted by the term's inverse document frequency as a
//     whole word among the window: a message holding the word "cat" ranks
//     above "concatenate", the more so where the whole word is rare.
//
// Both are saturated by bm25K1 and normalised by the body's length in
// characters against the window's average, as FTS5 measures trigrams. The
// first part alone orders a window of one-term matches as FTS5's bm25 does
// (checked on the seeded million messages); what is traded against bm25
// over the whole index is that a term's rarity in the chat or the index
// does not weigh it against the query's other terms.
func rankWindowed(window []*instachat.Message, terms []string) []float64 {
	type scored struct {
		m     *instachat.Message
		score float64
	}
	ranked := make([]scored, len(window))
	for i, s := range scoreWindow(window, terms) {
		ranked[i] = scored{window[i], s}
	}
	// Stable, and the window comes newest first: equal scores keep that
	// order.
	slices.SortStableFunc(ranked, func(a, b scored) int { return cmp.Compare(b.score, a.score) })
	scores := make([]float64, len(ranked))
	for i, r := range ranked {
		window[i], scores[i] = r.m, r.score
	}
	return scores
}

// FindMessages implements instachat.Store, in one query whatever the count:
// the numbers travel as one JSON array.
func (db *DB) FindMessages(ctx context.Context, token string, chat int64, numbers []int64) ([]*instachat.Message, error) {
	if len(numbers) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(numbers)
	if err != nil {
		return nil, err
	}
	rows, err := db.findMessages.QueryContext(ctx, token, chat, string(list))
	return collect(rows, err, scanMessage)
}

// scoreWindow returns the score of each message of the window (see
// rankWindowed).
func scoreWindow(window []*instachat.Message, terms []string) []float64 {
	n := len(window)
	if n == 0 {
		return nil
	}
	type counts struct{ matches, words int }
	occ := make([]counts, n*len(terms))
	length := make([]float64, n)
	wordDocs := make([]int, len(terms))
	var total float64
	for i, m := range window {
		lower := strings.ToLower(m.Body)
		length[i] = float64(utf8.RuneCountInString(lower))
		total += length[i]
		for j, t := range terms {
			c := &occ[i*len(terms)+j]
			c.matches, c.words = instachat.TermOccurrences(lower, t)
			if c.words > 0 {
				wordDocs[j]++
			}
		}
	}
	avg := max(total/float64(n), 1)
	wordIDF := make([]float64, len(terms))
	for j, df := range wordDocs {
		// Lucene's form, positive however common the word.
		wordIDF[j] = math.Log(1 + (float64(n-df)+0.5)/(float64(df)+0.5))
	}
	scores := make([]float64, n)
	for i := range window {
		norm := bm25K1 * (1 - bm25B + bm25B*length[i]/avg)
		saturate := func(tf int) float64 { return float64(tf) * (bm25K1 + 1) / (float64(tf) + norm) }
		for j := range terms {
			c := occ[i*len(terms)+j]
			scores[i] += saturate(c.matches) + wordIDF[j]*saturate(c.words)
		}
	}
	return scores
}

// ForgetScope implements instachat.SearchEngine. The index is the store's
// own: the deletion of a chat or application queued its erasure, which the
// indexer carries out (eraseStep in index.go), so there is nothing left to
// forget.
func (db *DB) ForgetScope(context.Context, instachat.Scope) error { return nil }
