package conformance

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// TestStore checks a Store backend. open may return a fresh store or one
// shared by every subtest: each subtest works under applications of its own
// and runs alone, so a shared store sees no interleaved writes.
func TestStore(t *testing.T, open func(t *testing.T) instachat.Store) {
	opened := func(test func(*testing.T, instachat.Store)) func(*testing.T) {
		return func(t *testing.T) { test(t, open(t)) }
	}
	t.Run("finds an application by token; a second create of the token conflicts", opened(testStoreApplication))
	t.Run("renames an application, keeping its chats count", opened(testStoreUpdateApplication))
	t.Run("lists applications in creation order, page by page", opened(testStoreListApplications))
	t.Run("finds, lists and renames chats; unknown ones are not found", opened(testStoreChats))
	t.Run("finds, lists and edits messages; unknown ones are not found", opened(testStoreMessages))
	t.Run("FindMessages finds the stored messages among numbers", opened(testStoreFindMessages))
	t.Run("a batch stores its chats before their messages", opened(testStoreChatsBeforeMessages))
	t.Run("a batch applied again changes nothing", opened(testStoreApplyTwice))
	t.Run("messages stored before their chat count in it", opened(testStoreMessagesBeforeTheirChat))
	t.Run("an invalid create refuses its whole batch", opened(testStoreApplyInvalid))
	t.Run("Recount recomputes the counts from the rows", opened(testStoreRecount))
	t.Run("HighestNumber of an application and of its chats", opened(testStoreHighestNumber))
	t.Run("Watermarks of every application and chat", opened(testStoreWatermarks))
}

func testStoreApplication(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	got, err := s.FindApplication(t.Context(), app.Token)
	storeWant(t, "FindApplication", got, err, app, sameApp)

	dup := *app
	dup.Name = "another name"
	wantCode(t, s.CreateApplication(t.Context(), &dup), instachat.ECONFLICT, "CreateApplication of an existing token")
	got, err = s.FindApplication(t.Context(), app.Token)
	storeWant(t, "FindApplication after a conflicting create", got, err, app, sameApp)

	_, err = s.FindApplication(t.Context(), instachat.NewToken())
	wantCode(t, err, instachat.ENOTFOUND, "FindApplication of an unknown token")
}

func testStoreUpdateApplication(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	storeApply(t, s, storeChat(app.Token, 1))
	want := *app
	want.Name, want.UpdatedAt, want.ChatsCount = storeText[2], storeTime(5), 1
	got, err := s.UpdateApplication(t.Context(), app.Token, want.Name, want.UpdatedAt)
	storeWant(t, "UpdateApplication", got, err, &want, sameApp)
	got, err = s.FindApplication(t.Context(), app.Token)
	storeWant(t, "FindApplication after UpdateApplication", got, err, &want, sameApp)

	_, err = s.UpdateApplication(t.Context(), instachat.NewToken(), "name", storeTime(5))
	wantCode(t, err, instachat.ENOTFOUND, "UpdateApplication of an unknown token")
}

