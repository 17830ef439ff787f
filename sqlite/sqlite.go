// Package sqlite is the embedded default Store and SearchEngine: one database
// file, no server, no cgo (modernc.org/sqlite).
//
// # Durability
//
// The database runs in WAL mode. With Options.Synchronous "NORMAL", the
// default, a commit reaches the WAL file without an fsync: it survives the
// process crashing or being killed (SIGKILL included), because the kernel
// holds the pages, but a power loss or kernel panic may lose the most recent
// commits (never corrupting the file). "FULL" fsyncs the WAL on every commit
// and survives power loss, at the price of one fsync per write transaction —
// per ApplyCreates batch on the hot path.
//
// # Search
//
// Message bodies are indexed, in Go's lower case, by a case-sensitive FTS5
// trigram table that narrows a search's candidates, and
// instachat.MatchesTerm decides each (see indexText). The index is a file of
// its own, written after the commit by an indexer (see index.go); search
// covers what it has not indexed yet, so it never lags a commit. No
// Indexer, and no index consumer (worker.Index), is needed.
//
// A search reads one chat, so a chat's entries are one contiguous range of
// index rowids (see indexRowid and migrations/0002_scoped_search.sql): FTS5
// seeks to the range and never reads another chat's matches. Message numbers
// therefore stop at 2^32-1, and ApplyCreates refuses higher ones. Results
// come best match first within windows of the chat's newest matches, ranked
// in Go: FTS5's bm25 would cost reading the term's matches in every chat
// (see SearchMessageNumbers).
//
// # Connections
//
// SQLite admits one writer at a time, so every write goes through a single
// connection: a larger pool would only queue on the file lock and surface
// SQLITE_BUSY. Reads use a pool of their own, which WAL runs alongside the
// writer. Both pools open the same file, so the path must name a file, not
// ":memory:".
package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/sqlrow"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Options tune Open.
type Options struct {
	// Synchronous is "NORMAL" (the default: survives a process crash) or
	// "FULL" (also survives power loss); see the package documentation.
	Synchronous string
}

// DB is a SQLite database holding applications, chats and messages.
type DB struct {
	write, read *sql.DB
	stmts       []*sql.Stmt // every statement below, to close

	insertApp, findApp, listApps, updateApp, appExists      *sql.Stmt
	insertChat, findChat, listChats, updateChat, chatExists *sql.Stmt
	insertMessage, findMessage, listMessages                *sql.Stmt
	findMessages, updateMessage, searchScope                *sql.Stmt
	addChats, addMessages, highestChat, highestMessage      *sql.Stmt
	watermarks, insertReceipt                               *sql.Stmt
	appRevision, chatRevision, setAppRevision               *sql.Stmt
	setChatRevision, feedApp, feedChat                      *sql.Stmt
	chatChanges, messageChanges                             *sql.Stmt
	deleteMessage, uncountMessage, insertErasure            *sql.Stmt
	eraseReceipt, deleteChat, uncountChat, deleteApp        *sql.Stmt
	insertReclaim, nextReclaim, doneReclaim                 *sql.Stmt
	chatDeleted, messageDeleted                             *sql.Stmt

	// searchIndex[n-1] is indexSearch(n): a search with a long term
	// among n terms; searchQueued[n-1] is queuedSearch(n).
	searchIndex, searchQueued [instachat.MaxSearchTerms]*sql.Stmt

	index       *indexer
	checkpoints *checkpointer
}

var (
	_ instachat.Store        = (*DB)(nil)
	_ instachat.SearchEngine = (*DB)(nil)
	_ instachat.Feeds        = (*DB)(nil)
	_ instachat.ReceiptStore = (*DB)(nil)
)

//go:embed migrations/*.sql
var migrations embed.FS

// busyTimeout is how long a statement waits for a lock another process holds
// before failing with SQLITE_BUSY, reported as EUNAVAILABLE.
const busyTimeout = 5 * time.Second

