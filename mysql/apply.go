package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

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
//  1. lock the batch's applications (SELECT … FOR UPDATE, or shared for a
//     batch of messages only: see below), reading their feeds' revisions;
//  2. lock the batch's chats that are stored, those created and those its
//     messages belong to, reading their revisions;
//  3. insert the chats not stored with multi-row INSERTs, each at its
//     application's next revision;
//  4. count the messages stored before their chat under the new chats, which
//     start with that count and at the newest one's revision;
//  5. read which of the messages are stored, and insert the others, each at
//     its chat's next revision;
//  6. add what was inserted to messages_count and chats_count and set the
//     feeds' revisions: one UPDATE per table, a CASE giving each row its own.
//
// Counts grow by exactly the rows this transaction inserted. The lock of 1
// makes the transactions of one application take turns — a worker applying
// an overlapping batch after a Kafka rebalance, Recount — so none inserts
// between another's read and insert. An application's chat creates come to
// one worker, but its messages are keyed by chat (see package kafka) and
// come to several at once: a batch that creates no chat and whose messages'
// chats are all stored therefore locks its applications shared (LOCK IN
// SHARE MODE), so that such batches of one application run side by side,
// each serialised per chat by the chat rows of 2. It needs nothing of the
// application row but its deleted_at: it takes no application revision
// and changes no chats_count, so it never writes the row it shares. The
// shared lock still waits for, and holds off, every writer of the row —
// a chat create, UpdateChat, DeleteChat, DeleteApplication, Recount — so
// a deleted application still never gets rows, and Recount still counts
// each batch exactly once. A batch taken as messages-only that finds one
// of its chats not stored is applied again, from the start, in a new
// transaction that locks exclusively: a chat without a row is serialised
// by its application's row (see lockChatFeed). The reads of 2–5
// lock too, for creates whose application is not stored: there, a key that
// a concurrent transaction inserts after the read makes the INSERT fail
// with a duplicate key, and inTx runs the whole transaction again.
//
// Revisions are taken in batch order, under the locks that serialise each
// feed's writers: a chat's row lock (2) is what UpdateMessage takes too, the
// application's (1) what UpdateChat takes, and what UpdateMessage takes for
// a chat whose row is not stored yet. So every feed's revisions are dense
// and in commit order, whichever worker or api process commits. A create
// skipped as stored takes none. Once the transaction committed, the stored
// creates' Chat and Message carry their revisions (a chat also its
// messages_count), so that a caller can publish them.
//
// READ COMMITTED, because under REPEATABLE READ a locking read of a missing
// key takes a gap lock, and gap locks would block inserts of neighbouring
// keys, other applications' included.
func (db *DB) ApplyCreates(ctx context.Context, creates []instachat.Create) error {
	b := batch{chats: map[key]*instachat.Chat{}, msgs: map[key]*instachat.Message{}, apps: map[key]bool{}}
	for _, c := range creates {
		switch {
		case (c.Chat == nil) == (c.Message == nil):
			return instachat.Errorf(instachat.EINVALID, "a create must carry exactly one chat or message")
		case c.Chat != nil:
			k := key{token: c.Chat.Token, chat: c.Chat.Number}
			if _, ok := b.chats[k]; !ok {
				b.chatOrder = append(b.chatOrder, k)
			}
			b.chats[k] = c.Chat
		default:
			k := key{c.Message.Token, c.Message.Chat, c.Message.Number}
			if _, ok := b.msgs[k]; !ok {
				b.msgOrder = append(b.msgOrder, k)
			}
			b.msgs[k] = c.Message
		}
		b.apps[key{token: c.Token()}] = true
	}
	if len(creates) == 0 {
		return nil
	}
	var done *applied
	apply := func(shared bool) error {
		return db.inTx(ctx, sql.LevelReadCommitted, func(tx *sql.Tx) (err error) {
			if done, err = b.apply(ctx, tx, shared); err == nil && db.beforeCommit != nil {
				db.beforeCommit(creates)
			}
			return err
		})
	}
	shared := len(b.chats) == 0
	err := apply(shared)
	if shared && errors.Is(err, errExclusive) {
		err = apply(false)
	}
	if err != nil {
		return formatError(err, "create")
	}
	for k, c := range done.chats {
		chat := b.chats[k]
		chat.AppRevision, chat.CreatedAppRevision = c.appRevision, c.appRevision
		chat.Revision, chat.MessagesCount = done.feeds[k].revision, done.feeds[k].count
	}
	for k, revision := range done.msgs {
		b.msgs[k].Revision, b.msgs[k].CreatedRevision = revision, revision
	}
	for k, at := range done.droppedChats {
		b.chats[k].DeletedAt = &at
	}
	for k, at := range done.droppedMsgs {
		b.msgs[k].DeletedAt = &at
	}
	return nil
}

