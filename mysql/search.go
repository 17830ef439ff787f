package mysql

import (
	"context"
	"errors"
	"slices"
	"strings"
	"unicode"

	"github.com/instachat/instachat"
)

// searchPage is how many candidates one query of SearchMessages fetches.
// Pages let a search that reached its limit stop reading: closing a MySQL
// result early still reads the rest of it off the network.
const searchPage = 200

// SearchMessageNumbers implements instachat.SearchEngine without a search
// engine. It scans the chat in number order through the (app_token,
// chat_number, number) index, page by page; LIKE narrows the rows sent back
// to those that may match, and instachat.MatchesTerm decides, so the rules
// are exactly the contract's. Hits come in number order, as no rank is
// computed (Score 0). Each search reads the chat up to its last result, so
// it is bounded: it examines at most the chat's first SearchScanLimit
// numbers (numbers are dense, so as many rows at most) and runs at most
// SearchTimeout. A search that reaches either bound before its page is full
// answers EINVALID (422) asking for a narrower query, rather than a partial
// page that would pass for complete.
func (db *DB) SearchMessageNumbers(ctx context.Context, q instachat.SearchQuery) ([]instachat.SearchHit, error) {
	if q.Limit <= 0 {
		return nil, nil
	}
	scanCtx, cancel := context.WithTimeout(ctx, db.searchTimeout)
	defer cancel()
	hits, err := db.searchNumbers(scanCtx, q)
	if err != nil && ctx.Err() == nil && errors.Is(scanCtx.Err(), context.DeadlineExceeded) {
		return nil, instachat.Errorf(instachat.EINVALID,
			"this search ran for %v without filling its page; narrow it with more or longer terms "+
				"(without a search engine, a search scans the chat)", db.searchTimeout)
	}
	return hits, err
}

func (db *DB) searchNumbers(ctx context.Context, q instachat.SearchQuery) ([]instachat.SearchHit, error) {
	var highest int64
	err := db.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(number), 0) FROM messages WHERE app_token = ? AND chat_number = ?`,
		q.Token, q.Chat).Scan(&highest)
	if err != nil {
		return nil, formatError(err, "")
	}
	end := min(highest, db.searchScanLimit) // the last number this search may examine
	query := `SELECT number, body FROM messages WHERE app_token = ? AND chat_number = ? AND number > ? AND number <= ?` +
		strings.Repeat(` AND body COLLATE utf8mb4_unicode_ci LIKE ? ESCAPE '!'`, len(q.Terms)) +
		` ORDER BY number LIMIT ?`
	args := []any{q.Token, q.Chat, int64(0), end}
	for _, t := range q.Terms {
		args = append(args, likePattern(t))
	}
	args = append(args, searchPage)

	type candidate struct {
		number int64
		body   string
	}
	scan := func(s scanner) (*candidate, error) {
		var c candidate
		return &c, s.Scan(&c.number, &c.body)
	}
	var found []instachat.SearchHit
	skip := q.Offset
	for {
		rows, err := db.db.QueryContext(ctx, query, args...)
		page, err := all(rows, err, scan)
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			if !instachat.MatchesAll(c.body, q.Terms) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			if found = append(found, instachat.SearchHit{Number: c.number}); len(found) == q.Limit {
				return found, nil
			}
		}
		if len(page) == searchPage {
			args[2] = page[len(page)-1].number
			continue
		}
		if end < highest {
			return nil, instachat.Errorf(instachat.EINVALID,
				"this search examined the chat's first %d messages without filling its page; narrow it with more or "+
					"longer terms (without a search engine, a search scans the chat)", end)
		}
		return found, nil
	}
}

// findMessagesChunk bounds the numbers of one FindMessages query, far below
// the 65,535 placeholders of a MySQL statement; a search page is one query.
const findMessagesChunk = 1000

// FindMessages implements instachat.Store.
func (db *DB) FindMessages(ctx context.Context, token string, chat int64, numbers []int64) ([]*instachat.Message, error) {
	var msgs []*instachat.Message
	for chunk := range slices.Chunk(numbers, findMessagesChunk) {
		args := []any{token, chat}
		for _, n := range chunk {
			args = append(args, n)
		}
		rows, err := db.db.QueryContext(ctx, `SELECT `+messageCols+` FROM messages WHERE app_token = ? AND chat_number = ? AND number IN (`+
			placeholders(len(chunk))+`) AND deleted_at IS NULL AND `+liveChat+` AND `+liveApp, append(args, token, chat, token)...)
		found, err := all(rows, err, scanMessage)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, found...)
	}
	return msgs, nil
}

// likePattern is the LIKE pattern, under utf8mb4_unicode_ci with '!' as the
// escape, of the bodies that contain term anywhere. It must keep every body
// MatchesTerm accepts: one whose lower case, by Go's Unicode tables,
// contains term rune for rune. The collation folds case by UCA 4.0.0, which
// misses case pairs Unicode added since (ẞ and ß, Ƀ and ƀ, Cherokee,
// Georgian Mtavruli…), so a rune keeps its place in the pattern only if the
// collation equates it with every rune Go lowers into it; any other becomes
// '_', which matches any one character. TestLikePatternKeepsEveryMatch
// checks this on the server for every assigned rune.
func likePattern(term string) string {
	var b strings.Builder
	b.WriteByte('%')
	for _, r := range term {
		switch {
		case r == '%' || r == '_' || r == '!':
			b.WriteByte('!')
			b.WriteRune(r)
		case foldsAsGo(r):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	b.WriteByte('%')
	return b.String()
}

// foldsAsGo reports whether every rune Go lowers into r, r's other case
// forms, comes from the blocks whose case pairs UCA 4.0.0 has: Latin-1 and
// Latin Extended-A (with İ, which Go lowers to i), the Greek and Cyrillic
// capitals of their basic blocks, and the Kelvin and Ångström signs. A rune
// without other case forms (digits, punctuation, Arabic, CJK…) matches only
// itself.
func foldsAsGo(r rune) bool {
	for c := unicode.SimpleFold(r); c != r; c = unicode.SimpleFold(c) {
		if unicode.ToLower(c) == r && !(c < 0x180 || c >= 0x386 && c <= 0x3ab || c >= 0x400 && c <= 0x42f || c == 0x212a || c == 0x212b) {
			return false
		}
	}
	return true
}

// ForgetScope implements instachat.SearchEngine. This search scans the
// store's rows, which Reclaim erases: there is nothing left to forget.
func (db *DB) ForgetScope(context.Context, instachat.Scope) error { return nil }