// Open opens or creates the database at path and brings its schema up to
// date.
func Open(path string, opts Options) (*DB, error) {
	sync := cmp.Or(strings.ToUpper(opts.Synchronous), "NORMAL")
	if sync != "NORMAL" && sync != "FULL" {
		return nil, fmt.Errorf("sqlite: synchronous must be NORMAL or FULL, not %q", opts.Synchronous)
	}
	// In a file: URI a relative path would begin with its authority.
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	pragmas := []string{fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()), "journal_mode(WAL)", "synchronous(" + sync + ")"}
	// Immediate: a write transaction takes the lock when it begins rather
	// than failing to upgrade a read lock halfway through.
	// secure_delete: what a write removes (an erased body, a reclaimed
	// row, a freed page) is overwritten with zeros in the file, rather
	// than left in free space until reused. Creates free no space; the
	// cost falls on deletes and the reclaim.
	// journal_size_limit cuts the WAL file back once a checkpoint emptied
	// it (see checkpointer).
	write, err := sql.Open("sqlite", dsnPragmas(path,
		append(slices.Clone(pragmas), "secure_delete(ON)", "journal_size_limit(67108864)"), true))
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	ctx := context.Background()
	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, err
	}
	db := &DB{write: write}
	index, err := openIndex(path, pragmas, write, db.trimIndexed)
	if err != nil {
		write.Close()
		return nil, err
	}
	// Every reader sees the index as idx, for a search to join it.
	read := sql.OpenDB(attachConnector{write.Driver(), dsn(path, url.Values{"_pragma": {pragmas[0], "query_only(1)"}}),
		path + indexSuffix, "idx"})
	readers := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(readers)
	read.SetMaxIdleConns(readers) // idle connections keep their page cache and prepared statements

	db.read, db.index = read, index
	ckpt, err := sql.Open("sqlite", dsn(path, url.Values{"_pragma": {pragmas[0]}}))
	if err != nil {
		db.Close()
		return nil, err
	}
	ckpt.SetMaxOpenConns(1)
	db.checkpoints = startCheckpointer(ckpt)
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return db, nil
}

// dsnPragmas is the DSN of a connection to path with pragmas, whose
// transactions take the write lock as they begin when immediate is set.
func dsnPragmas(path string, pragmas []string, immediate bool) string {
	params := url.Values{"_pragma": pragmas}
	if immediate {
		params.Set("_txlock", "immediate")
	}
	return dsn(path, params)
}

func dsn(path string, params url.Values) string {
	// A file: URI escapes whatever in path would read as a query.
	return (&url.URL{Scheme: "file", Path: path, RawQuery: params.Encode()}).String()
}

// Close closes the database; the last connection out checkpoints the WAL.
func (db *DB) Close() error {
	var err error
	if db.checkpoints != nil {
		err = db.checkpoints.close()
	}
	if db.index != nil {
		err = errors.Join(err, db.index.close())
	}
	for _, s := range db.stmts {
		s.Close()
	}
	return errors.Join(err, db.read.Close(), db.write.Close())
}

// migrate applies, in file name order, each embedded migration not yet
// recorded in schema_migrations, each in its own transaction.
func migrate(ctx context.Context, db *sql.DB) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	return applyMigrations(ctx, db, names)
}

// migrator is a *sql.DB or a *sql.Conn.
type migrator interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// applyMigrations applies the named migrations, in the order given; tests
// stop short of the newest to make the databases older versions left.
func applyMigrations(ctx context.Context, db migrator, names []string) error {
	return runMigrations(ctx, db, migrations, names)
}

// runMigrations applies the named migrations of files, in the order given.
func runMigrations(ctx context.Context, db migrator, files fs.ReadFileFS, names []string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    TEXT PRIMARY KEY,
		applied_at INTEGER NOT NULL
	)`); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	for _, name := range names {
		if err := applyMigration(ctx, db, files, name); err != nil {
			return fmt.Errorf("sqlite: migration %s: %w", name, err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db migrator, files fs.ReadFileFS, name string) error {
	version := path.Base(name)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Checked inside the transaction: two processes opening a new file at
	// once serialize on the write lock, and the second sees the first's row.
	var applied bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?)`,
		version).Scan(&applied); err != nil || applied {
		return err
	}
	script, err := files.ReadFile(name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(script)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}

