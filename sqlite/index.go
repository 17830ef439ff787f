package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// The search index lives in a file of its own beside the store's (its path
// plus indexSuffix), written by an indexer on its own connection: SQLite
// locks a file for one writer at a time, and with the index in the store's
// file every create's transaction indexed its messages (about half of what
// a commit cost) and every long index statement, such as FTS5 merging the
// segments a deleted chat left, held up every create.
//
// The store's triggers queue every stored message and every changed body
// in index_queue, in the transaction of the change (migrations/0008). The
// indexer applies the queue in batches, in a transaction of the index's
// file that also advances index_state.queue_seq; it then deletes what it
// applied from the queue. A crash between the two leaves queue rows at or
// below the watermark, which the next batch skips: nothing is indexed twice
// or lost.
//
// Search stays exact however far the indexer lags: it reads the store
// first, so the queue rows it sees are at least those the index it reads
// after does not hold yet, and decides the chat's queued messages by
// instachat.MatchesTerm directly (see matches in search.go).
//
// Deleting a chat or an application queues an erasure (index_erasures);
// the indexer deletes the entries of its scopes in bounded steps, then
// merges the index's segments until the tombstones those deletes left, and
// the trigrams of the bodies under them, are gone from its pages. A merge
// may hold the index's lock for a second on a large index; it holds up
// only the indexer, whose queue search covers meanwhile.
const indexSuffix = ".index"

//go:embed index_migrations/*.sql
var indexMigrations embed.FS

const (
	// indexBatch is the most queue rows one indexer transaction applies,
	// and indexBatchBytes about the most bytes of bodies it holds.
	indexBatch      = 4096
	indexBatchBytes = 8 << 20
	// The indexer lets changes gather before it reads them, until
	// indexGather are queued or indexDelay passed since the first: one
	// batch, one FTS5 segment, for all of them. FTS5 costs less per entry
	// the larger the batch (100k entries of 100 bytes over 16 chats, on
	// this machine: 33 µs each in batches of 64, 29 in 256, 15 in 1024,
	// 14 in 4096), and search covers what is queued, so waiting costs
	// search a scan of the queue, never a result.
	indexGather = 1024
	indexDelay  = 200 * time.Millisecond
	// indexPoll is how often an idle indexer looks at the queue without
	// being told of a change (another process may have written it).
	indexPoll = time.Second
	// eraseRows is the most index entries one erasure step deletes, and
	// eraseScopes the most scopes (chats) whose entries it deletes.
	eraseRows   = 2000
	eraseScopes = 500
	// erasePages is how many pages of merging one erasure step asks of
	// FTS5 (see eraseStep).
	erasePages = 64
	// erasePause is how many times an erasure step's time the indexer
	// waits before the next: the erasure takes at most a fifth of a core.
	erasePause = 4
)

// indexer owns the index file's writer connection, which has the store's
// file attached as "store".
type indexer struct {
	conn   *sql.Conn
	pool   *sql.DB
	logger *slog.Logger
	// trimStore deletes the queue rows up to seq and the erasures up to
	// erasure from the store, once the index applied them.
	trimStore func(ctx context.Context, seq, erasure int64) error
	trimmed   [2]int64 // what the last trimStore was given

	// mu serializes the indexer's steps: the goroutine's and syncIndex's.
	mu     sync.Mutex
	poke   chan struct{}
	queued atomic.Int64 // rows notify was told of since the last drain began
	cancel context.CancelFunc
	done   chan struct{}
}

// attachConnector opens connections of driver d to dsn with another file
// attached, so that one statement can read both.
type attachConnector struct {
	d          driver.Driver
	dsn        string
	path, name string
}

func (c attachConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.d.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	exec, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("sqlite: the driver's connections cannot execute statements")
	}
	if _, err := exec.ExecContext(ctx, `ATTACH DATABASE ? AS `+c.name, []driver.NamedValue{{Ordinal: 1, Value: c.path}}); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

func (c attachConnector) Driver() driver.Driver { return c.d }

