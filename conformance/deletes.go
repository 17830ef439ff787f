package conformance

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/instachat/instachat"
)

// TestDeletes checks what DeleteMessage, DeleteChat, DeleteApplication and
// Reclaim do (see instachat.Store). open may return a fresh store or a
// shared one, as for TestStore: each case works under applications of its
// own, though Reclaim works on whatever any of them deleted.
func TestDeletes(t *testing.T, open func(t *testing.T) instachat.Store) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s instachat.Store)
	}{
		{"DeleteMessage", deleteMessage},
		{"DeleteMessageTwiceOrUnknown", deleteMessageTwiceOrUnknown},
		{"RetriedCreateOfADeletedMessage", deleteRetriedCreate},
		{"ChangesListTombstones", deleteChangesListTombstones},
		{"DeleteChat", deleteChat},
		{"CreatesToADeletedChatAreDropped", deleteChatDropsCreates},
		{"ReclaimDeletedChat", deleteReclaimChat},
		{"DeleteApplication", deleteApplication},
		{"ReclaimCallsDoneAndKeepsTheRecordUntilItSucceeds", deleteReclaimDone},
		{"RecountCountsOnlyTheLiving", deleteRecount},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

// deleteSetup stores an application with the chats, each with n messages.
func deleteSetup(t *testing.T, s instachat.Store, chats, n int64) *instachat.Application {
	t.Helper()
	app := storeNewApp(t, s, 0)
	var creates []instachat.Create
	for c := int64(1); c <= chats; c++ {
		creates = append(creates, storeChat(app.Token, c))
		for m := int64(1); m <= n; m++ {
			creates = append(creates, storeMessage(app.Token, c, m))
		}
	}
	storeApply(t, s, creates...)
	return app
}

// deleteReclaimAll calls Reclaim until nothing is left, checking that no
// call erases more than its limit, and returns the rows erased.
func deleteReclaimAll(t *testing.T, s instachat.Store, limit int) int64 {
	t.Helper()
	var total int64
	for range 100000 {
		n, err := s.Reclaim(t.Context(), limit, nil)
		if err != nil {
			t.Fatalf("Reclaim(%d): %v", limit, err)
		}
		if n > int64(limit) {
			t.Fatalf("Reclaim(%d) erased %d rows", limit, n)
		}
		if n == 0 {
			return total
		}
		total += n
	}
	t.Fatal("Reclaim never finished")
	return 0
}

func deleteNumbers(msgs []*instachat.Message) []int64 {
	var ns []int64
	for _, m := range msgs {
		ns = append(ns, m.Number)
	}
	slices.Sort(ns)
	return ns
}

func deleteWantMessages(t *testing.T, s instachat.Store, token string, chat int64, want ...int64) {
	t.Helper()
	msgs, err := s.ListMessages(t.Context(), token, chat, 0, 100)
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	if got := deleteNumbers(msgs); !slices.Equal(got, want) {
		t.Errorf("ListMessages(chat %d) lists %v, want %v", chat, got, want)
	}
	found, err := s.FindMessages(t.Context(), token, chat, []int64{1, 2, 3, 4, 5, 6})
	if err != nil {
		t.Fatalf("FindMessages: %v", err)
	}
	if got := deleteNumbers(found); !slices.Equal(got, want) {
		t.Errorf("FindMessages(chat %d, 1…6) finds %v, want %v", chat, got, want)
	}
}

// deleteMessage: the message is gone from every read, its chat counts one
// less and advanced its revision, the tombstone returned says when and at
// which revision; its number stays the highest issued.
func deleteMessage(t *testing.T, s instachat.Store) {
	app := deleteSetup(t, s, 2, 3)
	at := storeTime(50)
	m, err := s.DeleteMessage(t.Context(), app.Token, 1, 3, at)
	if err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if m.Number != 3 || m.Revision != 4 || m.CreatedRevision != 3 || m.DeletedAt == nil || !m.DeletedAt.Equal(at) || m.Body != "" {
		t.Errorf("DeleteMessage returned %+v; want number 3, revision 4 (created at 3), deleted at %v, no body", m, at)
	}
	_, err = s.FindMessage(t.Context(), app.Token, 1, 3)
	wantCode(t, err, instachat.ENOTFOUND, "FindMessage of a deleted message")
	deleteWantMessages(t, s, app.Token, 1, 1, 2)
	deleteWantMessages(t, s, app.Token, 2, 1, 2, 3)
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 2, 2: 3})
	feedWantRevision(t, s, app.Token, 1, 4)
	feedWantRevision(t, s, app.Token, 2, 3)
	storeWantHighest(t, s, instachat.MessagesOf(app.Token, 1), 3)

	_, err = s.UpdateMessage(t.Context(), app.Token, 1, 3, "back again", storeTime(51))
	wantCode(t, err, instachat.ENOTFOUND, "UpdateMessage of a deleted message")
	feedWantRevision(t, s, app.Token, 1, 4)

	var marks []instachat.Watermark
	if err := s.Watermarks(t.Context(), func(w instachat.Watermark) error {
		if w.Token == app.Token {
			marks = append(marks, w)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, w := range marks {
		if w.Chat == 1 && (w.Highest != 3 || w.Deleted) {
			t.Errorf("watermark of chat 1 = %+v, want highest 3 (a deleted number is never issued again), not deleted", w)
		}
	}
}

func deleteMessageTwiceOrUnknown(t *testing.T, s instachat.Store) {
	app := deleteSetup(t, s, 1, 2)
	if _, err := s.DeleteMessage(t.Context(), app.Token, 1, 1, storeTime(50)); err != nil {
		t.Fatal(err)
	}
	_, err := s.DeleteMessage(t.Context(), app.Token, 1, 1, storeTime(51))
	wantCode(t, err, instachat.ENOTFOUND, "a second DeleteMessage")
	_, err = s.DeleteMessage(t.Context(), app.Token, 1, 3, storeTime(51))
	wantCode(t, err, instachat.ENOTFOUND, "DeleteMessage of a number not stored")
	_, err = s.DeleteMessage(t.Context(), app.Token, 2, 1, storeTime(51))
	wantCode(t, err, instachat.ENOTFOUND, "DeleteMessage in an unknown chat")
	_, err = s.DeleteMessage(t.Context(), instachat.NewToken(), 1, 1, storeTime(51))
	wantCode(t, err, instachat.ENOTFOUND, "DeleteMessage in an unknown application")
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 1})
	feedWantRevision(t, s, app.Token, 1, 3)
}

