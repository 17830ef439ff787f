// Package mysql is the production Store, for MySQL 8 and MariaDB 10.11+
// (github.com/go-sql-driver/mysql), and the SearchEngine used when no search
// engine is configured.
//
// # Connections
//
// Open does not connect: connections are made when first needed, so a
// process can start while the database is down and answer EUNAVAILABLE
// until it is back. Open does not migrate either; call Migrate, which any
// number of processes may run at once.
//
// # Counts
//
// chats_count and messages_count are kept exact inside the ApplyCreates
// transaction, even when two workers apply overlapping batches; see
// ApplyCreates for how.
//
// # Search
//
// SearchMessageNumbers scans the chat through its unique index, narrowing
// rows with LIKE and deciding with instachat.MatchesTerm: correct, but its
// cost grows with the size of the chat. It is the fallback for deployments
// without a search engine.
package mysql

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"path"
	"slices"
	"strings"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/instachat/instachat"
)

// Options tune Open; the zero value is a sensible default.
type Options struct {
	// MaxOpenConns bounds the pool (default 16). Each connection is a server
	// thread, and every process of the deployment shares max_connections.
	MaxOpenConns int
	// ConnMaxLifetime recycles connections (default 5 minutes), so none is
	// cut by the server's wait_timeout or a proxy while idle in the pool.
	ConnMaxLifetime time.Duration
	// SearchScanLimit bounds the messages of a chat one search examines
	// (default 10,000), and SearchTimeout its time (default 2 s): past
	// either, before its page is full, it answers EINVALID, asking for a
	// narrower query, instead of holding a connection and a server thread
	// for as long as the chat is big.
	SearchScanLimit int
	SearchTimeout   time.Duration
	// SearchErasures records, with each DeleteMessage, the erasure a
	// search engine apart from the store owes (see
	// instachat.SearchErasures): set it wherever one is configured, in
	// every process, so that the worker's SearchEraser finds it.
	SearchErasures bool
}

// DB is a MySQL database holding applications, chats and messages.
type DB struct {
	db *sql.DB

	searchScanLimit int64
	searchTimeout   time.Duration
	searchErasures  bool

	// beforeCommit, set by tests only, runs in each ApplyCreates
	// transaction once its rows are written, holding its locks.
	beforeCommit func(creates []instachat.Create)
}

var (
	_ instachat.Store          = (*DB)(nil)
	_ instachat.SearchEngine   = (*DB)(nil)
	_ instachat.SearchErasures = (*DB)(nil)
)

// Open returns a DB for dsn, in the driver's format
// (user:password@tcp(host:3306)/dbname?param=value). It overrides what the
// store relies on: times as UTC time.Time at microsecond precision, utf8mb4,
// one statement per query, strict SQL mode (so an over-long value fails
// instead of being cut short) and the server's max_allowed_packet (so an
// oversized statement fails in the client instead of losing the connection).
// Parameters are interpolated in the client: one round trip per statement
// instead of a prepare, an execute and a close; the driver escapes them for
// utf8mb4. ctx is not used: Open does not connect.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := mysqldrv.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.MultiStatements = false
	cfg.Collation = "utf8mb4_bin"
	cfg.InterpolateParams = true
	cfg.MaxAllowedPacket = 0
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["sql_mode"] = `CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')`
	if err := cfg.Apply(mysqldrv.TimeTruncate(time.Microsecond)); err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	connector, err := mysqldrv.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	db := sql.OpenDB(connector)
	conns := cmp.Or(opts.MaxOpenConns, 16)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxLifetime(cmp.Or(opts.ConnMaxLifetime, 5*time.Minute))
	return &DB{db: db, searchScanLimit: int64(cmp.Or(opts.SearchScanLimit, 10_000)), searchTimeout: cmp.Or(opts.SearchTimeout, 2*time.Second),
		searchErasures: opts.SearchErasures}, nil
}

// Close closes every connection.
func (db *DB) Close() error {
	return db.db.Close()
}

//go:embed migrations/*.sql
var migrations embed.FS

const (
	// migrateLock is the server-wide lock that serializes Migrate across
	// processes.
	migrateLock = "instachat_migrate"
	// migrateWait is how long Migrate waits for another process's migration.
	migrateWait = 5 * time.Minute
)

// Migrate applies, in file name order, each embedded migration not yet
// recorded in schema_migrations. Processes that run it at once take turns
// under a named lock, so each migration runs once. A migration file holds
// statements each ending with ';' at the end of a line.
func (db *DB) Migrate(ctx context.Context) error {
	return formatError(db.migrate(ctx), "")
}

func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	return db.applyMigrations(ctx, names)
}

