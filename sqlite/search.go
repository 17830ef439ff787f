package sqlite

import (
	"context"
	"database/sql/driver"
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

// SearchMessages implements instachat.Searcher. Terms of MinSubstringTerm
// characters or more become quoted FTS5 phrases, which the trigram tokenizer
// matches as case-insensitive substrings; results rank by bm25, ties by
// number so that pages are stable. Shorter terms are too short for a trigram
// and filter the candidates through instachat_match; when every term is
// short, the chat is scanned in number order through its unique index.
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
	var query strings.Builder
	var args []any
	order := ` ORDER BY m.number`
	query.WriteString(`SELECT m.app_token, m.chat_number, m.number, m.body, m.created_at, m.updated_at FROM `)
	if len(phrases) > 0 {
		query.WriteString(`messages_fts JOIN messages m ON m.id = messages_fts.rowid WHERE messages_fts MATCH ? AND `)
		args = append(args, strings.Join(phrases, " AND "))
		order = ` ORDER BY messages_fts.rank, m.number`
	} else {
		query.WriteString(`messages m WHERE `)
	}
	query.WriteString(`m.app_token = ? AND m.chat_number = ?`)
	args = append(args, q.Token, q.Chat)
	if len(short) > 0 {
		query.WriteString(` AND instachat_match(m.body` + strings.Repeat(`, ?`, len(short)) + `)`)
		args = append(args, short...)
	}
	query.WriteString(order + ` LIMIT ? OFFSET ?`)
	args = append(args, q.Limit, q.Offset)
	rows, err := db.read.QueryContext(ctx, query.String(), args...)
	return collect(rows, err, scanMessage)
}