func testStoreListApplications(t *testing.T, s instachat.Store) {
	var mine []*instachat.Application
	for i := range 5 {
		mine = append(mine, storeNewApp(t, s, i))
	}
	var all []string
	for after := ""; ; {
		page, err := s.ListApplications(t.Context(), after, 2)
		if err != nil {
			t.Fatalf("ListApplications(%q, 2): %v", after, err)
		}
		if len(page) > 2 {
			t.Fatalf("ListApplications(%q, 2) returned %d applications", after, len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, a := range page {
			if slices.Contains(all, a.Token) {
				t.Fatalf("ListApplications returned %s twice", a.Token)
			}
			all = append(all, a.Token)
		}
		after = page[len(page)-1].Token
	}
	first := slices.Index(all, mine[0].Token)
	if first < 0 || len(all) < first+len(mine) {
		t.Fatalf("walking every page did not return the applications created, in order")
	}
	for i, a := range mine {
		if all[first+i] != a.Token {
			t.Fatalf("application %d created is listed at %d, want %d: not in creation order", i, slices.Index(all, a.Token), first+i)
		}
	}

	page, err := s.ListApplications(t.Context(), mine[1].Token, 2)
	if err != nil || len(page) != 2 {
		t.Fatalf("ListApplications(after the 2nd, 2) = %d applications, %v; want 2", len(page), err)
	}
	storeWant(t, "ListApplications[0]", page[0], nil, mine[2], sameApp)
	storeWant(t, "ListApplications[1]", page[1], nil, mine[3], sameApp)
}

func testStoreChats(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	var chats []*instachat.Chat
	for n := range int64(5) {
		c := storeChat(app.Token, n+1)
		storeApply(t, s, c)
		chats = append(chats, c.Chat)
	}
	for _, c := range chats {
		got, err := s.FindChat(t.Context(), app.Token, c.Number)
		storeWant(t, "FindChat", got, err, c, sameChat)
	}
	storeWalk(t, "ListChats", 2, chats, func(after int64, limit int) ([]*instachat.Chat, error) {
		return s.ListChats(t.Context(), app.Token, after, limit)
	}, func(c *instachat.Chat) int64 { return c.Number }, sameChat)

	empty := storeNewApp(t, s, 1)
	if got, err := s.ListChats(t.Context(), empty.Token, 0, 10); err != nil || len(got) != 0 {
		t.Errorf("ListChats of an application without chats = %d chats, %v; want none, no error", len(got), err)
	}
	_, err := s.ListChats(t.Context(), instachat.NewToken(), 0, 10)
	wantCode(t, err, instachat.ENOTFOUND, "ListChats of an unknown application")
	_, err = s.FindChat(t.Context(), app.Token, 6)
	wantCode(t, err, instachat.ENOTFOUND, "FindChat of an unknown number")
	_, err = s.FindChat(t.Context(), empty.Token, 1)
	wantCode(t, err, instachat.ENOTFOUND, "FindChat in an application without chats")

	want := *chats[1]
	want.Name, want.UpdatedAt = "", storeTime(9) // chat names may be empty
	got, err := s.UpdateChat(t.Context(), app.Token, want.Number, want.Name, want.UpdatedAt)
	storeWant(t, "UpdateChat", got, err, &want, sameChat)
	got, err = s.FindChat(t.Context(), app.Token, want.Number)
	storeWant(t, "FindChat after UpdateChat", got, err, &want, sameChat)
	_, err = s.UpdateChat(t.Context(), app.Token, 6, "name", storeTime(9))
	wantCode(t, err, instachat.ENOTFOUND, "UpdateChat of an unknown number")
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 0, 2: 0, 3: 0, 4: 0, 5: 0})
}

func testStoreMessages(t *testing.T, s instachat.Store) {
	app, msgs := storeFiveMessages(t, s)
	for _, m := range msgs {
		got, err := s.FindMessage(t.Context(), app.Token, 1, m.Number)
		storeWant(t, "FindMessage", got, err, m, sameMessage)
	}
	storeWalk(t, "ListMessages", 2, msgs, func(after int64, limit int) ([]*instachat.Message, error) {
		return s.ListMessages(t.Context(), app.Token, 1, after, limit)
	}, func(m *instachat.Message) int64 { return m.Number }, sameMessage)

	if got, err := s.ListMessages(t.Context(), app.Token, 2, 0, 10); err != nil || len(got) != 0 {
		t.Errorf("ListMessages of a chat without messages = %d messages, %v; want none, no error", len(got), err)
	}
	_, err := s.ListMessages(t.Context(), app.Token, 3, 0, 10)
	wantCode(t, err, instachat.ENOTFOUND, "ListMessages of an unknown chat")
	_, err = s.ListMessages(t.Context(), instachat.NewToken(), 1, 0, 10)
	wantCode(t, err, instachat.ENOTFOUND, "ListMessages of an unknown application")
	_, err = s.FindMessage(t.Context(), app.Token, 1, 6)
	wantCode(t, err, instachat.ENOTFOUND, "FindMessage of an unknown number")
	_, err = s.FindMessage(t.Context(), app.Token, 2, 1)
	wantCode(t, err, instachat.ENOTFOUND, "FindMessage in a chat without messages")

	want := *msgs[1]
	want.Body, want.UpdatedAt = storeText[0], storeTime(9)
	got, err := s.UpdateMessage(t.Context(), app.Token, 1, want.Number, want.Body, want.UpdatedAt)
	storeWant(t, "UpdateMessage", got, err, &want, sameMessage)
	got, err = s.FindMessage(t.Context(), app.Token, 1, want.Number)
	storeWant(t, "FindMessage after UpdateMessage", got, err, &want, sameMessage)
	_, err = s.UpdateMessage(t.Context(), app.Token, 2, 1, "body", storeTime(9))
	wantCode(t, err, instachat.ENOTFOUND, "UpdateMessage of an unknown message")
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 5, 2: 0})
}