// applyMigrations applies the named migrations, in the order given; tests
// stop short of the newest to make the databases older versions left.
func (db *DB) applyMigrations(ctx context.Context, names []string) error {
	// The lock belongs to a session, so everything runs on one connection.
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	var locked sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, ?)`, migrateLock, migrateWait.Seconds()).Scan(&locked); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if locked.Int64 != 1 {
		return fmt.Errorf("migrate: another process held the migration lock for %v", migrateWait)
	}
	// Released explicitly, even when ctx is done: the connection returns to
	// the pool with its session, which would hold the lock on. A release that
	// fails has lost the session, and the lock with it.
	defer conn.ExecContext(context.WithoutCancel(ctx), `DO RELEASE_LOCK(?)`, migrateLock)

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    VARCHAR(255) NOT NULL PRIMARY KEY,
		applied_at DATETIME(6)  NOT NULL
	) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, name := range names {
		if err := applyMigration(ctx, conn, name); err != nil {
			return fmt.Errorf("migration %s: %w", path.Base(name), err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *sql.Conn, name string) error {
	version := path.Base(name)
	var applied int
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&applied); err != nil || applied > 0 {
		return err
	}
	script, err := migrations.ReadFile(name)
	if err != nil {
		return err
	}
	// Statement by statement: the connection refuses multi-statement queries,
	// which would let an injected ';' run more SQL.
	for _, stmt := range strings.SplitAfter(string(script), ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	_, err = conn.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, time.Now())
	return err
}

// Server error numbers the store interprets.
const (
	erDupEntry            = 1062
	erLockWaitTimeout     = 1205
	erDeadlock            = 1213
	erConCount            = 1040 // too many connections
	erServerShutdown      = 1053
	erReadOnly            = 1290 // --read-only, as on a replica after failover
	erConnectionKilled    = 1927 // MariaDB
	erNetPacketTooLarge   = 1153
	erTruncatedWrongValue = 1366 // text that is not valid in the column's character set
	erDataTooLong         = 1406
)

// formatError turns a driver error into what callers may see; what names the
// row looked for ("application", "chat", "message"). It is the one place
// where MySQL errors are interpreted, and it never copies SQL text, values or
// ids into an *instachat.Error: causes travel wrapped, for logs only. An
// error it already translated passes through.
func formatError(err error, what string) error {
	switch {
	case err == nil || errors.As(err, new(*instachat.Error)):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return instachat.NotFound(what)
	case serverError(err, erDupEntry):
		// Only applications.token collides: ApplyCreates inserts only the
		// keys it found missing, and retries when it loses a race.
		return instachat.Errorf(instachat.ECONFLICT, "%s already exists", what)
	case serverError(err, erLockWaitTimeout, erDeadlock):
		return fmt.Errorf("%w: %w", instachat.Errorf(instachat.EUNAVAILABLE, "database busy"), err)
	case serverError(err, erConCount, erServerShutdown, erReadOnly, erConnectionKilled),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, mysqldrv.ErrInvalidConn), errors.As(err, new(net.Error)):
		return fmt.Errorf("%w: %w", instachat.Errorf(instachat.EUNAVAILABLE, "database unavailable"), err)
	case serverError(err, erNetPacketTooLarge, erTruncatedWrongValue, erDataTooLong), errors.Is(err, mysqldrv.ErrPktTooLarge):
		return fmt.Errorf("%w: %w", instachat.Errorf(instachat.EINVALID, "a value does not fit the database"), err)
	}
	return fmt.Errorf("mysql: %w", err)
}

// serverError reports whether err is a server error with one of numbers.
func serverError(err error, numbers ...uint16) bool {
	var me *mysqldrv.MySQLError
	return errors.As(err, &me) && slices.Contains(numbers, me.Number)
}

// txAttempts bounds how often inTx runs a transaction that failed
// transiently.
const txAttempts = 4

// inTx runs fn in a transaction and commits it. A deadlock, a lock wait
// timeout or a duplicate key (ApplyCreates lost a race to insert a key it
// found missing) rolls the whole transaction back, and fn runs again from
// the start after a short, jittered pause.
func (db *DB) inTx(ctx context.Context, isolation sql.IsolationLevel, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.tx(ctx, &sql.TxOptions{Isolation: isolation}, fn)
		if attempt == txAttempts || !serverError(err, erDeadlock, erLockWaitTimeout, erDupEntry) {
			return err
		}
		pause := time.Duration(attempt) * (5*time.Millisecond + rand.N(10*time.Millisecond))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// tx runs fn in one transaction begun with opts and commits it, or rolls
// it back if fn fails.
func (db *DB) tx(ctx context.Context, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// Ping reports whether the database answers, for /healthz.
func (db *DB) Ping(ctx context.Context) error { return formatError(db.db.PingContext(ctx), "") }
