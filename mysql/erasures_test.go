package mysql

import (
	"slices"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/testenv"
)

// pendingNumbers lists the numbers of the erasures pending for deletions
// up to before, of token only (other tests share no database, but say so).
func pendingNumbers(t *testing.T, db *DB, token string, before time.Time) []int64 {
	t.Helper()
	msgs, err := db.PendingSearchErasures(t.Context(), before, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, m := range msgs {
		if m.Token == token {
			got = append(got, m.Chat*100+m.Number)
		}
	}
	return got
}

// TestDeleteMessageRecordsTheSearchErasure: opened with SearchErasures, a
// message deletion records in its transaction the tombstone a search
// engine apart from the store owes (its times: the message's creation, the
// deletion's as its version), listed once the deletion is old enough and
// until SearchErased clears it; the reclaim of a deleted chat takes its
// pending erasures with its rows. Without the option nothing is recorded.
func TestDeleteMessageRecordsTheSearchErasure(t *testing.T) {
	dsn := testenv.MySQLDatabase(t)
	db, err := Open(t.Context(), dsn, Options{SearchErasures: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	app := newApp(t, db)
	created := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	creates := []instachat.Create{}
	for chat := int64(1); chat <= 2; chat++ {
		creates = append(creates, instachat.Create{Chat: &instachat.Chat{Token: app.Token, Number: chat, CreatedAt: created, UpdatedAt: created}})
		for n := int64(1); n <= 3; n++ {
			creates = append(creates, instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: chat, Number: n, Body: "secret",
				CreatedAt: created, UpdatedAt: created}})
		}
	}
	if err := db.ApplyCreates(ctx, creates); err != nil {
		t.Fatal(err)
	}
	deleted := created.Add(time.Hour)
	for _, k := range [][2]int64{{1, 2}, {2, 1}, {2, 3}} {
		if _, err := db.DeleteMessage(ctx, app.Token, k[0], k[1], deleted.Add(time.Duration(k[0]*10+k[1])*time.Microsecond)); err != nil {
			t.Fatal(err)
		}
	}
	if got := pendingNumbers(t, db, app.Token, deleted); len(got) != 0 {
		t.Errorf("erasures pending for deletions before they happened: %v", got)
	}
	msgs, err := db.PendingSearchErasures(ctx, deleted.Add(time.Second), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("PendingSearchErasures = %d tombstones, want 3", len(msgs))
	}
	// Oldest deletion first, each with what its tombstone needs.
	m := msgs[0]
	if m.Token != app.Token || m.Chat != 1 || m.Number != 2 || m.Body != "" || !m.CreatedAt.Equal(created) ||
		m.DeletedAt == nil || !m.DeletedAt.Equal(deleted.Add(12*time.Microsecond)) || !m.UpdatedAt.Equal(*m.DeletedAt) {
		t.Errorf("first tombstone %+v, want chat 1 number 2 created %v, updated and deleted at %v", m, created, deleted.Add(12*time.Microsecond))
	}
	if got, want := pendingNumbers(t, db, app.Token, deleted.Add(time.Second)), []int64{102, 201, 203}; !slices.Equal(got, want) {
		t.Errorf("pending erasures %v, want %v", got, want)
	}
	if err := db.SearchErased(ctx, msgs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := db.SearchErased(ctx, msgs[:1]); err != nil { // again: nothing to clear
		t.Fatal(err)
	}
	if got, want := pendingNumbers(t, db, app.Token, deleted.Add(time.Second)), []int64{201, 203}; !slices.Equal(got, want) {
		t.Errorf("pending erasures after clearing the first %v, want %v", got, want)
	}
	// The chat's deletion: its reclaim erases what the engine owed of it,
	// since the engine forgets the whole chat before the record goes.
	if _, err := db.DeleteChat(ctx, app.Token, 2, deleted.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		n, err := db.Reclaim(ctx, 1000, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if got := pendingNumbers(t, db, app.Token, deleted.Add(time.Hour)); len(got) != 0 {
		t.Errorf("erasures pending after the chat's reclaim: %v", got)
	}

	// Without the option, a deletion records nothing.
	plain := openDSN(t, dsn)
	if _, err := plain.DeleteMessage(ctx, app.Token, 1, 3, deleted); err != nil {
		t.Fatal(err)
	}
	if got := pendingNumbers(t, plain, app.Token, deleted.Add(time.Hour)); len(got) != 0 {
		t.Errorf("a store without SearchErasures recorded %v", got)
	}
}

// TestDeletedChatsTellsTheIndexingConsumer: DeletedChats names the chats
// deleted, and every chat of a deleted application, its reclaim done or
// not; a live chat, and one not stored yet, are not deleted.
func TestDeletedChatsTellsTheIndexingConsumer(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	live, gone := newApp(t, db), newApp(t, db)
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for _, token := range []string{live.Token, gone.Token} {
		for chat := int64(1); chat <= 2; chat++ {
			if err := db.ApplyCreates(ctx, []instachat.Create{{Chat: &instachat.Chat{Token: token, Number: chat, CreatedAt: at, UpdatedAt: at}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := db.DeleteChat(ctx, live.Token, 2, at); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteApplication(ctx, gone.Token, at); err != nil {
		t.Fatal(err)
	}
	ask := []instachat.Scope{instachat.MessagesOf(live.Token, 1), instachat.MessagesOf(live.Token, 2), instachat.MessagesOf(live.Token, 9),
		instachat.MessagesOf(gone.Token, 1), instachat.MessagesOf(gone.Token, 2)}
	want := map[instachat.Scope]bool{ask[1]: true, ask[3]: true, ask[4]: true}
	check := func(when string) {
		t.Helper()
		got, err := db.DeletedChats(ctx, ask)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Errorf("%s: DeletedChats = %v, want %v", when, got, want)
		}
		for s := range want {
			if !got[s] {
				t.Errorf("%s: DeletedChats = %v, want %v", when, got, want)
			}
		}
	}
	check("before the reclaim")
	for range 10 {
		if n, err := db.Reclaim(ctx, 1000, nil); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			break
		}
	}
	check("after the reclaim") // the application's chat rows are gone; its own row says
}
