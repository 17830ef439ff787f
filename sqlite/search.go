package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/instachat/instachat"
	msqlite "modernc.org/sqlite"
)

func init() {
	// No SQLite tokenizer expresses "a short term matches the start of a
	// word" the way instachat.MatchesTerm does, so short terms filter through
	// MatchesTerm itself and cannot drift from the rule the suite checks.
	msqlite.MustRegisterFunction("instachat_match", &msqlite.FunctionImpl{
		NArgs:         -1,
		Deterministic: true,
		// MatchesTerm keeps nothing of its arguments, so they may point
		// into SQLite's memory instead of being copied for every row.
		VolatileArgs: true,
		Scalar:       matchAll,
	})
}

// matchAll is instachat_match(body, term, …): 1 when body matches every term.
func matchAll(_ *msqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	body, _ := args[0].(string)
	for _, a := range args[1:] {
		if term, _ := a.(string); !instachat.MatchesTerm(body, term) {
			return int64(0), nil
		}
	}
	return int64(1), nil
}

// SearchMessages implements instachat.Searcher. Results come newest first:
// ranking by bm25 reads every match of a term in every chat (its IDF) and
// then scores each of the chat's matches, about 100 ms for a common word
// among a million messages, while newest first is the order of the chat's
// rowid range, which FTS5 reads from a seek until it has the page, under
// 1 ms.
//
// Terms of MinSubstringTerm characters or more become quoted FTS5 phrases,
// which the trigram tokenizer matches as case-insensitive substrings. Shorter
// terms are too short for a trigram and filter the candidates through
// instachat_match; when every term is short, the chat is scanned backwards
// through its unique index instead.
func (db *DB) SearchMessages(ctx context.Context, q instachat.SearchQuery) ([]*instachat.Message, error) {
	var phrases []string
	var short []any
	for _, t := range q.Terms {
		if utf8.RuneCountInString(t) >= instachat.MinSubstringTerm {
			phrases = append(phrases, `"`+strings.ReplaceAll(t, `"`, `""`)+`"`)
		} else {
			short = append(short, t)
		}
	}
	page := []any{q.Limit, q.Offset}
	if len(phrases) == 0 {
		rows, err := db.read.QueryContext(ctx, chatScan(len(short)), slices.Concat([]any{q.Token, q.Chat}, short, page)...)
		return collect(rows, err, scanMessage)
	}
	var scope int64
	switch err := db.searchScope.QueryRowContext(ctx, q.Token, q.Chat).Scan(&scope); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil // no message of the chat is stored
	case err != nil:
		return nil, formatError(err, "")
	}
	args := slices.Concat([]any{q.Token, q.Chat, strings.Join(phrases, " AND "), scope << 32, scope<<32 | maxMessageNumber}, short, page)
	if len(short) == 0 {
		rows, err := db.searchIndex.QueryContext(ctx, args...)
		return collect(rows, err, scanMessage)
	}
	rows, err := db.read.QueryContext(ctx, indexSearch(len(short)), args...)
	return collect(rows, err, scanMessage)
}

// The queries below take the chat's token and number, then (indexSearch) the
// FTS5 query and the chat's rowid range, then the short terms, then the
// limit and offset.

// chatScan searches a chat for short terms only.
func chatScan(short int) string {
	return `SELECT ` + messageCols + ` FROM messages m WHERE app_token = ? AND chat_number = ?` + matchShort(short) +
		` ORDER BY number DESC LIMIT ? OFFSET ?`
}

// indexSearch searches a chat for at least one long term, best match (bm25)
// first and, among equals, newest first. The index is the outer loop,
// confined to the chat by the rowid range, so only the chat's matches are
// read and ranked, however many the other chats hold; short terms filter
// the rows on the way. The join undoes indexRowid.
func indexSearch(short int) string {
	low := strconv.Itoa(maxMessageNumber)
	return `SELECT m.app_token, m.chat_number, m.number, m.body, m.created_at, m.updated_at
		FROM message_index JOIN messages m
			ON m.app_token = ? AND m.chat_number = ? AND m.number = ` + low + ` - (message_index.rowid & ` + low + `)
		WHERE message_index MATCH ? AND message_index.rowid BETWEEN ? AND ?` + matchShort(short) + `
		ORDER BY message_index.rank, message_index.rowid LIMIT ? OFFSET ?`
}

// matchShort filters on short terms, which no index serves.
func matchShort(n int) string {
	if n == 0 {
		return ""
	}
	return ` AND instachat_match(m.body` + strings.Repeat(`, ?`, n) + `)`
}