// openIndex opens the index file of the store at path, brings its schema up
// to date, builds it from the store when it holds nothing or does not match
// the store (see consistent), and starts the indexer, which trims the
// store's queue through trimStore.
func openIndex(path string, pragmas []string, store *sql.DB, trimStore func(context.Context, int64, int64) error) (*indexer, error) {
	ctx := context.Background()
	ix, err := openIndexFile(ctx, path, pragmas, store)
	if err != nil {
		// A file that is not a database, or a corrupt one, holds nothing
		// the store does not: it is rebuilt.
		slog.Default().Warn("rebuilding the search index", "file", path+indexSuffix, "reason", err)
		if err := removeIndexFile(path); err != nil {
			return nil, err
		}
		if ix, err = openIndexFile(ctx, path, pragmas, store); err != nil {
			return nil, fmt.Errorf("sqlite: index: %w", err)
		}
	}
	ix.trimStore = trimStore
	ctx, ix.cancel = context.WithCancel(ctx)
	go ix.run(ctx)
	return ix, nil
}

// openIndexFile opens, migrates and, when needed, builds the index file.
func openIndexFile(ctx context.Context, path string, pragmas []string, store *sql.DB) (*indexer, error) {
	// The store is attached read-only: a transaction of the indexer, which
	// begins IMMEDIATE, would otherwise take the store's write lock too.
	storeURI := dsn(path, url.Values{"mode": {"ro"}})
	// The index's WAL is cut back after a build or a large erasure, and
	// the pages a merge frees are zeroed (see Open).
	pragmas = append(slices.Clone(pragmas), "journal_size_limit(67108864)", "secure_delete(ON)")
	pool := sql.OpenDB(attachConnector{store.Driver(), dsnPragmas(path+indexSuffix, pragmas, true), storeURI, "store"})
	pool.SetMaxOpenConns(1)
	conn, err := pool.Conn(ctx)
	if err != nil {
		pool.Close()
		return nil, err
	}
	ix := &indexer{conn: conn, pool: pool, logger: slog.Default(), poke: make(chan struct{}, 1), done: make(chan struct{})}
	if err := ix.open(ctx); err != nil {
		ix.close()
		return nil, err
	}
	return ix, nil
}

// removeIndexFile deletes the index file of the store at path, with its
// WAL, which SQLite would otherwise replay into the new file.
func removeIndexFile(path string) error {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + indexSuffix + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlite: index: %w", err)
		}
	}
	return nil
}

func (ix *indexer) open(ctx context.Context) error {
	names, err := fs.Glob(indexMigrations, "index_migrations/*.sql")
	if err != nil {
		return err
	}
	if err := runMigrations(ctx, ix.conn, indexMigrations, names); err != nil {
		return err
	}
	var built int
	if err := ix.conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM index_state`).Scan(&built); err != nil {
		return err
	}
	if built == 1 {
		return ix.consistent(ctx)
	}
	return ix.build(ctx)
}

// consistent fails unless the index holds everything the store trimmed
// from its queue and its erasures, and nothing the store never queued: an
// index file restored apart from its store, one from another data dir, or
// one whose last commits a power loss took (synchronous NORMAL) while the
// store kept its trim. The store trimmed every row below its queue's
// first (below what it ever issued, when empty), and issued none above
// sqlite_sequence.
func (ix *indexer) consistent(ctx context.Context) error {
	var seq, erasure, issuedSeq, issuedErasure, firstSeq, firstErasure int64
	var id, storeID string
	err := ix.conn.QueryRowContext(ctx, `SELECT s.queue_seq, s.erasure, s.store_id, (SELECT id FROM store.store_identity),
			COALESCE((SELECT seq FROM store.sqlite_sequence WHERE name = 'index_queue'), 0),
			COALESCE((SELECT seq FROM store.sqlite_sequence WHERE name = 'index_erasures'), 0),
			COALESCE((SELECT MIN(seq) FROM store.index_queue), -1),
			COALESCE((SELECT MIN(id) FROM store.index_erasures), -1)
		FROM index_state s`).Scan(&seq, &erasure, &id, &storeID, &issuedSeq, &issuedErasure, &firstSeq, &firstErasure)
	if err != nil {
		return err
	}
	first := func(v, issued int64) int64 {
		if v < 0 {
			return issued + 1
		}
		return v
	}
	switch {
	case id != storeID:
		return errors.New("the index was built from another store")
	case seq > issuedSeq || erasure > issuedErasure:
		return errors.New("the index holds changes the store never queued: the store is older than the index")
	case seq < first(firstSeq, issuedSeq)-1 || erasure < first(firstErasure, issuedErasure)-1:
		return errors.New("the index lacks changes the store no longer queues: the index is older than the store")
	}
	return nil
}

// build indexes every live message of the store, in rowid order so that
// FTS5 writes few segments, then merges them into one, in one transaction
// that records the queue's and the erasures' watermarks of the same
// snapshot of the store: every change the store issued so far is in what
// the build read. A store from before migrations/0008, whose index was in
// its own file, is indexed here once, at its first start; so is a store
// whose index file was lost.
func (ix *indexer) build(ctx context.Context) error {
	tx, err := ix.conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var messages int64
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM store.messages`).Scan(&messages); err != nil {
		return err
	}
	start := time.Now()
	if messages > 0 {
		ix.logger.Info("building the search index from the store's messages", "messages", messages)
	}
	for _, q := range []string{
		`INSERT INTO index_state (id, queue_seq, erasure, store_id)
			SELECT 1, COALESCE((SELECT seq FROM store.sqlite_sequence WHERE name = 'index_queue'), 0),
				COALESCE((SELECT seq FROM store.sqlite_sequence WHERE name = 'index_erasures'), 0),
				(SELECT id FROM store.store_identity)`,
		`INSERT INTO search_scopes (app_token, chat_number)
			SELECT DISTINCT app_token, chat_number FROM store.messages m WHERE ` + indexedMessage + `
			ORDER BY app_token, chat_number`,
		`INSERT INTO message_index (rowid, body)
			SELECT s.id << 32 | (0xffffffff - m.number), instachat_lower(m.body)
			FROM search_scopes s JOIN store.messages m ON m.app_token = s.app_token AND m.chat_number = s.chat_number
			WHERE ` + indexedMessage + ` AND m.number BETWEEN 1 AND 0xffffffff
			ORDER BY s.id, m.number DESC`,
		`INSERT INTO message_index (message_index) VALUES ('optimize')`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if messages > 0 {
		ix.logger.Info("built the search index", "messages", messages, "seconds", time.Since(start).Seconds())
	}
	return nil
}