// deleteRetriedCreate: the create of a deleted message, applied again (a
// redelivery, a retry with its Idempotency-Key), is dropped and says so.
func deleteRetriedCreate(t *testing.T, s instachat.Store) {
	app := deleteSetup(t, s, 1, 2)
	if _, err := s.DeleteMessage(t.Context(), app.Token, 1, 2, storeTime(50)); err != nil {
		t.Fatal(err)
	}
	again, fresh := storeMessage(app.Token, 1, 2), storeMessage(app.Token, 1, 3)
	storeApply(t, s, again, fresh)
	if !again.Dropped() {
		t.Errorf("the create of a deleted message, applied again, is not reported dropped")
	}
	if fresh.Dropped() || fresh.Message.Revision != 4 {
		t.Errorf("a new message beside it: dropped %t, revision %d; want stored at revision 4", fresh.Dropped(), fresh.Message.Revision)
	}
	deleteWantMessages(t, s, app.Token, 1, 1, 3)
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 2})
}

// deleteChangesListTombstones: a deletion is listed as message.deleted at
// its revision to a client resuming from when it may hold the message, and
// not at all to one resuming from before the message's creation.
func deleteChangesListTombstones(t *testing.T, s instachat.Store) {
	app := deleteSetup(t, s, 1, 3)                                                                    // revisions 1, 2, 3
	if _, err := s.UpdateMessage(t.Context(), app.Token, 1, 1, "edited", storeTime(40)); err != nil { // 4
		t.Fatal(err)
	}
	if _, err := s.DeleteMessage(t.Context(), app.Token, 1, 2, storeTime(50)); err != nil { // 5
		t.Fatal(err)
	}
	for after, want := range map[int64][]string{
		0: {"message.created 3@3", "message.created 1@4"},
		1: {"message.created 3@3", "message.updated 1@4"},
		2: {"message.created 3@3", "message.updated 1@4", "message.deleted 2@5"},
		4: {"message.deleted 2@5"},
		5: nil,
	} {
		page := feedList(t, s, instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 1}, After: after, Limit: 10})
		feedWantEvents(t, "changes after "+string(rune('0'+after)), page.Events, want...)
		if page.Revision != 5 {
			t.Errorf("changes after %d: revision %d, want 5", after, page.Revision)
		}
		for _, e := range page.Events {
			if e.Event == instachat.EventMessageDeleted && (e.Message.DeletedAt == nil || e.Message.Body != "" || !e.Message.CreatedAt.IsZero()) {
				t.Errorf("message.deleted carries %+v; want its number and deleted_at alone", e.Message)
			}
		}
	}
	// Pages of one item each walk the same list.
	var got []instachat.Event
	for cursor := int64(0); ; {
		page := feedList(t, s, instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 1}, After: 2, Cursor: cursor, Limit: 1})
		got = append(got, page.Events...)
		if !page.More {
			break
		}
		cursor = page.Events[len(page.Events)-1].Revision
	}
	feedWantEvents(t, "changes after 2, a page per item", got, "message.created 3@3", "message.updated 1@4", "message.deleted 2@5")
}