const (
	appCols     = `token, name, chats_count, revision, created_at, updated_at`
	chatCols    = `app_token, number, name, messages_count, revision, app_revision, created_app_revision, created_at, updated_at, deleted_at`
	messageCols = `app_token, chat_number, number, body, revision, created_revision, created_at, updated_at, deleted_at`

	// A row under a deleted application or chat is hidden from every read
	// from the moment of the deletion, before Reclaim erases it: these
	// conditions, on the token ?1 and the chat number ?2 of a statement,
	// are one seek of a unique index each.
	liveApp  = `NOT EXISTS (SELECT 1 FROM applications WHERE token = ?1 AND deleted_at IS NOT NULL)`
	liveChat = `NOT EXISTS (SELECT 1 FROM chats WHERE app_token = ?1 AND number = ?2 AND deleted_at IS NOT NULL)`

	// erasedFingerprint replaces the fingerprint of a deleted row's
	// receipt (see instachat.ErasedFingerprint).
	erasedFingerprint = `'` + instachat.ErasedFingerprint + `'`

	// The current revision of an application's feed, or of a chat's, as a
	// write inside the writer's transaction continues it. The row keeps
	// it; a chat whose row is not stored yet (its messages came first) is
	// at its newest message's, one seek to the end of the revision index,
	// and so is an application that is not stored (never, but the unique
	// indexes must hold whatever comes).
	appRevisionExpr = `COALESCE((SELECT revision FROM applications WHERE token = ?1),
		(SELECT MAX(app_revision) FROM chats WHERE app_token = ?1), 0)`
	chatRevisionExpr = `COALESCE((SELECT revision FROM chats WHERE app_token = ?1 AND number = ?2),
		(SELECT MAX(revision) FROM messages WHERE app_token = ?1 AND chat_number = ?2), 0)`
)