// batch is what ApplyCreates stores: a create per key (the last of a key
// repeated), and the keys in the order of their first create.
type batch struct {
	apps                map[key]bool
	chats               map[key]*instachat.Chat
	msgs                map[key]*instachat.Message
	chatOrder, msgOrder []key
}

// applied is what one attempt of a batch stored: the application revision
// of each chat inserted, the chat revision of each message inserted, and
// where each chat's feed it changed ended.
type applied struct {
	chats map[key]struct{ appRevision int64 }
	msgs  map[key]int64
	feeds map[key]*feed
	// The creates dropped because what they create, or its chat or
	// application, is deleted, and when that was.
	droppedChats, droppedMsgs map[key]time.Time
}

// feed is a feed's revision and, for a chat, its messages_count: where it
// stood once locked, and what this transaction added.
type feed struct {
	revision, count int64 // current, this transaction's writes included
	stored          bool  // the row exists (a chat may not, yet)
	deleted         sql.NullTime
	added           int64 // rows counted by this transaction
	changed         bool  // the revision moved
}

// errExclusive stops the transaction of a batch of messages only, which
// locked its applications shared, on finding a chat of the batch not
// stored: ApplyCreates applies it again locking them exclusively.
var errExclusive = errors.New("mysql: the batch needs its applications locked exclusively")

