package mysql

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
	"github.com/instachat/instachat/internal/testenv"
	"github.com/instachat/instachat/search"
)

// openTest opens a migrated database of the test's own.
func openTest(t testing.TB) *DB {
	t.Helper()
	db := openDSN(t, testenv.MySQLDatabase(t))
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return db
}

func openDSN(t testing.TB, dsn string) *DB {
	t.Helper()
	db, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newApp stores an application of the test's own.
func newApp(t testing.TB, db *DB) *instachat.Application {
	t.Helper()
	app := &instachat.Application{Token: instachat.NewToken(), Name: t.Name()}
	if err := db.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	return app
}

// populateChat stores chat number of token with messages of about 100
// bytes, numbered and revised 1…n, in multi-row INSERTs of a few thousand
// rows: as ApplyCreates would leave them, several times faster.
func populateChat(t testing.TB, db *DB, token string, number int64, n int) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC()
	chat := &instachat.Chat{Token: token, Number: number, CreatedAt: now, UpdatedAt: now}
	if err := db.ApplyCreates(ctx, []instachat.Create{{Chat: chat}}); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("lorem ipsum ", 9)[:100]
	const rows = 2000
	var q strings.Builder
	args := make([]any, 0, rows*8)
	for first := 1; first <= n; first += rows {
		q.Reset()
		args = args[:0]
		q.WriteString("INSERT INTO messages (app_token, chat_number, number, body, revision, created_revision, created_at, updated_at) VALUES ")
		for m := first; m < first+rows && m <= n; m++ {
			if m > first {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, token, number, m, body, m, m, now, now)
		}
		if _, err := db.db.ExecContext(ctx, q.String(), args...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.db.ExecContext(ctx, `UPDATE chats SET messages_count = ?, revision = ? WHERE app_token = ? AND number = ?`,
		n, n, token, number); err != nil {
		t.Fatal(err)
	}
}

func TestStoreConformance(t *testing.T) {
	conformance.TestStore(t, func(t *testing.T) instachat.Store { return openTest(t) })
}

func TestStoreConformanceShared(t *testing.T) {
	db := openTest(t)
	conformance.TestStore(t, func(*testing.T) instachat.Store { return db })
}

func TestSearcherConformance(t *testing.T) {
	conformance.TestSearcher(t, conformance.SearchEngine{Engine: conformance.EngineMySQL},
		func(t *testing.T) (instachat.Searcher, func(context.Context, []*instachat.Message) error) {
			db := openTest(t)
			return search.New(db, db), conformance.PutThroughStore(db, nil)
		})
}

// TestSearchForgetConformance: the store's own search forgets what its
// Reclaim erases, ForgetScope having nothing to do.
func TestSearchForgetConformance(t *testing.T) {
	conformance.TestSearchForget(t,
		func(t *testing.T) (instachat.Store, instachat.SearchEngine, func(context.Context, []*instachat.Message) error) {
			db := openTest(t)
			return db, db, conformance.PutThroughStore(db, nil)
		})
}

func TestMigrateConcurrently(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	// Two pools stand for two processes starting at once.
	dbs := []*DB{openDSN(t, dsn), openDSN(t, dsn)}
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(t.Context()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent Migrate: %v", err)
	}
	if err := dbs[0].Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate of a migrated database: %v", err)
	}

	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := dbs[1].db.QueryContext(t.Context(), `SELECT version, COUNT(*) FROM schema_migrations GROUP BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var versions []string
	for rows.Next() {
		var version string
		var n int
		if err := rows.Scan(&version, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("migration %s recorded %d times", version, n)
		}
		versions = append(versions, "migrations/"+version)
	}
	if slices.Sort(versions); !slices.Equal(versions, names) {
		t.Errorf("schema_migrations records %v, want %v", versions, names)
	}
	if _, err := dbs[1].FindApplication(t.Context(), instachat.NewToken()); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("FindApplication on the migrated schema: %v, want ENOTFOUND", err)
	}
}

// TestApplyCreatesOverlapping has workers apply the same creates in
// different batches and orders, messages often before their chat, while
// Recount runs beside them: every count must end exact.
func TestApplyCreatesOverlapping(t *testing.T) {
	db := openTest(t)
	const workers, chats, messages = 4, 6, 40
	for round := range 3 {
		app := newApp(t, db)
		var creates []instachat.Create
		for c := range int64(chats) {
			creates = append(creates, instachat.Create{Chat: &instachat.Chat{Token: app.Token, Number: c + 1}})
			for m := range int64(messages) {
				creates = append(creates, instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: c + 1, Number: m + 1, Body: "overlap"}})
			}
		}
		ctx, stop := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				order := slices.Clone(creates)
				rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				for len(order) > 0 {
					n := min(len(order), 1+rng.IntN(60))
					err := db.ApplyCreates(t.Context(), order[:n])
					switch instachat.ErrorCode(err) {
					case "":
						order = order[n:]
					case instachat.EUNAVAILABLE: // the queue would deliver the batch again
						t.Logf("worker %d retries a batch: %v", w, err)
					default:
						t.Errorf("ApplyCreates: %v", err)
						return
					}
				}
			})
		}
		// An editor beside them, its edits landing in chats with and
		// without their rows; the revisions it is handed out, by chat.
		var edits sync.Map
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(round), 99))
			for i := 0; ctx.Err() == nil && i < 200; i++ {
				chat, n := 1+rng.Int64N(chats), 1+rng.Int64N(messages)
				m, err := db.UpdateMessage(t.Context(), app.Token, chat, n, fmt.Sprint("edit ", i), time.Now())
				switch instachat.ErrorCode(err) {
				case "":
					revs, _ := edits.LoadOrStore(chat, &[]int64{})
					*revs.(*[]int64) = append(*revs.(*[]int64), m.Revision)
				case instachat.ENOTFOUND, instachat.EUNAVAILABLE:
				default:
					t.Errorf("UpdateMessage: %v", err)
					return
				}
			}
		})
		recounted := make(chan error)
		go func() {
			for ctx.Err() == nil {
				if err := db.Recount(ctx); err != nil && ctx.Err() == nil {
					recounted <- err
					return
				}
			}
			recounted <- nil
		}()
		wg.Wait()
		stop()
		if err := <-recounted; err != nil {
			t.Errorf("Recount beside workers: %v", err)
		}

		got, err := db.FindApplication(t.Context(), app.Token)
		if err != nil || got.ChatsCount != chats {
			t.Fatalf("round %d: chats_count = %v, %v; want %d", round, got, err, chats)
		}
		list, err := db.ListChats(t.Context(), app.Token, 0, chats+1)
		if err != nil || len(list) != chats {
			t.Fatalf("round %d: ListChats = %d, %v", round, len(list), err)
		}
		for _, c := range list {
			if c.MessagesCount != messages {
				t.Errorf("round %d: chat %d messages_count = %d, want %d", round, c.Number, c.MessagesCount, messages)
			}
			// Every creation and every edit took one revision of the
			// chat, however the batches overlapped.
			msgs, err := db.ListMessages(t.Context(), app.Token, c.Number, 0, messages+1)
			if err != nil {
				t.Fatal(err)
			}
			var revs []int64
			if e, ok := edits.Load(c.Number); ok {
				revs = append(revs, *e.(*[]int64)...)
			}
			for _, m := range msgs {
				revs = append(revs, m.CreatedRevision)
			}
			slices.Sort(revs)
			for i, r := range revs {
				if r != int64(i+1) || c.Revision != int64(len(revs)) {
					t.Fatalf("round %d: chat %d at revision %d, the revisions of its creations and edits are %v; want 1..%d each once",
						round, c.Number, c.Revision, revs, len(revs))
				}
			}
		}
	}
}

// TestRecountRepairs: Recount writes the counts the rows make, whatever
// the columns said.
func TestRecountRepairs(t *testing.T) {
	db := openTest(t)
	app := newApp(t, db)
	creates := []instachat.Create{{Chat: &instachat.Chat{Token: app.Token, Number: 1}}, {Chat: &instachat.Chat{Token: app.Token, Number: 2}}}
	for n := range int64(3) {
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: 1, Number: n + 1, Body: "x"}})
	}
	if err := db.ApplyCreates(t.Context(), creates); err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.ExecContext(t.Context(), `UPDATE chats SET messages_count = 99`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.ExecContext(t.Context(), `UPDATE applications SET chats_count = 99`); err != nil {
		t.Fatal(err)
	}
	if err := db.Recount(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindApplication(t.Context(), app.Token)
	if err != nil || got.ChatsCount != 2 {
		t.Errorf("chats_count after Recount = %v, %v; want 2", got, err)
	}
	for number, want := range map[int64]int64{1: 3, 2: 0} {
		if c, err := db.FindChat(t.Context(), app.Token, number); err != nil || c.MessagesCount != want {
			t.Errorf("chat %d after Recount = %v, %v; want messages_count %d", number, c, err, want)
		}
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	// Port 1 on the loopback refuses connections: nothing listens there.
	db, err := Open(t.Context(), "root@tcp(127.0.0.1:1)/instachat", Options{})
	if err != nil {
		t.Fatalf("Open does not connect, so it must not fail: %v", err)
	}
	defer db.Close()
	_, err = db.FindApplication(t.Context(), instachat.NewToken())
	if instachat.ErrorCode(err) != instachat.EUNAVAILABLE || instachat.ErrorMessage(err) != "database unavailable" {
		t.Errorf("FindApplication on an unreachable server: %v; want EUNAVAILABLE \"database unavailable\"", err)
	}
	if err := db.Migrate(t.Context()); instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
		t.Errorf("Migrate on an unreachable server: %v; want EUNAVAILABLE", err)
	}
	if _, err := Open(t.Context(), "not a dsn", Options{}); err == nil {
		t.Error("Open of a malformed DSN succeeded")
	}
}

func TestErrorsAreClientSafe(t *testing.T) {
	db := openTest(t)
	app := newApp(t, db)
	errs := map[string]error{"application already exists": db.CreateApplication(t.Context(), app)}
	_, errs["application not found"] = db.FindApplication(t.Context(), instachat.NewToken())
	_, errs["chat not found"] = db.FindChat(t.Context(), app.Token, 1)
	_, errs["message not found"] = db.FindMessage(t.Context(), app.Token, 1, 1)
	// Over MEDIUMTEXT and max_allowed_packet: a create that can never be
	// stored, which the worker sets aside.
	huge := instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: 1, Number: 1, Body: strings.Repeat("x", 16<<20)}}
	errs["a value does not fit the database"] = db.ApplyCreates(t.Context(), []instachat.Create{huge})
	for want, err := range errs {
		if got := instachat.ErrorMessage(err); got != want {
			t.Errorf("client sees %q (%v), want %q", got, err, want)
		}
	}
	if code := instachat.ErrorCode(errs["a value does not fit the database"]); code != instachat.EINVALID {
		t.Errorf("oversized body: code %q, want EINVALID", code)
	}
}

// TestLikePatternKeepsEveryMatch checks, on the server, that the LIKE
// narrowing of search keeps every body MatchesTerm accepts: for each rune c,
// "x" c "y" must match the pattern of its lower-cased form.
func TestLikePatternKeepsEveryMatch(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	if _, err := db.db.ExecContext(ctx, `CREATE TABLE probe (body VARCHAR(8) NOT NULL, pattern VARCHAR(32) NOT NULL)
		DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin`); err != nil {
		t.Fatal(err)
	}
	var args []any
	flush := func() {
		if _, err := db.db.ExecContext(ctx, `INSERT INTO probe (body, pattern) VALUES `+tuples(len(args)/2, 2), args...); err != nil {
			t.Fatal(err)
		}
		args = args[:0]
	}
	// Every assigned rune but NUL: unassigned and private-use runes have no
	// case, and the collation weighs them by code point.
	for r := rune(1); r <= unicode.MaxRune; r++ {
		if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf) {
			continue
		}
		body := "x" + string(r) + "y"
		if !instachat.MatchesTerm(body, strings.ToLower(body)) {
			t.Fatalf("MatchesTerm(%q, its lower case) is false", body)
		}
		if args = append(args, body, likePattern(strings.ToLower(body))); len(args) == 2*10000 {
			flush()
		}
	}
	flush()
	rows, err := db.db.QueryContext(ctx, `SELECT body, pattern FROM probe
		WHERE NOT body COLLATE utf8mb4_unicode_ci LIKE pattern ESCAPE '!' LIMIT 20`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var body, pattern string
		if err := rows.Scan(&body, &pattern); err != nil {
			t.Fatal(err)
		}
		t.Errorf("%q (%U) does not match %q: search would miss it", body, []rune(body)[1], pattern)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestTimesRoundTripInUTC(t *testing.T) {
	db := openTest(t)
	at := time.Date(2031, 2, 3, 4, 5, 6, 789_123_456, time.FixedZone("UTC-3", -3*3600))
	app := &instachat.Application{Token: instachat.NewToken(), Name: "time", CreatedAt: at, UpdatedAt: at}
	if err := db.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindApplication(t.Context(), app.Token)
	if err != nil {
		t.Fatal(err)
	}
	if want := at.Truncate(time.Microsecond); !got.CreatedAt.Equal(want) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at = %v, want %v in UTC", got.CreatedAt, want)
	}
}

// TestReclaimBoundsItsStatement: however many rows the worker asks for, one
// Reclaim deletes at most reclaimMaxRows, so no statement of a large
// delete's reclaim holds its locks for long (see BenchmarkReclaimBatch).
func TestReclaimBoundsItsStatement(t *testing.T) {
	db := openTest(t)
	app := newApp(t, db)
	populateChat(t, db, app.Token, 1, reclaimMaxRows+100)
	if _, err := db.DeleteChat(t.Context(), app.Token, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	var got []int64
	for range 10 {
		n, err := db.Reclaim(t.Context(), 1000, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got = append(got, n); n == 0 {
			break
		}
	}
	// Two batches of messages, then the reclaim's own row, then nothing.
	if want := []int64{reclaimMaxRows, 100, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("Reclaim(1000) erased %v, want %v", got, want)
	}
}
