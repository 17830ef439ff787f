package sqlite

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/feedtest"
)

// TestMigrationNumbersExistingRows opens a data dir as every one was before
// revisions — a chat with a lost tail and a gap in its numbers, a message
// stored before its chat row, an edit — and checks that the rows get the
// history of a feed that created them in number order, and that new writes
// continue it.
func TestMigrationNumbersExistingRows(t *testing.T) {
	ctx := t.Context()
	old := makeOldDataDir(t, "0006")
	a, b := instachat.NewToken(), instachat.NewToken()
	for _, token := range []string{a, b} {
		old.exec(`INSERT INTO applications (token, name, created_at, updated_at) VALUES (?, 'old', 0, 0)`, token)
	}
	// a's chat 3 was never stored (its number lost), chat 4 was.
	for _, n := range feedtest.OldChats {
		old.exec(`INSERT INTO chats (app_token, number, name, created_at, updated_at) VALUES (?, ?, 'old', 0, 0)`, a, n)
	}
	// Interleaved, in no number order; chat 1 skips number 3; chat 5 has no row.
	for _, m := range feedtest.OldMessages {
		old.exec(`INSERT INTO messages (app_token, chat_number, number, body, created_at, updated_at) VALUES (?, ?, ?, 'old', 0, 0)`, a, m[0], m[1])
	}
	old.exec(`UPDATE messages SET body = 'edited' WHERE app_token = ? AND chat_number = 1 AND number = 2`, a)

	db := old.open()
	feedtest.WantOldRowsNumbered(t, db, a)
	if app, err := db.FindApplication(ctx, b); err != nil || app.Revision != 0 {
		t.Errorf("an application without chats after the migration: %+v, %v; want revision 0", app, err)
	}

	// New writes continue each feed, the chat without a row included.
	now := time.Now()
	creates := []instachat.Create{
		{Chat: &instachat.Chat{Token: a, Number: 5, CreatedAt: now, UpdatedAt: now}},
		{Message: &instachat.Message{Token: a, Chat: 1, Number: 6, Body: "new", CreatedAt: now, UpdatedAt: now}},
		{Message: &instachat.Message{Token: a, Chat: 5, Number: 2, Body: "new", CreatedAt: now, UpdatedAt: now}},
	}
	if err := db.ApplyCreates(ctx, creates); err != nil {
		t.Fatal(err)
	}
	if c, m1, m5 := creates[0].Chat, creates[1].Message, creates[2].Message; c.AppRevision != 4 || m1.Revision != 5 || m5.Revision != 2 {
		t.Errorf("new writes after the migration: chat 5 at app revision %d (want 4), messages at %d and %d (want 5 and 2)",
			c.AppRevision, m1.Revision, m5.Revision)
	}
	if m, err := db.UpdateMessage(ctx, a, 2, 1, "edited now", now); err != nil || m.Revision != 3 || m.CreatedRevision != 1 {
		t.Errorf("an edit after the migration = %+v, %v; want revision 3, created at 1", m, err)
	}
}

// TestChangesAreIndexScans guards what lets a client resume from any
// revision of a chat of any size: every query of a feed's page and of its
// current revision is a seek into an index, read in revision order, with no
// sorter that would have to see the whole chat first.
func TestChangesAreIndexScans(t *testing.T) {
	db := openTest(t)
	for _, c := range []struct {
		query string
		args  []any
		want  []string
	}{
		{`SELECT ` + messageCols + ` FROM messages WHERE app_token = ? AND chat_number = ? AND revision > ? ORDER BY revision LIMIT ?`,
			[]any{"t", 1, 0, 100}, []string{"SEARCH messages USING INDEX messages_app_token_chat_number_revision " +
				"(app_token=? AND chat_number=? AND revision>?)"}},
		{`SELECT ` + chatCols + ` FROM chats WHERE app_token = ? AND app_revision > ? ORDER BY app_revision LIMIT ?`,
			[]any{"t", 0, 100}, []string{"SEARCH chats USING INDEX chats_app_token_app_revision (app_token=? AND app_revision>?)"}},
		{`SELECT ` + chatRevisionExpr, []any{"t", 1}, []string{"SCAN CONSTANT ROW",
			"SCALAR SUBQUERY 1", "SEARCH chats USING INDEX sqlite_autoindex_chats_1 (app_token=? AND number=?)",
			"SCALAR SUBQUERY 2", "SEARCH messages USING COVERING INDEX messages_app_token_chat_number_revision (app_token=? AND chat_number=?)"}},
		{`SELECT ` + appRevisionExpr, []any{"t"}, []string{"SCAN CONSTANT ROW",
			"SCALAR SUBQUERY 1", "SEARCH applications USING INDEX sqlite_autoindex_applications_1 (token=?)",
			"SCALAR SUBQUERY 2", "SEARCH chats USING COVERING INDEX chats_app_token_app_revision (app_token=?)"}},
	} {
		plan := queryPlan(t, db, c.query, c.args...)
		if !slices.Equal(plan, c.want) {
			t.Errorf("plan of %s:\n%s\nwant\n%s", c.query, strings.Join(plan, "\n"), strings.Join(c.want, "\n"))
		}
	}
}

