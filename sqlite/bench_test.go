package sqlite

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

var benchWords = strings.Fields(`the quick brown fox jumps over lazy dog hello world chat message
	lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore
	et dolore magna aliqua café école naïve über straße 日本語 supercalifragilistic`)

// benchBody is about 100 bytes of words.
func benchBody(rng *rand.Rand) string {
	var b strings.Builder
	for b.Len() < 100 {
		b.WriteString(benchWords[rng.IntN(len(benchWords))])
		b.WriteByte(' ')
	}
	return b.String()
}

// benchChat opens a database with one application and one chat of n
// messages.
func benchChat(b *testing.B, opts Options, n int) (*DB, string) {
	b.Helper()
	db, err := Open(filepath.Join(b.TempDir(), "bench.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	now := time.Now()
	token := instachat.NewToken()
	if err := db.CreateApplication(b.Context(), &instachat.Application{Token: token, Name: "bench", CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	benchApply(b, db, []instachat.Create{{Chat: &instachat.Chat{Token: token, Number: 1, CreatedAt: now, UpdatedAt: now}}})
	rng := rand.New(rand.NewPCG(1, 1))
	for from := 1; from <= n; from += 1000 {
		benchApply(b, db, benchMessages(rng, token, from, min(1000, n-from+1)))
	}
	return db, token
}

func benchMessages(rng *rand.Rand, token string, from, n int) []instachat.Create {
	now := time.Now()
	creates := make([]instachat.Create, n)
	for i := range creates {
		creates[i] = instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: int64(from + i),
			Body: benchBody(rng), CreatedAt: now, UpdatedAt: now}}
	}
	return creates
}

func benchApply(b *testing.B, db *DB, creates []instachat.Create) {
	if err := db.ApplyCreates(b.Context(), creates); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkApplyCreates stores batches of about 100-byte messages; the
// batch of 100 is the figure to watch, 1 and 1000 bracket what workers see.
func BenchmarkApplyCreates(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		for _, batch := range []int{1, 64, 100, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", sync, batch), func(b *testing.B) {
				db, token := benchChat(b, Options{Synchronous: sync}, 0)
				rng := rand.New(rand.NewPCG(2, 2))
				batches := make([][]instachat.Create, b.N)
				for i := range batches {
					batches[i] = benchMessages(rng, token, 1+i*batch, batch)
				}
				b.ResetTimer()
				for i := range b.N {
					benchApply(b, db, batches[i])
				}
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}

func BenchmarkSearch(b *testing.B) {
	db, token := benchChat(b, Options{}, 10_000)
	for _, q := range []string{"supercalifragilistic", "fox dog", "qu", "fox qu", "école naïve"} {
		terms, err := instachat.ParseSearchTerms(q)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(q, func(b *testing.B) {
			var found int
			for b.Loop() {
				msgs, err := engineSearch(b.Context(), db, instachat.SearchQuery{Token: token, Chat: 1, Terms: terms, Limit: 20})
				if err != nil {
					b.Fatal(err)
				}
				found = len(msgs)
			}
			if found == 0 {
				b.Fatalf("%q found nothing", q)
			}
		})
	}
}

func BenchmarkListMessages(b *testing.B) {
	const n = 10_000
	db, token := benchChat(b, Options{}, n)
	for _, limit := range []int{20, 100} {
		b.Run(fmt.Sprint("limit=", limit), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(3, 3))
			for b.Loop() {
				msgs, err := db.ListMessages(b.Context(), token, 1, rng.Int64N(n-int64(limit)), limit)
				if err != nil || len(msgs) != limit {
					b.Fatalf("ListMessages = %d messages, %v", len(msgs), err)
				}
			}
		})
	}
}

// The scoped benchmarks search one chat of a database the size the search
// target is stated for: a million messages over ten chats.
const (
	scopedChats   = 10
	scopedPerChat = 100_000
	scopedRare    = "xylophone" // in every thousandth message, so 100 per chat
)

// scopedDB opens the million-message database, building it through
// ApplyCreates the first time. Building takes a minute or more, so it is
// kept in the system temp dir under a hash of the migrations: a schema
// change, even an edit of a migration, builds a new one, and an interrupted
// build is never taken for whole.
func scopedDB(b *testing.B) (*DB, string) {
	b.Helper()
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		b.Fatal(err)
	}
	schema := sha256.New()
	for _, name := range names {
		script, err := migrations.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		schema.Write(script)
	}
	file := filepath.Join(os.TempDir(), fmt.Sprintf("instachat-bench-scoped-%x.db", schema.Sum(nil)[:6]))
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		buildScopedDB(b, file)
	}
	db, err := Open(file, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	apps, err := db.ListApplications(b.Context(), "", 1)
	if err != nil || len(apps) != 1 {
		b.Fatalf("%s holds %d applications, %v", file, len(apps), err)
	}
	return db, apps[0].Token
}

// buildScopedDB interleaves the chats, a thousand messages of each per
// batch, the way several busy chats reach a worker.
func buildScopedDB(b *testing.B, file string) {
	start := time.Now()
	building := file + ".building"
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(building + suffix)
	}
	db, err := Open(building, Options{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	token := instachat.NewToken()
	if err := db.CreateApplication(b.Context(), &instachat.Application{Token: token, Name: "scoped", CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	const per = 1000
	for from := 1; from <= scopedPerChat; from += per {
		var batch []instachat.Create
		for chat := range int64(scopedChats) {
			if from == 1 {
				batch = append(batch, instachat.Create{Chat: &instachat.Chat{Token: token, Number: chat + 1, CreatedAt: now, UpdatedAt: now}})
			}
			for n := from; n < from+per; n++ {
				body := benchBody(rng)
				if n%1000 == 0 {
					body += scopedRare
				}
				batch = append(batch, instachat.Create{Message: &instachat.Message{Token: token, Chat: chat + 1,
					Number: int64(n), Body: body, CreatedAt: now, UpdatedAt: now}})
			}
		}
		benchApply(b, db, batch)
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(building, file); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %s in %s", file, time.Since(start).Round(time.Second))
}

// BenchmarkSearchScoped searches one chat of a hundred thousand messages
// among a million: a common word (a third of the chat), a rare one, a
// common word with a short term, a short term alone, and lists a page from
// the middle. The chat is the first, whose index range every other chat's
// follows: reading the range backwards would cross them all. The fox/…
// runs price the ranking: other window sizes, a page in the third window,
// and FTS5's bm25 over the chat's matches, which SearchMessages ranked by
// before windows.
func BenchmarkSearchScoped(b *testing.B) {
	db, token := scopedDB(b)
	const chat = 1
	search := func(q string, window, offset int) func(b *testing.B) {
		terms, err := instachat.ParseSearchTerms(q)
		if err != nil {
			b.Fatal(err)
		}
		return func(b *testing.B) {
			for b.Loop() {
				msgs, _, err := db.search(b.Context(), instachat.SearchQuery{Token: token, Chat: chat, Terms: terms, Offset: offset, Limit: 20}, window)
				if err != nil || len(msgs) != 20 {
					b.Fatalf("search %q = %d messages, %v; want 20", q, len(msgs), err)
				}
			}
		}
	}
	for _, q := range []string{"fox", scopedRare, "fox qu", "qu"} {
		b.Run(q, search(q, RankWindow, 0))
	}
	for _, window := range []int{100, 200, 1000, 2000} {
		b.Run(fmt.Sprint("fox/window=", window), search("fox", window, 0))
	}
	b.Run("fox/offset=1000", search("fox", RankWindow, 1000))
	b.Run("fox/bm25", func(b *testing.B) {
		var scope int64
		if err := db.searchScope.QueryRowContext(b.Context(), token, chat).Scan(&scope); err != nil {
			b.Fatal(err)
		}
		stmt, err := db.read.PrepareContext(b.Context(), bm25Search)
		if err != nil {
			b.Fatal(err)
		}
		defer stmt.Close()
		for b.Loop() {
			rows, err := stmt.QueryContext(b.Context(), token, chat, `"fox"`, scope<<32, scope<<32|maxMessageNumber, 20, 0)
			msgs, err := collect(rows, err, scanMessage)
			if err != nil || len(msgs) != 20 {
				b.Fatalf("bm25 search = %d messages, %v; want 20", len(msgs), err)
			}
		}
	})
	b.Run("list=20", func(b *testing.B) {
		for b.Loop() {
			msgs, err := db.ListMessages(b.Context(), token, chat, scopedPerChat/2, 20)
			if err != nil || len(msgs) != 20 {
				b.Fatalf("ListMessages = %d messages, %v", len(msgs), err)
			}
		}
	})
}

// bm25Search is the query SearchMessages ran before ranking in windows: FTS5's
// bm25 over every match of the chat, whose term weights FTS5 computes by
// reading the term's matches in every chat.
const bm25Search = `SELECT m.app_token, m.chat_number, m.number, m.body, m.revision, m.created_revision, m.created_at, m.updated_at
	FROM message_index JOIN messages m
		ON m.app_token = ? AND m.chat_number = ? AND m.number = 4294967295 - (message_index.rowid & 4294967295)
	WHERE message_index MATCH ? AND message_index.rowid BETWEEN ? AND ?
	ORDER BY message_index.rank, message_index.rowid LIMIT ? OFFSET ?`