// indexedMessage holds for a message row m the index has an entry for: not
// deleted, nor its chat, nor its application.
const indexedMessage = `m.deleted_at IS NULL
	AND NOT EXISTS (SELECT 1 FROM store.chats c WHERE c.app_token = m.app_token AND c.number = m.chat_number AND c.deleted_at IS NOT NULL)
	AND NOT EXISTS (SELECT 1 FROM store.applications a WHERE a.token = m.app_token AND a.deleted_at IS NOT NULL)`

// run applies the queue and the erasures whenever told of a change, and
// every indexPoll, until ctx ends.
func (ix *indexer) run(ctx context.Context) {
	defer close(ix.done)
	poll := time.NewTicker(indexPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ix.poke:
			gathered := time.NewTimer(indexDelay)
		gather:
			for ix.queued.Load() < indexGather {
				select {
				case <-ctx.Done():
					gathered.Stop()
					return
				case <-gathered.C:
					break gather
				case <-ix.poke:
				}
			}
			gathered.Stop()
		case <-poll.C:
		}
		ix.queued.Store(0)
		if err := ix.drain(ctx, true); err != nil && ctx.Err() == nil {
			ix.logger.WarnContext(ctx, "indexing messages for search", "err", err)
		}
	}
}

// drain applies the queue, then the erasures a step at a time, applying
// the queue again between steps, until neither has anything left. paced
// waits four times as long as each erasure step took before the next: the
// steps hold only the index's lock, but they take a core, and on a
// machine of two a 1,000,000-message chat's erasure at a step every step
// doubled the creates' p99 (docs/BENCHMARKS.md).
func (ix *indexer) drain(ctx context.Context, paced bool) error {
	for {
		for {
			n, err := ix.step(ctx, ix.indexBatch)
			if err != nil {
				return err
			}
			if n == 0 {
				break
			}
			if err := ix.trim(ctx); err != nil {
				return err
			}
		}
		start := time.Now()
		n, err := ix.step(ctx, ix.eraseStep)
		if err != nil {
			return err
		}
		if n == 0 {
			return ix.trim(ctx)
		}
		if paced {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(erasePause * time.Since(start)):
			}
		}
	}
}

func (ix *indexer) step(ctx context.Context, fn func(context.Context, *sql.Tx) (int64, error)) (int64, error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	tx, err := ix.conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	n, err := fn(ctx, tx)
	if err != nil || n == 0 {
		return n, err
	}
	return n, tx.Commit()
}

// queued is a message the queue names, as the store has it now.
type queued struct {
	id, seq    int64
	edit, live bool
	token      string
	chat       int64
	number     int64
	body       string
}