func testStoreFindMessages(t *testing.T, s instachat.Store) {
	app, msgs := storeFiveMessages(t, s)
	storeApply(t, s, storeMessage(app.Token, 2, 3))
	// In no particular order, with numbers not stored, and a number stored
	// in another chat only.
	got, err := s.FindMessages(t.Context(), app.Token, 1, []int64{5, 9, 2, 0, 4})
	if err != nil {
		t.Fatalf("FindMessages: %v", err)
	}
	slices.SortFunc(got, func(a, b *instachat.Message) int { return cmp.Compare(a.Number, b.Number) })
	if len(got) != 3 {
		t.Fatalf("FindMessages(5, 9, 2, 0, 4) = %d messages; want 2, 4 and 5", len(got))
	}
	for i, want := range []*instachat.Message{msgs[1], msgs[3], msgs[4]} {
		storeWant(t, fmt.Sprintf("FindMessages[%d]", i), got[i], nil, want, sameMessage)
	}
	if got, err := s.FindMessages(t.Context(), app.Token, 2, []int64{1, 2, 4, 5}); err != nil || len(got) != 0 {
		t.Errorf("FindMessages in chat 2 of numbers stored in chat 1 only = %d messages, %v; want none", len(got), err)
	}
	for _, c := range []struct {
		what  string
		token string
		chat  int64
		nums  []int64
	}{
		{"of no numbers", app.Token, 1, nil},
		{"in an unknown chat", app.Token, 3, []int64{1}},
		{"in an unknown application", instachat.NewToken(), 1, []int64{1}},
	} {
		if got, err := s.FindMessages(t.Context(), c.token, c.chat, c.nums); err != nil || len(got) != 0 {
			t.Errorf("FindMessages %s = %d messages, %v; want none, no error", c.what, len(got), err)
		}
	}
}

func testStoreChatsBeforeMessages(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	storeApply(t, s, storeMessage(app.Token, 1, 1), storeMessage(app.Token, 1, 2), storeChat(app.Token, 1),
		storeMessage(app.Token, 2, 1), storeChat(app.Token, 2))
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 2, 2: 1})
}

func testStoreApplyTwice(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	batch := []instachat.Create{storeChat(app.Token, 1), storeChat(app.Token, 2),
		storeMessage(app.Token, 1, 1), storeMessage(app.Token, 1, 2), storeMessage(app.Token, 1, 3), storeMessage(app.Token, 2, 1)}
	storeApply(t, s, batch...)
	storeApply(t, s, batch...)
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 3, 2: 1})

	// A create whose row exists is skipped, even if it says otherwise.
	chat, msg := *batch[0].Chat, *batch[2].Message
	chat.Name, msg.Body = "renamed by a redelivery", "rewritten by a redelivery"
	storeApply(t, s, instachat.Create{Chat: &chat}, instachat.Create{Message: &msg})
	wantChat := *batch[0].Chat
	wantChat.MessagesCount = 3
	gotChat, err := s.FindChat(t.Context(), app.Token, 1)
	storeWant(t, "FindChat after a redelivery", gotChat, err, &wantChat, sameChat)
	gotMsg, err := s.FindMessage(t.Context(), app.Token, 1, 1)
	storeWant(t, "FindMessage after a redelivery", gotMsg, err, batch[2].Message, sameMessage)

	// Old and new mixed, and a create repeated within the batch.
	more := append(batch, storeChat(app.Token, 3), storeMessage(app.Token, 1, 4), storeMessage(app.Token, 1, 4))
	storeApply(t, s, more...)
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 4, 2: 1, 3: 0})
}

