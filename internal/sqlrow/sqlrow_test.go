package sqlrow_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/sqlrow"
	_ "modernc.org/sqlite"
)

// format marks every error it translates, so a test can tell which ones
// went through it.
func format(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return instachat.NotFound(what)
	}
	return &formatted{err}
}

type formatted struct{ error }

func (f *formatted) Unwrap() error { return f.error }

func open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "rows.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE w (token TEXT, chat INTEGER, highest INTEGER, deleted INTEGER);
		INSERT INTO w VALUES ('a', 0, 2, 0), ('a', 1, 5, 1), ('b', 0, 0, 0)`); err != nil {
		t.Fatal(err)
	}
	return db
}

type row struct{ token string }

func scanRow(s sqlrow.Scanner) (*row, error) {
	var r row
	return &r, s.Scan(&r.token)
}

func TestOne(t *testing.T) {
	db := open(t)
	r, err := sqlrow.One(db.QueryRow(`SELECT token FROM w WHERE chat = 1`), scanRow, format, "chat")
	if err != nil || r.token != "a" {
		t.Errorf("One = %+v, %v; want a", r, err)
	}
	_, err = sqlrow.One(db.QueryRow(`SELECT token FROM w WHERE chat = 9`), scanRow, format, "chat")
	if instachat.ErrorCode(err) != instachat.ENOTFOUND || instachat.ErrorMessage(err) != "chat not found" {
		t.Errorf("One of no row: %v, want chat not found", err)
	}
}

func TestAll(t *testing.T) {
	db := open(t)
	rows, err := db.Query(`SELECT token FROM w ORDER BY rowid`)
	got, err := sqlrow.All(rows, err, scanRow, format)
	if err != nil || len(got) != 3 || got[0].token != "a" || got[2].token != "b" {
		t.Errorf("All = %v, %v; want a, a, b", got, err)
	}
	// The query's error and a scan's go through format.
	rows, err = db.Query(`SELECT nothing FROM w`)
	if _, err := sqlrow.All(rows, err, scanRow, format); !errors.As(err, new(*formatted)) {
		t.Errorf("All of a failed query: %v, want it formatted", err)
	}
	rows, err = db.Query(`SELECT token FROM w`)
	scanInt := func(s sqlrow.Scanner) (*int64, error) {
		var n int64
		return &n, s.Scan(&n)
	}
	if _, err := sqlrow.All(rows, err, scanInt, format); !errors.As(err, new(*formatted)) {
		t.Errorf("All with a failing scan: %v, want it formatted", err)
	}
}

func TestWatermarksPassesFnErrorAsIs(t *testing.T) {
	db := open(t)
	var got []instachat.Watermark
	rows, err := db.Query(`SELECT token, chat, highest, deleted FROM w ORDER BY rowid`)
	err = sqlrow.Watermarks(rows, err, func(w instachat.Watermark) error { got = append(got, w); return nil }, format)
	want := []instachat.Watermark{
		{Scope: instachat.ChatsOf("a"), Highest: 2},
		{Scope: instachat.MessagesOf("a", 1), Highest: 5, Deleted: true},
		{Scope: instachat.ChatsOf("b"), Highest: 0},
	}
	if err != nil || len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("Watermarks = %v, %v; want %v", got, err, want)
	}
	stop, calls := errors.New("stop"), 0
	rows, err = db.Query(`SELECT token, chat, highest, deleted FROM w`)
	err = sqlrow.Watermarks(rows, err, func(instachat.Watermark) error { calls++; return stop }, format)
	if err != stop || calls != 1 {
		t.Errorf("Watermarks with fn failing = %v after %d calls; want fn's error itself after 1", err, calls)
	}
}