// apply stores the batch in tx; shared, for a batch without chat creates,
// locks its applications in share mode (see ApplyCreates).
func (b *batch) apply(ctx context.Context, tx *sql.Tx, shared bool) (*applied, error) {
	done := &applied{chats: map[key]struct{ appRevision int64 }{}, msgs: map[key]int64{}, feeds: map[key]*feed{},
		droppedChats: map[key]time.Time{}, droppedMsgs: map[key]time.Time{}}
	appLock := forUpdate
	if shared {
		appLock = inShareMode
	}
	apps, err := lockFeeds(ctx, tx, "applications", "token", 1, appLock, slices.SortedFunc(maps.Keys(b.apps), compareKeys))
	if err != nil {
		return nil, err
	}
	chatKeys := map[key]bool{}
	for k := range b.chats {
		chatKeys[k] = true
	}
	for k := range b.msgs {
		chatKeys[key{token: k.token, chat: k.chat}] = true
	}
	chats, err := lockFeeds(ctx, tx, "chats", "app_token, number", 2, forUpdate, slices.SortedFunc(maps.Keys(chatKeys), compareKeys))
	if err != nil {
		return nil, err
	}
	if shared {
		for k := range chatKeys {
			if chats[k] == nil {
				return nil, errExclusive
			}
		}
	}

	// gone is when the chat of k, or its application, was deleted.
	gone := func(k key) (time.Time, bool) {
		if c := chats[key{token: k.token, chat: k.chat}]; c != nil && c.deleted.Valid {
			return c.deleted.Time, true
		}
		if a := apps[key{token: k.token}]; a != nil && a.deleted.Valid {
			return a.deleted.Time, true
		}
		return time.Time{}, false
	}
	var newChats []key
	for _, k := range b.chatOrder {
		if at, ok := gone(k); ok {
			done.droppedChats[k] = at
			continue
		}
		if chats[k] != nil {
			continue
		}
		app := apps[key{token: k.token}]
		if app == nil {
			// Not stored (never, but the unique index must hold): its
			// chats' newest revision is where its feed stands.
			app = &feed{}
			if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(app_revision), 0) FROM chats WHERE app_token = ?`,
				k.token).Scan(&app.revision); err != nil {
				return nil, err
			}
			apps[key{token: k.token}] = app
		}
		app.revision, app.added, app.changed = app.revision+1, app.added+1, true
		done.chats[k] = struct{ appRevision int64 }{app.revision}
		newChats = append(newChats, k)
	}
	err = insert(ctx, tx, `INSERT INTO chats (app_token, number, name, app_revision, created_app_revision, created_at, updated_at) VALUES `,
		newChats, func(k key) ([]any, int) {
			c, revision := b.chats[k], done.chats[k].appRevision
			return []any{c.Token, c.Number, c.Name, revision, revision, c.CreatedAt, c.UpdatedAt}, len(c.Name)
		})
	if err != nil {
		return nil, err
	}
	// A new chat starts with the messages stored before it; a chat whose
	// row is still missing is where its newest message is.
	before, err := earlierMessages(ctx, tx, newChats)
	if err != nil {
		return nil, err
	}
	for _, k := range newChats {
		chats[k] = &feed{revision: before[k].revision, count: before[k].count, stored: true, added: before[k].count, changed: true}
	}
	for k := range chatKeys {
		if chats[k] != nil {
			continue
		}
		f := &feed{}
		if err := tx.QueryRowContext(ctx,
			`SELECT COALESCE(MAX(revision), 0) FROM messages WHERE app_token = ? AND chat_number = ?`, k.token, k.chat).Scan(&f.revision); err != nil {
			return nil, err
		}
		chats[k] = f
	}

	stored, err := lock(ctx, tx, "messages", "app_token, chat_number, number", 3, slices.SortedFunc(maps.Keys(b.msgs), compareKeys))
	if err != nil {
		return nil, err
	}
	var newMsgs []key
	for _, k := range b.msgOrder {
		if at, ok := gone(k); ok {
			done.droppedMsgs[k] = at
			continue
		}
		if deleted, ok := stored[k]; ok {
			if deleted.Valid { // a retry of a deleted message
				done.droppedMsgs[k] = deleted.Time
			}
			continue
		}
		chat := chats[key{token: k.token, chat: k.chat}]
		chat.revision, chat.count, chat.added, chat.changed = chat.revision+1, chat.count+1, chat.added+1, true
		done.msgs[k] = chat.revision
		newMsgs = append(newMsgs, k)
	}
	slices.SortFunc(newMsgs, compareKeys)
	err = insert(ctx, tx, `INSERT INTO messages (app_token, chat_number, number, body, revision, created_revision, created_at, updated_at) VALUES `,
		newMsgs, func(k key) ([]any, int) {
			m, revision := b.msgs[k], done.msgs[k]
			return []any{m.Token, m.Chat, m.Number, m.Body, revision, revision, m.CreatedAt, m.UpdatedAt}, len(m.Body)
		})
	if err != nil {
		return nil, err
	}

	for k, f := range chats {
		if f.stored && f.changed {
			done.feeds[k] = f
		}
	}
	if err := advance(ctx, tx, "chats", "messages_count", "app_token, number", 2, done.feeds); err != nil {
		return nil, err
	}
	changedApps := map[key]*feed{}
	for k, f := range apps {
		if f.stored && f.changed {
			changedApps[k] = f
		}
	}
	return done, advance(ctx, tx, "applications", "chats_count", "token", 1, changedApps)
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

// lock locks the rows of table whose key (the width columns cols) is among
// keys, and returns their deleted_at by key.
func lock(ctx context.Context, tx *sql.Tx, table, cols string, width int, keys []key) (map[key]sql.NullTime, error) {
	found := map[key]sql.NullTime{}
	for part := range slices.Chunk(keys, maxRows) {
		rows, err := tx.QueryContext(ctx, `SELECT `+cols+`, deleted_at FROM `+table+` WHERE (`+cols+`) IN (`+tuples(len(part), width)+`) FOR UPDATE`,
			keyArgs(part, width)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k key
			var deleted sql.NullTime
			if err := rows.Scan(append(k.fields(width), &deleted)...); err != nil {
				rows.Close()
				return nil, err
			}
			found[k] = deleted
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

// advance adds each feed's added to column in the row of table keyed k
// (the width columns cols) and sets its revision. A key without a row, a
// chat whose messages came first, matches nothing: the chat counts them
// when it is inserted, and starts at the newest one's revision.
func advance(ctx context.Context, tx *sql.Tx, table, column, cols string, width int, feeds map[key]*feed) error {
	keys := slices.SortedFunc(maps.Keys(feeds), compareKeys)
	for part := range slices.Chunk(keys, maxRows) {
		var query strings.Builder
		var args []any
		query.WriteString(`UPDATE ` + table + ` SET ` + column + ` = ` + column + ` + CASE`)
		for _, k := range part {
			query.WriteString(` WHEN (` + cols + `) = (` + placeholders(width) + `) THEN ?`)
			args = append(append(args, k.args(width)...), feeds[k].added)
		}
		query.WriteString(` END, revision = CASE`)
		for _, k := range part {
			query.WriteString(` WHEN (` + cols + `) = (` + placeholders(width) + `) THEN ?`)
			args = append(append(args, k.args(width)...), feeds[k].revision)
		}
		query.WriteString(` END WHERE (` + cols + `) IN (` + tuples(len(part), width) + `)`)
		if _, err := tx.ExecContext(ctx, query.String(), append(args, keyArgs(part, width)...)...); err != nil {
			return err
		}
	}
	return nil
}

// The locking clauses of lockFeeds. MariaDB, unlike MySQL 8, has no FOR
// SHARE; both know LOCK IN SHARE MODE.
const (
	forUpdate   = "FOR UPDATE"
	inShareMode = "LOCK IN SHARE MODE"
)

// lockFeeds locks the rows of table (applications or chats) whose key (the
// width columns cols) is among keys, exclusively or shared as lock says,
// and returns their feeds' revisions.
func lockFeeds(ctx context.Context, tx *sql.Tx, table, cols string, width int, lock string, keys []key) (map[key]*feed, error) {
	found := map[key]*feed{}
	for part := range slices.Chunk(keys, maxRows) {
		rows, err := tx.QueryContext(ctx,
			`SELECT `+cols+`, revision, deleted_at FROM `+table+` WHERE (`+cols+`) IN (`+tuples(len(part), width)+`) `+lock,
			keyArgs(part, width)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k key
			f := &feed{stored: true}
			if err := rows.Scan(append(k.fields(width), &f.revision, &f.deleted)...); err != nil {
				rows.Close()
				return nil, err
			}
			found[k] = f
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// earlierMessages locks the messages stored under chats and returns, by
// chat, how many there are and the newest one's revision.
func earlierMessages(ctx context.Context, tx *sql.Tx, chats []key) (map[key]feed, error) {
	found := map[key]feed{}
	for part := range slices.Chunk(slices.SortedFunc(slices.Values(chats), compareKeys), maxRows) {
		rows, err := tx.QueryContext(ctx,
			`SELECT app_token, chat_number, revision, deleted_at IS NULL FROM messages
			WHERE (app_token, chat_number) IN (`+tuples(len(part), 2)+`) FOR UPDATE`,
			keyArgs(part, 2)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k key
			var revision int64
			var live bool
			if err := rows.Scan(&k.token, &k.chat, &revision, &live); err != nil {
				rows.Close()
				return nil, err
			}
			f := found[k]
			if live {
				f.count++
			}
			f.revision = max(f.revision, revision)
			found[k] = f
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// tuples returns n row constructors of width placeholders: (?, ?), (?, ?).
func tuples(n, width int) string {
	tuple := `(` + placeholders(width) + `)`
	return strings.TrimSuffix(strings.Repeat(tuple+`, `, n), `, `)
}