// indexBatch applies up to indexBatch rows of the queue after the index's
// watermark and advances it, returning how many it applied. A message
// whose row is gone loses its entry; the rows Reclaim deletes are not
// queued (their chat's erasure deletes their entries).
func (ix *indexer) indexBatch(ctx context.Context, tx *sql.Tx) (int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT q.seq, q.message_id, q.edit, q.app_token, q.chat_number, q.number, m.body,
			m.id IS NOT NULL AND `+indexedMessage+`
		FROM store.index_queue q LEFT JOIN store.messages m ON m.id = q.message_id
		WHERE q.seq > (SELECT queue_seq FROM index_state) ORDER BY q.seq LIMIT ?`, indexBatch)
	if err != nil {
		return 0, err
	}
	var batch []queued
	size := 0
	for size < indexBatchBytes && rows.Next() {
		var q queued
		var edit int
		var body sql.NullString
		if err := rows.Scan(&q.seq, &q.id, &edit, &q.token, &q.chat, &q.number, &body, &q.live); err != nil {
			rows.Close()
			return 0, err
		}
		q.edit, q.body = edit > 0, body.String
		batch = append(batch, q)
		size += len(q.body)
	}
	if err := rows.Close(); err != nil || len(batch) == 0 {
		return 0, err
	}
	last := batch[len(batch)-1].seq
	// A message queued twice is applied once, as it is now; it needs its
	// old entry deleted unless the batch also holds its create.
	byID := map[int64]*queued{}
	var msgs []*queued
	for i := range batch {
		q := &batch[i]
		if seen := byID[q.id]; seen != nil {
			seen.live, seen.body = q.live, q.body
			continue
		}
		byID[q.id] = q
		msgs = append(msgs, q)
	}
	type entry struct {
		rowid int64
		body  string
	}
	var deletes []int64
	var inserts []entry
	scopes := map[chatKey]int64{}
	for _, q := range msgs {
		k := chatKey{q.token, q.chat}
		scope := scopes[k]
		if scope == 0 {
			// Looked up again until found: a chat's first message in
			// the batch may be one deleted, which adds no scope.
			if scope, err = ix.scope(ctx, tx, k, q.live); err != nil {
				return 0, err
			}
			if scope == 0 {
				continue // deleted before it was ever indexed
			}
			scopes[k] = scope
		}
		rowid := indexRowid(scope, q.number)
		if q.edit {
			deletes = append(deletes, rowid)
		}
		if q.live && q.number >= 1 && q.number <= maxMessageNumber {
			inserts = append(inserts, entry{rowid, indexText(q.body)})
		}
	}
	// Deletes first, then the inserts in rowid order: FTS5 flushes its
	// pending entries whenever a rowid is not above the last it wrote.
	slices.Sort(deletes)
	slices.SortFunc(inserts, func(a, b entry) int { return cmp.Compare(a.rowid, b.rowid) })
	for _, rowid := range deletes {
		if _, err := tx.ExecContext(ctx, `DELETE FROM message_index WHERE rowid = ?`, rowid); err != nil {
			return 0, err
		}
	}
	if len(inserts) > 0 {
		insert, err := tx.PrepareContext(ctx, `INSERT INTO message_index (rowid, body) VALUES (?, ?)`)
		if err != nil {
			return 0, err
		}
		defer insert.Close()
		for _, e := range inserts {
			if _, err := insert.ExecContext(ctx, e.rowid, e.body); err != nil {
				return 0, err
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE index_state SET queue_seq = ?`, last); err != nil {
		return 0, err
	}
	return int64(len(batch)), nil
}

// scope returns the chat's scope id, adding one when create is set and it
// has none; 0 when it has none.
func (ix *indexer) scope(ctx context.Context, tx *sql.Tx, k chatKey, create bool) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM search_scopes WHERE app_token = ? AND chat_number = ?`, k.token, k.number).Scan(&id)
	if !errors.Is(err, sql.ErrNoRows) || !create {
		if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
		return id, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO search_scopes (app_token, chat_number) VALUES (?, ?)`, k.token, k.number)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// eraseStep does one bounded step of the oldest erasure after the index's