func testStoreMessagesBeforeTheirChat(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	storeApply(t, s, storeMessage(app.Token, 1, 1), storeMessage(app.Token, 1, 2), storeMessage(app.Token, 1, 3))
	storeApply(t, s, storeMessage(app.Token, 2, 1))
	storeApply(t, s, storeChat(app.Token, 1))
	storeApply(t, s, storeMessage(app.Token, 2, 2), storeChat(app.Token, 2))
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 3, 2: 2})
	storeApply(t, s, storeMessage(app.Token, 1, 4))
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 4, 2: 2})
}

func testStoreApplyInvalid(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	if err := s.ApplyCreates(t.Context(), nil); err != nil {
		t.Errorf("ApplyCreates of no creates: %v", err)
	}
	chat, msg := storeChat(app.Token, 1), storeMessage(app.Token, 1, 1)
	err := s.ApplyCreates(t.Context(), []instachat.Create{chat, {}})
	wantCode(t, err, instachat.EINVALID, "ApplyCreates of a create with neither chat nor message")
	err = s.ApplyCreates(t.Context(), []instachat.Create{{Chat: chat.Chat, Message: msg.Message}})
	wantCode(t, err, instachat.EINVALID, "ApplyCreates of a create with both a chat and a message")
	// One transaction: the valid create of a refused batch is not stored.
	_, err = s.FindChat(t.Context(), app.Token, 1)
	wantCode(t, err, instachat.ENOTFOUND, "FindChat of a chat in a refused batch")
	storeWantCounts(t, s, app.Token, map[int64]int64{})
}

func testStoreRecount(t *testing.T, s instachat.Store) {
	app, empty := storeNewApp(t, s, 0), storeNewApp(t, s, 1)
	batch := []instachat.Create{storeMessage(app.Token, 2, 1), storeChat(app.Token, 1),
		storeMessage(app.Token, 1, 1), storeMessage(app.Token, 1, 2), storeMessage(app.Token, 2, 2)}
	storeApply(t, s, batch...)
	storeApply(t, s, append(batch, storeChat(app.Token, 2), storeChat(app.Token, 3))...)
	want := map[int64]int64{1: 2, 2: 2, 3: 0}
	storeWantCounts(t, s, app.Token, want)
	if err := s.Recount(t.Context()); err != nil {
		t.Fatalf("Recount: %v", err)
	}
	storeWantCounts(t, s, app.Token, want)
	storeWantCounts(t, s, empty.Token, map[int64]int64{})
}

func testStoreHighestNumber(t *testing.T, s instachat.Store) {
	unknown := instachat.NewToken()
	for _, scope := range []instachat.Scope{instachat.ChatsOf(unknown), instachat.MessagesOf(unknown, 1)} {
		_, err := s.HighestNumber(t.Context(), scope)
		wantCode(t, err, instachat.ENOTFOUND, fmt.Sprintf("HighestNumber(unknown application, chat %d)", scope.Chat))
	}
	app := storeNewApp(t, s, 0)
	storeWantHighest(t, s, instachat.ChatsOf(app.Token), 0)
	storeWantHighest(t, s, instachat.MessagesOf(app.Token, 1), 0)
	storeApply(t, s, storeChat(app.Token, 1), storeChat(app.Token, 3), storeChat(app.Token, 2),
		storeMessage(app.Token, 3, 2), storeMessage(app.Token, 3, 1), storeMessage(app.Token, 3, 3), storeMessage(app.Token, 2, 1))
	storeWantHighest(t, s, instachat.ChatsOf(app.Token), 3)
	storeWantHighest(t, s, instachat.MessagesOf(app.Token, 1), 0)
	storeWantHighest(t, s, instachat.MessagesOf(app.Token, 2), 1)
	storeWantHighest(t, s, instachat.MessagesOf(app.Token, 3), 3)
	storeWantHighest(t, s, instachat.MessagesOf(app.Token, 9), 0)
}