func queryPlan(t *testing.T, db *DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestResumeFromZeroOnALargeChat replays a chat of 100,000 messages (10,000
// under -race, which makes SQLite about thirty times slower: the same
// paging, a hundred pages instead of a thousand), some edited, from
// revision 0 in pages of the largest limit the API allows: each message
// comes once, in revision order, each page holds no more than its limit,
// and the feed's revision stays the same throughout.
func TestResumeFromZeroOnALargeChat(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 100,000 messages")
	}
	messages := int64(100_000)
	if raceDetector {
		messages = 10_000
	}
	const batch, limit = 10_000, 100
	db := openTest(t)
	ctx := t.Context()
	token := instachat.NewToken()
	now := time.Now()
	if err := db.CreateApplication(ctx, &instachat.Application{Token: token, Name: "large", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	creates := []instachat.Create{{Chat: &instachat.Chat{Token: token, Number: 1, CreatedAt: now, UpdatedAt: now}}}
	for n := int64(1); n <= messages; n++ {
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: n,
			Body: "m", CreatedAt: now, UpdatedAt: now}})
		if len(creates) == batch || n == messages {
			if err := db.ApplyCreates(ctx, creates); err != nil {
				t.Fatal(err)
			}
			creates = creates[:0]
		}
	}
	edited := map[int64]bool{}
	for _, n := range []int64{1, messages / 2, messages - 1, 1} {
		if _, err := db.UpdateMessage(ctx, token, 1, n, fmt.Sprint("edit of ", n), now); err != nil {
			t.Fatal(err)
		}
		edited[n] = true
	}
	revision := messages + 4

	seen := make(map[int64]bool, messages)
	last, pages := int64(0), 0
	for cursor := int64(0); ; pages++ {
		page, err := db.ListChanges(ctx, instachat.ChangesQuery{Topic: instachat.Topic{Token: token, Chat: 1}, Cursor: cursor, Limit: limit})
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(page.Events) > limit || page.More && len(page.Events) < limit || page.Revision != revision {
			t.Fatalf("page %d: %d events, more %t, revision %d; want at most %d, revision %d", pages, len(page.Events),
				page.More, page.Revision, limit, revision)
		}
		for _, e := range page.Events {
			if e.Revision <= last || seen[e.Message.Number] || e.Event != instachat.EventMessageCreated {
				t.Fatalf("page %d: %s of %d at revision %d after revision %d (seen before: %t)", pages, e.Event,
					e.Message.Number, e.Revision, last, seen[e.Message.Number])
			}
			if want := edited[e.Message.Number]; want != strings.HasPrefix(e.Message.Body, "edit") {
				t.Fatalf("message %d listed as %q", e.Message.Number, e.Message.Body)
			}
			last, seen[e.Message.Number] = e.Revision, true
		}
		if !page.More {
			break
		}
		cursor = last
	}
	if int64(len(seen)) != messages || last != revision {
		t.Errorf("the replay listed %d messages up to revision %d in %d pages; want %d up to %d", len(seen), last, pages+1, messages, revision)
	}
}