// deleteChat: the chat and its messages vanish from every read at once,
// its application counts one chat less and lists chat.deleted, its number
// stays issued.
func deleteChat(t *testing.T, s instachat.Store) {
	app := deleteSetup(t, s, 3, 2) // application revisions 1, 2, 3
	at := storeTime(50)
	c, err := s.DeleteChat(t.Context(), app.Token, 2, at)
	if err != nil {
		t.Fatalf("DeleteChat: %v", err)
	}
	if c.Number != 2 || c.AppRevision != 4 || c.CreatedAppRevision != 2 || c.DeletedAt == nil || !c.DeletedAt.Equal(at) {
		t.Errorf("DeleteChat returned %+v; want number 2 at application revision 4 (created at 2), deleted at %v", c, at)
	}
	_, err = s.FindChat(t.Context(), app.Token, 2)
	wantCode(t, err, instachat.ENOTFOUND, "FindChat of a deleted chat")
	_, err = s.ListMessages(t.Context(), app.Token, 2, 0, 10)
	wantCode(t, err, instachat.ENOTFOUND, "ListMessages of a deleted chat")
	_, err = s.FindMessage(t.Context(), app.Token, 2, 1)
	wantCode(t, err, instachat.ENOTFOUND, "FindMessage in a deleted chat")
	if found, err := s.FindMessages(t.Context(), app.Token, 2, []int64{1, 2}); err != nil || len(found) != 0 {
		t.Errorf("FindMessages in a deleted chat = %d messages, %v; want none", len(found), err)
	}
	_, err = s.UpdateChat(t.Context(), app.Token, 2, "renamed", storeTime(51))
	wantCode(t, err, instachat.ENOTFOUND, "UpdateChat of a deleted chat")
	_, err = s.UpdateMessage(t.Context(), app.Token, 2, 1, "edited", storeTime(51))
	wantCode(t, err, instachat.ENOTFOUND, "UpdateMessage in a deleted chat")
	_, err = s.DeleteMessage(t.Context(), app.Token, 2, 1, storeTime(51))
	wantCode(t, err, instachat.ENOTFOUND, "DeleteMessage in a deleted chat")
	_, err = s.DeleteChat(t.Context(), app.Token, 2, storeTime(51))
	wantCode(t, err, instachat.ENOTFOUND, "a second DeleteChat")
	_, err = s.DeleteChat(t.Context(), app.Token, 4, storeTime(51))
	wantCode(t, err, instachat.ENOTFOUND, "DeleteChat of a chat not stored")
	_, err = s.ListChanges(t.Context(), instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 2}, Limit: 10})
	wantCode(t, err, instachat.ENOTFOUND, "ListChanges of a deleted chat")
	_, err = s.HighestNumber(t.Context(), instachat.MessagesOf(app.Token, 2))
	wantCode(t, err, instachat.ENOTFOUND, "HighestNumber of a deleted chat")

	storeWantCounts(t, s, app.Token, map[int64]int64{1: 2, 3: 2})
	feedWantRevision(t, s, app.Token, 0, 4)
	storeWantHighest(t, s, instachat.ChatsOf(app.Token), 3)
	for after, want := range map[int64][]string{
		0: {"chat.created 1@1", "chat.created 3@3"},
		2: {"chat.created 3@3", "chat.deleted 2@4"},
		3: {"chat.deleted 2@4"},
	} {
		page := feedList(t, s, instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token}, After: after, Limit: 10})
		feedWantEvents(t, "application changes after "+string(rune('0'+after)), page.Events, want...)
	}
	deleteWantWatermark(t, s, app.Token, 2, true)
	deleteWantWatermark(t, s, app.Token, 1, false)
}