func testStoreWatermarks(t *testing.T, s instachat.Store) {
	a, b := storeNewApp(t, s, 0), storeNewApp(t, s, 1)
	storeApply(t, s, storeChat(b.Token, 1), storeChat(b.Token, 2), storeChat(b.Token, 3),
		storeMessage(b.Token, 1, 1), storeMessage(b.Token, 1, 2), storeMessage(b.Token, 1, 3), storeMessage(b.Token, 1, 4),
		storeMessage(b.Token, 3, 1), storeMessage(b.Token, 3, 2))
	var got []instachat.Watermark
	err := s.Watermarks(t.Context(), func(w instachat.Watermark) error {
		if w.Token == a.Token || w.Token == b.Token {
			got = append(got, w)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Watermarks: %v", err)
	}
	want := []instachat.Watermark{
		{Scope: instachat.ChatsOf(a.Token), Highest: 0},
		{Scope: instachat.ChatsOf(b.Token), Highest: 3},
		{Scope: instachat.MessagesOf(b.Token, 1), Highest: 4},
		{Scope: instachat.MessagesOf(b.Token, 2), Highest: 0},
		{Scope: instachat.MessagesOf(b.Token, 3), Highest: 2},
	}
	order := func(x, y instachat.Watermark) int {
		return cmp.Or(strings.Compare(x.Token, y.Token), cmp.Compare(x.Chat, y.Chat))
	}
	slices.SortFunc(got, order)
	slices.SortFunc(want, order)
	if !slices.Equal(got, want) {
		t.Errorf("Watermarks of two applications:\n%v\nwant\n%v", got, want)
	}

	stop, calls := errors.New("stop"), 0
	err = s.Watermarks(t.Context(), func(instachat.Watermark) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Watermarks with fn failing = %v after %d calls; want fn's error after 1", err, calls)
	}
}

// storeText must come back byte for byte: accents, combining marks, scripts
// written right to left, emoji sequences and SQL-ish punctuation.
var storeText = []string{
	"Café ☕ — naïve Ünïcödé",
	"e\u0301cole: a combining accent",
	"日本語のチャット 🇯🇵",
	"שלום עולם",
	"family 👩‍👩‍👧‍👦 joined",
	`quote ' double " backslash \ percent % underscore _ ; -- /*`,
}

// storeEpoch is microsecond-precise, as every store keeps time, and not in
// UTC, so a store that loses the instant or the microseconds shows it.
var storeEpoch = time.Now().Truncate(time.Microsecond).In(time.FixedZone("UTC+05:30", 5*3600+30*60))

// storeTime is a distinct instant per i.
func storeTime(i int) time.Time {
	return storeEpoch.Add(time.Duration(i) * (time.Second + time.Microsecond))
}

func storeNewApp(t *testing.T, s instachat.Store, i int) *instachat.Application {
	t.Helper()
	app := &instachat.Application{Token: instachat.NewToken(), Name: storeText[i%len(storeText)], CreatedAt: storeTime(i), UpdatedAt: storeTime(i + 1)}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatalf("CreateApplication: %v", err)
	}
	return app
}

func storeChat(token string, n int64) instachat.Create {
	i := int(n)
	return instachat.Create{Chat: &instachat.Chat{Token: token, Number: n, Name: storeText[i%len(storeText)],
		CreatedAt: storeTime(i), UpdatedAt: storeTime(i + 1)}}
}

func storeMessage(token string, chat, n int64) instachat.Create {
	i := int(chat*10 + n)
	body := fmt.Sprintf("%s #%d.%d", storeText[i%len(storeText)], chat, n)
	return instachat.Create{Message: &instachat.Message{Token: token, Chat: chat, Number: n, Body: body,
		CreatedAt: storeTime(i), UpdatedAt: storeTime(i + 1)}}
}

// storeFiveMessages stores a new application with chats 1 and 2 and
// messages 1 to 5 in chat 1, one apply each, and returns the application
// and the messages as stored.
func storeFiveMessages(t *testing.T, s instachat.Store) (*instachat.Application, []*instachat.Message) {
	t.Helper()
	app := storeNewApp(t, s, 0)
	storeApply(t, s, storeChat(app.Token, 1), storeChat(app.Token, 2))
	var msgs []*instachat.Message
	for n := range int64(5) {
		m := storeMessage(app.Token, 1, n+1)
		storeApply(t, s, m)
		msgs = append(msgs, m.Message)
	}
	return app, msgs
}

func storeApply(t *testing.T, s instachat.Store, creates ...instachat.Create) {
	t.Helper()
	if err := s.ApplyCreates(t.Context(), creates); err != nil {
		t.Fatalf("ApplyCreates: %v", err)
	}
}

// storeWalk pages through a list with limit and checks that it returns want,
// in order, each page but the last full.
func storeWalk[T any](t *testing.T, what string, limit int, want []*T,
	list func(after int64, limit int) ([]*T, error), key func(*T) int64, same func(got, want *T) bool) {
	t.Helper()
	var got []*T
	for after := int64(0); ; {
		page, err := list(after, limit)
		if err != nil {
			t.Fatalf("%s(after %d, limit %d): %v", what, after, limit, err)
		}
		if len(page) > limit || len(page) < limit && len(got)+len(page) < len(want) {
			t.Fatalf("%s(after %d, limit %d) returned %d rows", what, after, limit, len(page))
		}
		if len(page) == 0 {
			break
		}
		got = append(got, page...)
		after = key(page[len(page)-1])
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows over every page, want %d", what, len(got), len(want))
	}
	for i := range want {
		storeWant(t, fmt.Sprintf("%s row %d", what, i), got[i], nil, want[i], same)
	}
}

// storeWantCounts checks the application's chats_count and, for each chat
// in chats (number → messages), that it is stored with that messages_count
// and as many messages listed; the application must have no other chat.
func storeWantCounts(t *testing.T, s instachat.Store, token string, chats map[int64]int64) {
	t.Helper()
	app, err := s.FindApplication(t.Context(), token)
	if err != nil {
		t.Fatalf("FindApplication: %v", err)
	}
	if app.ChatsCount != int64(len(chats)) {
		t.Errorf("chats_count = %d, want %d", app.ChatsCount, len(chats))
	}
	stored, err := s.ListChats(t.Context(), token, 0, len(chats)+1)
	if err != nil || len(stored) != len(chats) {
		t.Fatalf("ListChats = %d chats, %v; want %d", len(stored), err, len(chats))
	}
	for _, c := range stored {
		msgs, err := s.ListMessages(t.Context(), token, c.Number, 0, int(chats[c.Number])+1)
		if err != nil {
			t.Fatalf("ListMessages(chat %d): %v", c.Number, err)
		}
		if want, ok := chats[c.Number]; !ok || c.MessagesCount != want || int64(len(msgs)) != want {
			t.Errorf("chat %d: messages_count = %d, %d messages listed; want %d of each (listed: %t)", c.Number, c.MessagesCount, len(msgs), want, ok)
		}
	}
}

func storeWantHighest(t *testing.T, s instachat.Store, scope instachat.Scope, want int64) {
	t.Helper()
	if got, err := s.HighestNumber(t.Context(), scope); err != nil || got != want {
		t.Errorf("HighestNumber(chat %d) = %d, %v; want %d", scope.Chat, got, err, want)
	}
}

// storeWant checks a row read back, every instant compared with time.Equal.
func storeWant[T any](t *testing.T, what string, got *T, err error, want *T, same func(got, want *T) bool) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !same(got, want) {
		t.Errorf("%s = %+v\nwant %+v", what, *got, *want)
	}
}

func sameApp(got, want *instachat.Application) bool {
	return got.Token == want.Token && got.Name == want.Name && got.ChatsCount == want.ChatsCount &&
		got.CreatedAt.Equal(want.CreatedAt) && got.UpdatedAt.Equal(want.UpdatedAt)
}

func sameChat(got, want *instachat.Chat) bool {
	return got.Token == want.Token && got.Number == want.Number && got.Name == want.Name && got.MessagesCount == want.MessagesCount &&
		got.CreatedAt.Equal(want.CreatedAt) && got.UpdatedAt.Equal(want.UpdatedAt)
}

func sameMessage(got, want *instachat.Message) bool {
	return got.Token == want.Token && got.Chat == want.Chat && got.Number == want.Number && got.Body == want.Body &&
		got.CreatedAt.Equal(want.CreatedAt) && got.UpdatedAt.Equal(want.UpdatedAt)
}
