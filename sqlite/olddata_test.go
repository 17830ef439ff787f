package sqlite

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// oldDataDir is a data dir as every one was before migration next: the
// migrations numbered below it applied and no other, for a migration's test
// to fill with the rows of that time and then open with this code.
type oldDataDir struct {
	t    *testing.T
	path string
	*sql.DB
}

// makeOldDataDir makes the data dir of the time before migration next (its
// number, such as "0006").
func makeOldDataDir(t *testing.T, next string) *oldDataDir {
	t.Helper()
	path := filepath.Join(t.TempDir(), "instachat.db")
	old, err := sql.Open("sqlite", dsn(path, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close() })
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	before := slices.IndexFunc(names, func(n string) bool { return strings.HasPrefix(n, "migrations/"+next+"_") })
	if before < 0 {
		t.Fatalf("no migration %s", next)
	}
	if err := applyMigrations(t.Context(), old, names[:before]); err != nil {
		t.Fatal(err)
	}
	return &oldDataDir{t: t, path: path, DB: old}
}

// exec runs a statement of the old schema, failing the test if it fails.
func (d *oldDataDir) exec(query string, args ...any) {
	d.t.Helper()
	if _, err := d.ExecContext(d.t.Context(), query, args...); err != nil {
		d.t.Fatalf("%s: %v", query, err)
	}
}

// open closes the old database and opens the data dir with this code, as
// the first start after an upgrade does; the test's end closes it.
func (d *oldDataDir) open() *DB {
	d.t.Helper()
	if err := d.Close(); err != nil {
		d.t.Fatal(err)
	}
	db, err := Open(d.path, Options{})
	if err != nil {
		d.t.Fatalf("open the old database: %v", err)
	}
	d.t.Cleanup(func() { db.Close() })
	return db
}
