package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"maps"
	"slices"
	"strings"

	"github.com/instachat/instachat"
)

// Bounds of one statement of ApplyCreates: at most maxRows rows, and text
// past maxBytes only by its last row, so that a statement stays far below
// max_allowed_packet (4 MiB at the least on a default server).
const (
	maxRows  = 1000
	maxBytes = 1 << 20
)

// ApplyCreates implements instachat.Store, in one READ COMMITTED transaction
// of a few statements whatever the size of the batch:
//
//  1. lock the batch's applications (SELECT … FOR UPDATE);
//  2. read which of its chats are stored, and insert the others with
//     multi-row INSERTs;
//  3. count the messages stored before their chat under the new chats,
//     which start with that count;
//  4. as 2, for the messages;
//  5. add what was inserted to messages_count and chats_count: one UPDATE per
//     table, a CASE giving each row its increment.
//
// Counts grow by exactly the rows this transaction inserted. The lock of 1
// makes the transactions of one application take turns — a worker applying
// an overlapping batch after a Kafka rebalance, Recount — so none inserts
// between another's read and insert. Normally an application's creates come
// to one worker in order, and the lock is never waited for. The reads of 2–4
// lock too, for creates whose application is not stored: there, a key that
// a concurrent transaction inserts after the read makes the INSERT fail
// with a duplicate key, and inTx runs the whole transaction again.
//
// READ COMMITTED, because under REPEATABLE READ a locking read of a missing
// key takes a gap lock, and gap locks would block inserts of neighbouring
// keys, other applications' included.
func (db *DB) ApplyCreates(ctx context.Context, creates []instachat.Create) error {
	chats, msgs, apps := map[key]*instachat.Chat{}, map[key]*instachat.Message{}, map[key]bool{}
	for _, c := range creates {
		switch {
		case (c.Chat == nil) == (c.Message == nil):
			return instachat.Errorf(instachat.EINVALID, "a create must carry exactly one chat or message")
		case c.Chat != nil:
			chats[key{token: c.Chat.Token, chat: c.Chat.Number}] = c.Chat
		default:
			msgs[key{c.Message.Token, c.Message.Chat, c.Message.Number}] = c.Message
		}
		apps[key{token: c.Token()}] = true
	}
	if len(creates) == 0 {
		return nil
	}
	err := db.inTx(ctx, sql.LevelReadCommitted, func(tx *sql.Tx) error {
		return applyCreates(ctx, tx, apps, chats, msgs)
	})
	return formatError(err, "create")
}

func applyCreates(ctx context.Context, tx *sql.Tx, apps map[key]bool, chats map[key]*instachat.Chat, msgs map[key]*instachat.Message) error {
	if _, err := lock(ctx, tx, "applications", "token", 1, slices.SortedFunc(maps.Keys(apps), compareKeys)); err != nil {
		return err
	}
	newChats, err := missing(ctx, tx, "chats", "app_token, number", 2, chats)
	if err != nil {
		return err
	}
	err = insert(ctx, tx, `INSERT INTO chats (app_token, number, name, created_at, updated_at) VALUES `, newChats, func(k key) ([]any, int) {
		c := chats[k]
		return []any{c.Token, c.Number, c.Name, c.CreatedAt, c.UpdatedAt}, len(c.Name)
	})
	if err != nil {
		return err
	}
	addMessages, err := lock(ctx, tx, "messages", "app_token, chat_number", 2, newChats)
	if err != nil {
		return err
	}

	newMsgs, err := missing(ctx, tx, "messages", "app_token, chat_number, number", 3, msgs)
	if err != nil {
		return err
	}
	err = insert(ctx, tx, `INSERT INTO messages (`+messageCols+`) VALUES `, newMsgs, func(k key) ([]any, int) {
		m := msgs[k]
		return []any{m.Token, m.Chat, m.Number, m.Body, m.CreatedAt, m.UpdatedAt}, len(m.Body)
	})
	if err != nil {
		return err
	}

	addChats := map[key]int64{}
	for _, k := range newChats {
		addChats[key{token: k.token}]++
	}
	for _, k := range newMsgs {
		addMessages[key{token: k.token, chat: k.chat}]++
	}
	if err := add(ctx, tx, "chats", "messages_count", "app_token, number", 2, addMessages); err != nil {
		return err
	}
	return add(ctx, tx, "applications", "chats_count", "token", 1, addChats)
}