// watermark and returns 1, or 0 when none is left:
//
//   - delete up to eraseRows entries of up to eraseScopes of its scopes
//     (FTS5 records tombstones), and each scope once it has none;
//   - once no scope is left, ask FTS5 for erasePages pages of merging, with
//     deletemerge at 1 (a segment with 1% of its entries deleted is worth
//     rewriting, without them) and usermerge at its highest, 16, so that
//     the step goes to the tombstoned segments rather than the ordinary
//     merging creates do anyway; until a merge finds nothing to do or the
//     erasure spent its budget, twice the index's pages when its merging
//     began;
//   - then advance the watermark.
//
// FTS5 counts a merge's work in pages written: a run of deleted entries it
// skips costs reading without writing, so one step can take much longer
// than its pages suggest (up to a second for half a million entries): it
// holds only the index's lock.
func (ix *indexer) eraseStep(ctx context.Context, tx *sql.Tx) (int64, error) {
	var id, chat int64
	var token string
	var budget sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT e.id, e.app_token, e.chat_number, s.merge_pages FROM store.index_erasures e, index_state s
		WHERE e.id > s.erasure ORDER BY e.id LIMIT 1`).Scan(&id, &token, &chat, &budget)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if !budget.Valid {
		// Up to eraseRows entries of as many of its scopes as they take
		// (an application's chats are often small), each scope deleted
		// once its range is empty.
		rows, err := tx.QueryContext(ctx, `SELECT id FROM search_scopes WHERE app_token = ?1 AND (chat_number = ?2 OR ?2 = 0)
			ORDER BY id LIMIT ?3`, token, chat, eraseScopes)
		if err != nil {
			return 0, err
		}
		var scopes []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return 0, err
			}
			scopes = append(scopes, id)
		}
		if err := rows.Close(); err != nil {
			return 0, err
		}
		left := int64(eraseRows)
		for _, scope := range scopes {
			res, err := tx.ExecContext(ctx, `DELETE FROM message_index WHERE rowid IN
				(SELECT rowid FROM message_index WHERE rowid BETWEEN ? AND ? LIMIT ?)`, scope<<32, scope<<32|maxMessageNumber, left)
			if err != nil {
				return 0, err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return 0, err
			}
			if left -= n; left <= 0 {
				break // the scope may hold more: the next step goes on
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM search_scopes WHERE id = ?`, scope); err != nil {
				return 0, err
			}
		}
		if len(scopes) > 0 {
			return 1, nil
		}
		if err := tx.QueryRowContext(ctx, `SELECT 2 * COUNT(*) + 16 FROM message_index_data`).Scan(&budget.Int64); err != nil {
			return 0, err
		}
	}
	merged := false
	if budget.Int64 > 0 {
		if merged, err = mergeDeleted(ctx, tx, erasePages); err != nil {
			return 0, err
		}
	}
	if merged {
		_, err := tx.ExecContext(ctx, `UPDATE index_state SET merge_pages = ?`, budget.Int64-erasePages)
		return 1, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE index_state SET erasure = ?, merge_pages = NULL`, id)
	return 1, err
}

// mergeDeleted asks FTS5 for up to pages pages of merging of segments with
// deleted entries (see eraseStep) and reports whether it did any.
func mergeDeleted(ctx context.Context, tx *sql.Tx, pages int) (bool, error) {
	set := func(option string, v int) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO message_index (message_index, rank) VALUES (?, ?)`, option, v)
		return err
	}
	var before, after int64
	err := errors.Join(set("deletemerge", 1), set("usermerge", 16),
		tx.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&before))
	if err == nil {
		err = errors.Join(set("merge", pages), tx.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&after),
			set("usermerge", 4), set("deletemerge", 0))
	}
	// The merge command is one change; pages it wrote count more.
	return after-before > 1, err
}

// notify tells the indexer that the queue grew by about n rows, or the
// erasures.
func (ix *indexer) notify(n int) {
	ix.queued.Add(int64(n))
	select {
	case ix.poke <- struct{}{}:
	default:
	}
}

// trim deletes from the store the queue rows and erasures the index has
// applied.
func (ix *indexer) trim(ctx context.Context) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var seq, erasure int64
	if err := ix.conn.QueryRowContext(ctx, `SELECT queue_seq, erasure FROM index_state`).Scan(&seq, &erasure); err != nil {
		return err
	}
	if seq == ix.trimmed[0] && erasure == ix.trimmed[1] {
		return nil
	}
	if err := ix.trimStore(ctx, seq, erasure); err != nil {
		return err
	}
	ix.trimmed = [2]int64{seq, erasure}
	return nil
}

// close stops the indexer and closes its connection.
func (ix *indexer) close() error {
	if ix.cancel != nil {
		ix.cancel()
		<-ix.done
	}
	return errors.Join(ix.conn.Close(), ix.pool.Close())
}