func deleteWantWatermark(t *testing.T, s instachat.Store, token string, chat int64, deleted bool) {
	t.Helper()
	seen := false
	err := s.Watermarks(t.Context(), func(w instachat.Watermark) error {
		if w.Token == token && w.Chat == chat {
			seen = true
			if w.Deleted != deleted {
				t.Errorf("watermark of %d: deleted %t, want %t", chat, w.Deleted, deleted)
			}
		}
		return nil
	})
	if err != nil || !seen {
		t.Errorf("Watermarks: %v; watermark of %d seen: %t", err, chat, seen)
	}
}

// deleteChatDropsCreates: a create still queued for a deleted chat (or a
// retry of the chat's own create) is dropped, says so, and counts nothing.
func deleteChatDropsCreates(t *testing.T, s instachat.Store) {
	app := deleteSetup(t, s, 2, 2)
	if _, err := s.DeleteChat(t.Context(), app.Token, 1, storeTime(50)); err != nil {
		t.Fatal(err)
	}
	chatAgain, late, other := storeChat(app.Token, 1), storeMessage(app.Token, 1, 3), storeMessage(app.Token, 2, 3)
	storeApply(t, s, chatAgain, late, other)
	if !chatAgain.Dropped() || !late.Dropped() {
		t.Errorf("creates for a deleted chat: chat dropped %t, message dropped %t; want both", chatAgain.Dropped(), late.Dropped())
	}
	if other.Dropped() || other.Message.Revision != 3 {
		t.Errorf("a create for another chat in the batch: dropped %t, revision %d; want stored at 3", other.Dropped(), other.Message.Revision)
	}
	_, err := s.FindMessage(t.Context(), app.Token, 1, 3)
	wantCode(t, err, instachat.ENOTFOUND, "FindMessage of a create dropped")
	storeWantCounts(t, s, app.Token, map[int64]int64{2: 3})
}

