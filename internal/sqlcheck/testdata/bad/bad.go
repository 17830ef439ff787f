// Package bad is what TestCheckerFlagsBadSQL runs the checker on: each line
// it must flag ends with a comment want "operand"; every other line must
// pass. It is parsed, never compiled.
package bad

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

const table = "messages"

func byName(ctx context.Context, db *sql.DB, name string, ids []int64) {
	db.QueryContext(ctx, "SELECT * FROM users WHERE name = '"+name+"'") // want "name"
	db.Exec(fmt.Sprintf("DELETE FROM t WHERE name = '%s'", name))       // want "name"
	db.Exec(fmt.Sprintf("DELETE FROM %s WHERE id = %d", table, 1))
	db.Exec("DELETE FROM "+table+" WHERE name = ?", name)

	q := "SELECT * FROM " + table + " WHERE name = ?"
	db.QueryRowContext(ctx, q, name)

	order := "id"
	if name != "" {
		order = name // want "name"
	}
	db.QueryContext(ctx, "SELECT * FROM t ORDER BY "+order)

	var b strings.Builder
	b.WriteString("SELECT * FROM t WHERE id IN (" + marks(len(ids)) + ")")
	b.WriteString(" AND note = '" + name + "'") // want "name"
	db.ExecContext(ctx, b.String())

	db.Exec("SELECT * FROM t WHERE id IN (" + strings.Repeat("?, ", len(ids)) + "?)")
	db.Exec("SELECT " + strings.Repeat(name, 2)) // want "name"
	db.Prepare("SELECT " + columns())            // want "columns()"
	db.Exec("SELECT * FROM t WHERE id IN " + badMarks(name))

	where := " WHERE a = ?"
	where += " AND b = '" + name + "'" // want "name"
	db.Query("SELECT * FROM t" + where)
	db.Query(fmt.Sprintf("SELECT * FROM t LIMIT %d", len(ids))) // want "len(ids)"

	selectFrom(ctx, db, table)
	selectFrom(ctx, db, name) // want "name"
	run := selectFrom         // want "selectFrom"
	run(ctx, db, name)

	db.Query(whereName(name)) // want "whereName(name)"
	db.Query(marks(len(ids)))

	// Not built here, so not this rule's business.
	db.Query(name)
}

// whereName makes a whole query, as a function of the module: calling it
// builds SQL as surely as a + does.
func whereName(name string) string { return "SELECT * FROM t WHERE name = '" + name + "'" }

func selectFrom(ctx context.Context, db *sql.DB, table string) {
	db.QueryContext(ctx, "SELECT * FROM "+table)
}

func createDatabase(ctx context.Context, db *sql.DB, name string) {
	db.ExecContext(ctx, "CREATE DATABASE "+name) // allowlisted: a reviewer proved it
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func badMarks(s string) string { return "(" + s + ")" } // want "s"

func columns() string { return "a, b" }