// key is a unique key, as much of it as a statement uses (its width): the
// token names an application, (token, chat) a chat, and (token, chat,
// message) a message; (token, chat) also names the messages of a chat.
type key struct {
	token         string
	chat, message int64
}

func (k key) args(width int) []any { return []any{k.token, k.chat, k.message}[:width] }

func (k *key) fields(width int) []any { return []any{&k.token, &k.chat, &k.message}[:width] }

func compareKeys(a, b key) int {
	return cmp.Or(strings.Compare(a.token, b.token), cmp.Compare(a.chat, b.chat), cmp.Compare(a.message, b.message))
}

// keyArgs lists the placeholder values of keys.
func keyArgs(keys []key, width int) []any {
	args := make([]any, 0, len(keys)*width)
	for _, k := range keys {
		args = append(args, k.args(width)...)
	}
	return args
}

// missing returns, in key order, the keys of rows that table does not store;
// it locks those it does. cols names the width key columns.
func missing[T any](ctx context.Context, tx *sql.Tx, table, cols string, width int, rows map[key]T) ([]key, error) {
	keys := slices.SortedFunc(maps.Keys(rows), compareKeys)
	stored, err := lock(ctx, tx, table, cols, width, keys)
	return slices.DeleteFunc(keys, func(k key) bool { return stored[k] > 0 }), err
}

// lock locks the rows of table whose key (the width columns cols) is among
// keys, and counts them by key.
func lock(ctx context.Context, tx *sql.Tx, table, cols string, width int, keys []key) (map[key]int64, error) {
	found := map[key]int64{}
	for part := range slices.Chunk(keys, maxRows) {
		rows, err := tx.QueryContext(ctx, `SELECT `+cols+` FROM `+table+` WHERE (`+cols+`) IN (`+tuples(len(part), width)+`) FOR UPDATE`,
			keyArgs(part, width)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k key
			if err := rows.Scan(k.fields(width)...); err != nil {
				rows.Close()
				return nil, err
			}
			found[k]++
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// insert runs head (INSERT INTO … VALUES) for the rows of keys, as many to a
// statement as maxRows and maxBytes allow; row returns a row's values and
// the bytes of text among them.
func insert(ctx context.Context, tx *sql.Tx, head string, keys []key, row func(key) ([]any, int)) error {
	for len(keys) > 0 {
		var args []any
		n := 0
		for size := 0; n < len(keys) && n < maxRows && size < maxBytes; n++ {
			values, bytes := row(keys[n])
			args, size = append(args, values...), size+bytes
		}
		if _, err := tx.ExecContext(ctx, head+tuples(n, len(args)/n), args...); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// add adds counts[k] to column in the row of table keyed k (the width
// columns cols). A key without a row, a chat whose messages came first,
// matches nothing: the chat counts them when it is inserted.
func add(ctx context.Context, tx *sql.Tx, table, column, cols string, width int, counts map[key]int64) error {
	keys := slices.SortedFunc(maps.Keys(counts), compareKeys)
	for part := range slices.Chunk(keys, maxRows) {
		var query strings.Builder
		var args []any
		query.WriteString(`UPDATE ` + table + ` SET ` + column + ` = ` + column + ` + CASE`)
		for _, k := range part {
			query.WriteString(` WHEN (` + cols + `) = (` + placeholders(width) + `) THEN ?`)
			args = append(append(args, k.args(width)...), counts[k])
		}
		query.WriteString(` END WHERE (` + cols + `) IN (` + tuples(len(part), width) + `)`)
		if _, err := tx.ExecContext(ctx, query.String(), append(args, keyArgs(part, width)...)...); err != nil {
			return err
		}
	}
	return nil
}

// tuples returns n row constructors of width placeholders: (?, ?), (?, ?).
func tuples(n, width int) string {
	tuple := `(` + placeholders(width) + `)`
	return strings.TrimSuffix(strings.Repeat(tuple+`, `, n), `, `)
}