// prepare compiles every fixed statement once; transactions rebind them with
// Tx.StmtContext, which reuses the compiled statement of the one writer
// connection.
func (db *DB) prepare(ctx context.Context) error {
	w, r := db.write, db.read
	type stmt struct {
		dst   **sql.Stmt
		pool  *sql.DB
		query string
	}
	stmts := []stmt{
		{&db.insertApp, w, `INSERT INTO applications (token, name, created_at, updated_at) VALUES (?, ?, ?, ?)`},
		{&db.findApp, r, `SELECT ` + appCols + ` FROM applications WHERE token = ? AND deleted_at IS NULL`},
		// Creation order is id order; an unknown after token yields an
		// empty page rather than restarting from the first.
		{&db.listApps, r, `SELECT ` + appCols + ` FROM applications
			WHERE id > CASE WHEN ?1 = '' THEN 0 ELSE (SELECT id FROM applications WHERE token = ?1) END
				AND deleted_at IS NULL
			ORDER BY id LIMIT ?2`},
		{&db.updateApp, w, `UPDATE applications SET name = ?, updated_at = ? WHERE token = ? AND deleted_at IS NULL RETURNING ` + appCols},
		{&db.appExists, r, `SELECT 1 FROM applications WHERE token = ? AND deleted_at IS NULL`},

		// Messages may be stored before their chat row (see
		// instachat.Store.ApplyCreates), so a new chat starts with their
		// count and at the revision of the newest. A chat skipped as stored
		// returns no row. Only the key is skipped on: a revision taken
		// twice must fail the batch, not drop a row.
		{&db.insertChat, w, `INSERT INTO chats
				(app_token, number, name, messages_count, revision, app_revision, created_app_revision, created_at, updated_at)
			VALUES (?1, ?2, ?3, (SELECT COUNT(*) FROM messages WHERE app_token = ?1 AND chat_number = ?2 AND deleted_at IS NULL),
				(SELECT COALESCE(MAX(revision), 0) FROM messages WHERE app_token = ?1 AND chat_number = ?2), ?4, ?4, ?5, ?6)
			ON CONFLICT (app_token, number) DO NOTHING RETURNING messages_count, revision`},
		{&db.findChat, r, `SELECT ` + chatCols + ` FROM chats WHERE app_token = ?1 AND number = ?2 AND deleted_at IS NULL AND ` + liveApp},
		{&db.listChats, r, `SELECT ` + chatCols + ` FROM chats WHERE app_token = ?1 AND number > ?2 AND deleted_at IS NULL AND ` + liveApp + `
			ORDER BY number LIMIT ?3`},
		{&db.updateChat, w, `UPDATE chats SET name = ?3, updated_at = ?4, app_revision = 1 + ` + appRevisionExpr + `
			WHERE app_token = ?1 AND number = ?2 AND deleted_at IS NULL AND ` + liveApp + ` RETURNING ` + chatCols},
		{&db.chatExists, r, `SELECT 1 FROM chats WHERE app_token = ?1 AND number = ?2 AND deleted_at IS NULL AND ` + liveApp},

		// A replay carries its receipt's created_at and changes nothing; a
		// key reused after its receipt expired, but before the prune
		// deleted the row, replaces it, or a restart would lose the new one.
		{&db.insertReceipt, w, `INSERT INTO receipts (app_token, idempotency_key, chat_number, number, fingerprint, created_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (app_token, idempotency_key) DO UPDATE SET chat_number = excluded.chat_number,
				number = excluded.number, fingerprint = excluded.fingerprint, created_at = excluded.created_at
			WHERE excluded.created_at > receipts.created_at`},
		{&db.insertMessage, w, `INSERT INTO messages (app_token, chat_number, number, body, revision, created_revision, created_at, updated_at)
			VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7) ON CONFLICT (app_token, chat_number, number) DO NOTHING`},
		{&db.findMessage, r, `SELECT ` + messageCols + ` FROM messages
			WHERE app_token = ?1 AND chat_number = ?2 AND number = ?3 AND deleted_at IS NULL AND ` + liveChat + ` AND ` + liveApp},
		{&db.findMessages, r, `SELECT ` + messageCols + ` FROM messages
			WHERE app_token = ?1 AND chat_number = ?2 AND number IN (SELECT value FROM json_each(?3)) AND deleted_at IS NULL
				AND ` + liveChat + ` AND ` + liveApp},
		{&db.listMessages, r, `SELECT ` + messageCols + ` FROM messages
			WHERE app_token = ?1 AND chat_number = ?2 AND number > ?3 AND deleted_at IS NULL AND ` + liveChat + ` AND ` + liveApp + `
			ORDER BY number LIMIT ?4`},
		{&db.updateMessage, w, `UPDATE messages SET body = ?4, updated_at = ?5, revision = 1 + ` + chatRevisionExpr + `
			WHERE app_token = ?1 AND chat_number = ?2 AND number = ?3 AND deleted_at IS NULL AND ` + liveChat + ` AND ` + liveApp + `
			RETURNING ` + messageCols},

		// A deletion leaves the row as a tombstone, its body erased, at
		// the chat's next revision; its index entry goes with it, and
		// what its receipt held of it.
		{&db.deleteMessage, w, `UPDATE messages SET body = '', deleted_at = ?4, updated_at = ?4, revision = 1 + ` + chatRevisionExpr + `
			WHERE app_token = ?1 AND chat_number = ?2 AND number = ?3 AND deleted_at IS NULL AND ` + liveChat + ` AND ` + liveApp + `
			RETURNING ` + messageCols},
		{&db.uncountMessage, w, `UPDATE chats SET revision = ?3, messages_count = MAX(messages_count - 1, 0) WHERE app_token = ?1 AND number = ?2`},
		{&db.eraseReceipt, w, `UPDATE receipts SET fingerprint = ` + erasedFingerprint + ` WHERE app_token = ? AND chat_number = ? AND number = ?`},
		{&db.deleteChat, w, `UPDATE chats SET deleted_at = ?3, updated_at = ?3, app_revision = 1 + ` + appRevisionExpr + `
			WHERE app_token = ?1 AND number = ?2 AND deleted_at IS NULL AND ` + liveApp + ` RETURNING ` + chatCols},
		{&db.uncountChat, w, `UPDATE applications SET revision = ?2, chats_count = MAX(chats_count - 1, 0) WHERE token = ?1`},
		{&db.deleteApp, w, `UPDATE applications SET deleted_at = ?2, updated_at = ?2 WHERE token = ?1 AND deleted_at IS NULL`},
		{&db.insertReclaim, w, `INSERT INTO reclaims (app_token, chat_number) VALUES (?, ?)`},
		{&db.insertErasure, w, `INSERT INTO index_erasures (app_token, chat_number) VALUES (?, ?)`},
		{&db.nextReclaim, w, `SELECT id, app_token, chat_number FROM reclaims ORDER BY id LIMIT 1`},
		{&db.doneReclaim, w, `DELETE FROM reclaims WHERE id = ?`},
		// Whether a create goes to a deleted chat or application (the
		// chat's deleted_at, else the application's), or retries a deleted
		// message, for ApplyCreates to drop it.
		{&db.chatDeleted, w, `SELECT COALESCE((SELECT deleted_at FROM chats WHERE app_token = ?1 AND number = ?2),
			(SELECT deleted_at FROM applications WHERE token = ?1))`},
		{&db.messageDeleted, w, `SELECT deleted_at FROM messages WHERE app_token = ? AND chat_number = ? AND number = ?`},
		{&db.searchScope, r, `SELECT id FROM idx.search_scopes WHERE app_token = ? AND chat_number = ?`},
		{&db.addChats, w, `UPDATE applications SET chats_count = chats_count + ?, revision = ? WHERE token = ?`},
		{&db.addMessages, w, `UPDATE chats SET messages_count = messages_count + ?, revision = ? WHERE app_token = ? AND number = ?`},
		{&db.appRevision, w, `SELECT ` + appRevisionExpr},
		{&db.chatRevision, w, `SELECT ` + chatRevisionExpr},
		{&db.setAppRevision, w, `UPDATE applications SET revision = ? WHERE token = ?`},
		{&db.setChatRevision, w, `UPDATE chats SET revision = ? WHERE app_token = ? AND number = ?`},

		// A page of a feed is a range of its revision index, read in one
		// transaction with the feed's current revision.
		// A tombstone is listed only to a client that may hold what it
		// deleted: one resuming from after its creation (?after).
		{&db.feedApp, r, `SELECT revision FROM applications WHERE token = ? AND deleted_at IS NULL`},
		{&db.feedChat, r, `SELECT revision FROM chats WHERE app_token = ?1 AND number = ?2 AND deleted_at IS NULL AND ` + liveApp},
		{&db.chatChanges, r, `SELECT ` + chatCols + ` FROM chats WHERE app_token = ?1 AND app_revision > ?2
			AND (deleted_at IS NULL OR created_app_revision <= ?3) ORDER BY app_revision LIMIT ?4`},
		{&db.messageChanges, r, `SELECT ` + messageCols + ` FROM messages
			WHERE app_token = ?1 AND chat_number = ?2 AND revision > ?3 AND (deleted_at IS NULL OR created_revision <= ?4)
			ORDER BY revision LIMIT ?5`},
		// MAX over a unique index prefix is one seek, however many rows.
		// Tombstones count: a deleted number is never issued again. A
		// deleted application or chat has no number to issue.
		{&db.highestChat, r, `SELECT COALESCE((SELECT MAX(number) FROM chats WHERE app_token = ?1), 0)
			FROM applications WHERE token = ?1 AND deleted_at IS NULL`},
		{&db.highestMessage, r, `SELECT COALESCE((SELECT MAX(number) FROM messages WHERE app_token = ?1 AND chat_number = ?2), 0)
			FROM applications WHERE token = ?1 AND deleted_at IS NULL AND ` + liveChat},
		{&db.watermarks, r, `SELECT token, 0, COALESCE((SELECT MAX(number) FROM chats WHERE app_token = applications.token), 0),
				deleted_at IS NOT NULL
			FROM applications
			UNION ALL
			SELECT app_token, number, COALESCE((SELECT MAX(number) FROM messages
				WHERE app_token = chats.app_token AND chat_number = chats.number), 0), deleted_at IS NOT NULL
			FROM chats`},
	}
	// Every search with a long term has one of these shapes: prepared
	// once, a search is not parsed and planned anew (docs/BENCHMARKS.md).
	for n := range db.searchIndex {
		stmts = append(stmts, stmt{&db.searchIndex[n], r, indexSearch(n + 1)}, stmt{&db.searchQueued[n], r, queuedSearch(n + 1)})
	}
	for _, s := range stmts {
		prepared, err := s.pool.PrepareContext(ctx, s.query)
		if err != nil {
			return err
		}
		*s.dst = prepared
		db.stmts = append(db.stmts, prepared)
	}
	return nil
}

