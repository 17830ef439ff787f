// Package sqlrow reads rows of database/sql results for the SQL stores
// (sqlite, mysql), so that how a result is walked — closed on every path,
// each database error given to the backend's translation, a caller's error
// passed through untouched — is written once. Each backend binds its own
// Format, which turns driver errors into instachat errors.
package sqlrow

import (
	"database/sql"

	"github.com/instachat/instachat"
)

// Scanner is a row to scan: *sql.Row or *sql.Rows.
type Scanner interface{ Scan(dest ...any) error }

// Format translates an error of the database for the caller; what names the
// kind of row (an empty what: not a lookup of one row), for ENOTFOUND when
// err is sql.ErrNoRows.
type Format func(err error, what string) error

// One scans the single row of a query; a missing row is format's to report,
// with what.
func One[T any](row Scanner, scan func(Scanner) (*T, error), format Format, what string) (*T, error) {
	v, err := scan(row)
	if err != nil {
		return nil, format(err, what)
	}
	return v, nil
}

// All scans every row of a query's result; err is the query's.
func All[T any](rows *sql.Rows, err error, scan func(Scanner) (*T, error), format Format) ([]*T, error) {
	var out []*T
	err = Each(rows, err, scan, func(v *T) error { out = append(out, v); return nil }, format)
	return out, err
}

// Each calls fn with every row of a query's result as scan reads it, and
// stops at fn's first error, which it returns as is; err is the query's.
// The rows are closed on every path.
func Each[T any](rows *sql.Rows, err error, scan func(Scanner) (T, error), fn func(T) error, format Format) error {
	if err != nil {
		return format(err, "")
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return format(err, "")
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	return format(rows.Err(), "")
}

// Watermarks calls fn with every watermark of a query returning token, chat
// number (0 for the application), highest number and whether the
// application or chat is deleted, as Store.Watermarks does.
func Watermarks(rows *sql.Rows, err error, fn func(instachat.Watermark) error, format Format) error {
	return Each(rows, err, func(s Scanner) (instachat.Watermark, error) {
		var w instachat.Watermark
		return w, s.Scan(&w.Token, &w.Chat, &w.Highest, &w.Deleted)
	}, fn, format)
}
