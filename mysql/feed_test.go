package mysql

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
	"github.com/instachat/instachat/internal/feedtest"
	"github.com/instachat/instachat/internal/testenv"
)

func TestFeedsConformance(t *testing.T) {
	conformance.TestFeeds(t, func(t *testing.T) instachat.Store { return openTest(t) })
}

func TestFeedsConformanceShared(t *testing.T) {
	db := openTest(t)
	conformance.TestFeeds(t, func(*testing.T) instachat.Store { return db })
}

// TestMigrationNumbersExistingRows migrates a database as every one was
// before revisions — a chat with a gap in its numbers, a message stored
// before its chat row — and checks that the rows get the history of feeds
// that created them in number order, that the migration run again changes
// nothing, and that new writes continue the feeds.
func TestMigrationNumbersExistingRows(t *testing.T) {
	ctx := t.Context()
	db := openDSN(t, testenv.MySQLDatabase(t))
	if err := db.applyMigrations(ctx, []string{"migrations/0001_init.sql"}); err != nil {
		t.Fatal(err)
	}
	a := instachat.NewToken()
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := db.db.ExecContext(ctx, query, args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	now := time.Now()
	exec(`INSERT INTO applications (token, name, created_at, updated_at) VALUES (?, 'old', ?, ?)`, a, now, now)
	for _, n := range feedtest.OldChats {
		exec(`INSERT INTO chats (app_token, number, name, created_at, updated_at) VALUES (?, ?, 'old', ?, ?)`, a, n, now, now)
	}
	for _, m := range feedtest.OldMessages {
		exec(`INSERT INTO messages (app_token, chat_number, number, body, created_at, updated_at) VALUES (?, ?, ?, 'old', ?, ?)`, a, m[0], m[1], now, now)
	}
	for range 2 {
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		feedtest.WantOldRowsNumbered(t, db, a)
		// As if the migration had been cut short after its last statement.
		exec(`DELETE FROM schema_migrations WHERE version = '0002_revisions.sql'`)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}

	creates := []instachat.Create{
		{Chat: &instachat.Chat{Token: a, Number: 5, CreatedAt: now, UpdatedAt: now}},
		{Message: &instachat.Message{Token: a, Chat: 1, Number: 6, Body: "new", CreatedAt: now, UpdatedAt: now}},
		{Message: &instachat.Message{Token: a, Chat: 5, Number: 2, Body: "new", CreatedAt: now, UpdatedAt: now}},
	}
	if err := db.ApplyCreates(ctx, creates); err != nil {
		t.Fatal(err)
	}
	if c, m1, m5 := creates[0].Chat, creates[1].Message, creates[2].Message; c.AppRevision != 4 ||
		c.Revision != 2 || m1.Revision != 5 || m5.Revision != 2 {
		t.Errorf("new writes after the migration: chat 5 at app revision %d, revision %d (want 4, 2), messages at %d and %d (want 5 and 2)",
			c.AppRevision, c.Revision, m1.Revision, m5.Revision)
	}
	if m, err := db.UpdateMessage(ctx, a, 2, 1, "edited now", now); err != nil || m.Revision != 3 || m.CreatedRevision != 1 {
		t.Errorf("an edit after the migration = %+v, %v; want revision 3, created at 1", m, err)
	}
}

// TestChangesAreIndexScans guards what lets a client resume from any
// revision of a chat of any size: a page of a feed is a range of its
// revision index, read in order, with no filesort over the whole chat.
func TestChangesAreIndexScans(t *testing.T) {
	db := openTest(t)
	for _, c := range []struct {
		query, index string
		args         []any
	}{
		{`SELECT ` + messageCols + ` FROM messages WHERE app_token = ? AND chat_number = ? AND revision > ? ORDER BY revision LIMIT ?`,
			"app_token_chat_number_revision", []any{"t", 1, 0, 100}},
		{`SELECT ` + chatCols + ` FROM chats WHERE app_token = ? AND app_revision > ? ORDER BY app_revision LIMIT ?`,
			"app_token_app_revision", []any{"t", 0, 100}},
		{`SELECT COALESCE(MAX(revision), 0) FROM messages WHERE app_token = ? AND chat_number = ?`,
			"", []any{"t", 1}},
	} {
		rows, err := db.db.QueryContext(t.Context(), `EXPLAIN `+c.query, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var plan []map[string]string
		for rows.Next() {
			vals := make([]any, len(cols))
			for i := range vals {
				vals[i] = new(any)
			}
			if err := rows.Scan(vals...); err != nil {
				t.Fatal(err)
			}
			row := map[string]string{}
			for i, col := range cols {
				if v := *(vals[i].(*any)); v != nil {
					row[col] = fmt.Sprintf("%s", v)
				}
			}
			plan = append(plan, row)
		}
		rows.Close()
		if len(plan) != 1 {
			t.Errorf("plan of %s: %v, want one step", c.query, plan)
			continue
		}
		p := plan[0]
		// An empty table's MAX is answered from the index ("Select tables
		// optimized away" or "No matching min/max row").
		ok := c.index == "" && (strings.Contains(p["Extra"], "optimized away") || strings.Contains(p["Extra"], "min/max")) ||
			c.index != "" && p["key"] == c.index && p["type"] == "range" && !strings.Contains(p["Extra"], "filesort")
		if !ok {
			t.Errorf("plan of %s: %v; want a range of %q, no filesort", c.query, p, c.index)
		}
	}
}

func TestDeletesConformance(t *testing.T) {
	conformance.TestDeletes(t, func(t *testing.T) instachat.Store { return openTest(t) })
}

func TestDeletesConformanceShared(t *testing.T) {
	db := openTest(t)
	conformance.TestDeletes(t, func(*testing.T) instachat.Store { return db })
}