// formatError turns a driver error into what callers may see; what names the
// row looked for ("application", "chat", "message"). It is the one place
// where SQLite errors are interpreted, and it never copies SQL text or ids
// into an *instachat.Error.
func formatError(err error, what string) error {
	var e *msqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return instachat.NotFound(what)
	case errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE && strings.Contains(e.Error(), "revision"):
		// A revision taken twice is a bug of this package, never the
		// client's conflict.
		return fmt.Errorf("sqlite: a feed revision was taken twice: %w", err)
	case errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		// Only applications.token can collide: every other insert skips
		// existing keys with ON CONFLICT (its key) DO NOTHING.
		return instachat.Errorf(instachat.ECONFLICT, "%s already exists", what)
	case errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY:
		return fmt.Errorf("%w: %w", instachat.Errorf(instachat.EUNAVAILABLE, "the database is busy"), err)
	}
	return fmt.Errorf("sqlite: %w", err)
}

type scanner = sqlrow.Scanner

// unixMicro scans an INTEGER of unix microseconds into a UTC time.
type unixMicro struct{ t *time.Time }

func (u unixMicro) Scan(v any) error {
	n, ok := v.(int64)
	if !ok {
		return fmt.Errorf("timestamp is %T, not an integer", v)
	}
	*u.t = time.UnixMicro(n).UTC()
	return nil
}