// deleteReclaimChat: Reclaim erases a deleted chat's rows in steps of at
// most its limit, changes nothing visible, and finishes.
func deleteReclaimChat(t *testing.T, s instachat.Store) {
	app := deleteSetup(t, s, 2, 25)
	deleteReclaimAll(t, s, 1000) // whatever other cases left
	if _, err := s.DeleteChat(t.Context(), app.Token, 1, storeTime(50)); err != nil {
		t.Fatal(err)
	}
	if n := deleteReclaimAll(t, s, 10); n < 25 {
		t.Errorf("Reclaim erased %d rows of a chat of 25 messages", n)
	}
	if n := deleteReclaimAll(t, s, 10); n != 0 {
		t.Errorf("Reclaim after it finished erased %d rows", n)
	}
	storeWantCounts(t, s, app.Token, map[int64]int64{2: 25})
	storeWantHighest(t, s, instachat.ChatsOf(app.Token), 2)
	deleteWantWatermark(t, s, app.Token, 1, true)
	_, err := s.FindChat(t.Context(), app.Token, 1)
	wantCode(t, err, instachat.ENOTFOUND, "FindChat of a reclaimed chat")
	late := storeMessage(app.Token, 1, 26)
	storeApply(t, s, late)
	if !late.Dropped() {
		t.Errorf("a create for a reclaimed chat is not dropped")
	}
}

// deleteApplication: everything under the token vanishes at once, the
// token is never valid again, and Reclaim erases the rest.
func deleteApplication(t *testing.T, s instachat.Store) {
	app := deleteSetup(t, s, 2, 3)
	keep := deleteSetup(t, s, 1, 2)
	if err := s.DeleteApplication(t.Context(), app.Token, storeTime(50)); err != nil {
		t.Fatalf("DeleteApplication: %v", err)
	}
	check := func(when string) {
		t.Helper()
		_, err := s.FindApplication(t.Context(), app.Token)
		wantCode(t, err, instachat.ENOTFOUND, when+": FindApplication")
		_, err = s.UpdateApplication(t.Context(), app.Token, "renamed", storeTime(51))
		wantCode(t, err, instachat.ENOTFOUND, when+": UpdateApplication")
		_, err = s.ListChats(t.Context(), app.Token, 0, 10)
		wantCode(t, err, instachat.ENOTFOUND, when+": ListChats")
		_, err = s.FindChat(t.Context(), app.Token, 1)
		wantCode(t, err, instachat.ENOTFOUND, when+": FindChat")
		_, err = s.ListMessages(t.Context(), app.Token, 1, 0, 10)
		wantCode(t, err, instachat.ENOTFOUND, when+": ListMessages")
		_, err = s.FindMessage(t.Context(), app.Token, 1, 1)
		wantCode(t, err, instachat.ENOTFOUND, when+": FindMessage")
		_, err = s.UpdateMessage(t.Context(), app.Token, 1, 1, "edited", storeTime(51))
		wantCode(t, err, instachat.ENOTFOUND, when+": UpdateMessage")
		_, err = s.DeleteChat(t.Context(), app.Token, 1, storeTime(51))
		wantCode(t, err, instachat.ENOTFOUND, when+": DeleteChat")
		_, err = s.ListChanges(t.Context(), instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token}, Limit: 10})
		wantCode(t, err, instachat.ENOTFOUND, when+": ListChanges of the application")
		_, err = s.ListChanges(t.Context(), instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 1}, Limit: 10})
		wantCode(t, err, instachat.ENOTFOUND, when+": ListChanges of a chat")
		_, err = s.HighestNumber(t.Context(), instachat.ChatsOf(app.Token))
		wantCode(t, err, instachat.ENOTFOUND, when+": HighestNumber")
		wantCode(t, s.DeleteApplication(t.Context(), app.Token, storeTime(51)), instachat.ENOTFOUND, when+": a second DeleteApplication")
		deleteWantWatermark(t, s, app.Token, 0, true)
		chat, msg := storeChat(app.Token, 3), storeMessage(app.Token, 2, 4)
		storeApply(t, s, chat, msg)
		if !chat.Dropped() || !msg.Dropped() {
			t.Errorf("%s: creates under a deleted application: chat dropped %t, message %t; want both", when, chat.Dropped(), msg.Dropped())
		}
		apps, err := s.ListApplications(t.Context(), "", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range apps {
			if a.Token == app.Token {
				t.Errorf("%s: ListApplications lists a deleted application", when)
			}
		}
		storeWantCounts(t, s, keep.Token, map[int64]int64{1: 2})
	}
	check("before Reclaim")
	if n := deleteReclaimAll(t, s, 2); n < 8 {
		t.Errorf("Reclaim erased %d rows of an application of 2 chats and 6 messages", n)
	}
	check("after Reclaim")
}