func scanApp(s scanner) (*instachat.Application, error) {
	var a instachat.Application
	return &a, s.Scan(&a.Token, &a.Name, &a.ChatsCount, &a.Revision, unixMicro{&a.CreatedAt}, unixMicro{&a.UpdatedAt})
}

// nullMicro scans an INTEGER of unix microseconds or NULL.
type nullMicro struct{ t **time.Time }

func (u nullMicro) Scan(v any) error {
	if v == nil {
		*u.t = nil
		return nil
	}
	var t time.Time
	if err := (unixMicro{&t}).Scan(v); err != nil {
		return err
	}
	*u.t = &t
	return nil
}

func scanChat(s scanner) (*instachat.Chat, error) {
	var c instachat.Chat
	return &c, s.Scan(&c.Token, &c.Number, &c.Name, &c.MessagesCount, &c.Revision, &c.AppRevision, &c.CreatedAppRevision,
		unixMicro{&c.CreatedAt}, unixMicro{&c.UpdatedAt}, nullMicro{&c.DeletedAt})
}

func scanMessage(s scanner) (*instachat.Message, error) {
	var m instachat.Message
	return &m, s.Scan(&m.Token, &m.Chat, &m.Number, &m.Body, &m.Revision, &m.CreatedRevision, unixMicro{&m.CreatedAt}, unixMicro{&m.UpdatedAt},
		nullMicro{&m.DeletedAt})
}

// one runs a single-row statement; what names the row for ENOTFOUND.
func one[T any](ctx context.Context, stmt *sql.Stmt, scan func(scanner) (*T, error), what string, args ...any) (*T, error) {
	return sqlrow.One(stmt.QueryRowContext(ctx, args...), scan, formatError, what)
}

// collect scans every row of a query's result.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (*T, error)) ([]*T, error) {
	return sqlrow.All(rows, err, scan, formatError)
}

// Ping reports whether the database file answers, for /healthz.
func (db *DB) Ping(ctx context.Context) error { return formatError(db.read.PingContext(ctx), "") }