// deleteReclaimDone: once a deletion's rows are erased, Reclaim calls done
// with its scope; while done fails, Reclaim returns its error and keeps the
// deletion's record, so the next call calls done again; once done succeeds,
// the record goes and done is not called for it again. Deletions are
// reclaimed oldest first, a chat's with MessagesOf, an application's with
// ChatsOf.
func deleteReclaimDone(t *testing.T, s instachat.Store) {
	app := deleteSetup(t, s, 2, 3)
	other := deleteSetup(t, s, 2, 2)
	deleteReclaimAll(t, s, 1000) // whatever other cases left
	if _, err := s.DeleteChat(t.Context(), app.Token, 1, storeTime(50)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteChat(t.Context(), other.Token, 2, storeTime(50)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteApplication(t.Context(), other.Token, storeTime(51)); err != nil {
		t.Fatal(err)
	}
	down := errors.New("search engine down")
	var calls []instachat.Scope
	fail := true
	done := func(ctx context.Context, scope instachat.Scope) error {
		if ctx == nil {
			t.Error("done called without a context")
		}
		calls = append(calls, scope)
		if fail {
			return down
		}
		return nil
	}
	reclaim := func() (int64, error) {
		t.Helper()
		for range 1000 {
			n, err := s.Reclaim(t.Context(), 2, done)
			if err != nil || n == 0 {
				return n, err
			}
		}
		t.Fatal("Reclaim never finished")
		return 0, nil
	}
	first := instachat.MessagesOf(app.Token, 1)
	if _, err := reclaim(); !errors.Is(err, down) {
		t.Fatalf("Reclaim with done failing: error %v, want done's", err)
	}
	if !slices.Equal(calls, []instachat.Scope{first}) {
		t.Fatalf("done called with %v, want the first deleted chat, %v", calls, first)
	}
	deleteWantMessages(t, s, app.Token, 2, 1, 2, 3)
	// The record stays: the next call, done failing again, calls it again.
	calls = nil
	if _, err := s.Reclaim(t.Context(), 2, done); !errors.Is(err, down) || !slices.Equal(calls, []instachat.Scope{first}) {
		t.Fatalf("Reclaim after done failed: error %v, done called with %v; want done's error, done called again with %v", err, calls, first)
	}
	calls, fail = nil, false
	if _, err := reclaim(); err != nil {
		t.Fatalf("Reclaim with done succeeding: %v", err)
	}
	if want := []instachat.Scope{first, instachat.MessagesOf(other.Token, 2), instachat.ChatsOf(other.Token)}; !slices.Equal(calls, want) {
		t.Errorf("done called with %v, want %v: each deletion once, in order", calls, want)
	}
	calls = nil
	if n, err := s.Reclaim(t.Context(), 2, done); n != 0 || err != nil || len(calls) != 0 {
		t.Errorf("Reclaim once done succeeded = %d, %v, done called with %v; want 0, nil and no call", n, err, calls)
	}
	deleteWantMessages(t, s, app.Token, 2, 1, 2, 3)
}

// deleteRecount: Recount counts what is not deleted.
func deleteRecount(t *testing.T, s instachat.Store) {
	app := deleteSetup(t, s, 3, 3)
	if _, err := s.DeleteMessage(t.Context(), app.Token, 1, 2, storeTime(50)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteChat(t.Context(), app.Token, 3, storeTime(51)); err != nil {
		t.Fatal(err)
	}
	if err := s.Recount(t.Context()); err != nil {
		t.Fatalf("Recount: %v", err)
	}
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 2, 2: 3})
}
