package conformance

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/feedtest"
)

// TestFeeds checks the revisions a store keeps and the changes it lists
// (see instachat.Feeds). open may return a fresh store or a shared one, as
// for TestStore: each case works under applications of its own.
func TestFeeds(t *testing.T, open func(t *testing.T) instachat.Store) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s instachat.Store)
	}{
		{"RevisionsOfCreates", feedRevisionsOfCreates},
		{"RevisionsOfEdits", feedRevisionsOfEdits},
		{"RevisionsUnderConcurrency", feedRevisionsUnderConcurrency},
		{"ConcurrentEditsOfOneMessage", feedConcurrentEditsOfOneMessage},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
	TestFeedChanges(t, open)
}

// TestFeedChanges is the part of TestFeeds that checks only what
// ListChanges lists (and the rows' counts and revisions as its events and
// pages show them), not the revisions kept in the rows, which the API does
// not show: it runs through the API too.
func TestFeedChanges(t *testing.T, open func(t *testing.T) instachat.Store) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s instachat.Store)
	}{
		{"MessagesBeforeTheirChat", feedMessagesBeforeTheirChat},
		{"ChangesLatestStates", feedChangesLatestStates},
		{"ChangesPages", feedChangesPages},
		{"ApplicationChanges", feedApplicationChanges},
		{"ChangesRefused", feedChangesRefused},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

// feedRevisionsOfCreates: a batch's chats take consecutive application
// revisions and each chat's messages consecutive chat revisions, in batch
// order, filled into the creates; a create skipped as stored takes none.
func feedRevisionsOfCreates(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	feedWantRevision(t, s, app.Token, 0, 0)
	batch := []instachat.Create{storeChat(app.Token, 1), storeChat(app.Token, 2),
		storeMessage(app.Token, 1, 1), storeMessage(app.Token, 2, 1), storeMessage(app.Token, 1, 2), storeMessage(app.Token, 1, 3)}
	storeApply(t, s, batch...)
	for i, want := range []struct{ revision, appRevision int64 }{{3, 1}, {1, 2}} {
		c := batch[i].Chat
		if c.Revision != want.revision || c.AppRevision != want.appRevision || c.CreatedAppRevision != want.appRevision {
			t.Errorf("chat %d after ApplyCreates: revision %d, app revision %d, created at app revision %d; want %d, %d, %d",
				c.Number, c.Revision, c.AppRevision, c.CreatedAppRevision, want.revision, want.appRevision, want.appRevision)
		}
	}
	for i, want := range []int64{1, 1, 2, 3} {
		m := batch[2+i].Message
		if m.Revision != want || m.CreatedRevision != want {
			t.Errorf("message %d.%d after ApplyCreates: revision %d, created at %d; want %d", m.Chat, m.Number, m.Revision, m.CreatedRevision, want)
		}
	}
	feedWantRevision(t, s, app.Token, 0, 2)
	feedWantRevision(t, s, app.Token, 1, 3)
	feedWantRevision(t, s, app.Token, 2, 1)
	got, err := s.FindMessage(t.Context(), app.Token, 1, 2)
	if err != nil || got.Revision != 2 || got.CreatedRevision != 2 {
		t.Errorf("FindMessage(1.2) = %+v, %v; want revision 2, created at 2", got, err)
	}
	chats, err := s.ListChats(t.Context(), app.Token, 0, 10)
	if err != nil || len(chats) != 2 || chats[0].Revision != 3 || chats[1].Revision != 1 || chats[1].AppRevision != 2 {
		t.Errorf("ListChats = %v, %v; want chat revisions 3 and 1, chat 2 at app revision 2", chats, err)
	}

	// A redelivery, and a batch mixing stored and new creates.
	again := []instachat.Create{storeChat(app.Token, 1), storeMessage(app.Token, 1, 2)}
	storeApply(t, s, again...)
	if again[0].Chat.AppRevision != 0 || again[1].Message.Revision != 0 {
		t.Errorf("creates skipped as stored were given revisions %d and %d, want none", again[0].Chat.AppRevision, again[1].Message.Revision)
	}
	feedWantRevision(t, s, app.Token, 0, 2)
	feedWantRevision(t, s, app.Token, 1, 3)
	mixed := []instachat.Create{storeMessage(app.Token, 1, 1), storeMessage(app.Token, 1, 4), storeChat(app.Token, 2),
		storeChat(app.Token, 3), storeMessage(app.Token, 1, 3), storeMessage(app.Token, 1, 5)}
	storeApply(t, s, mixed...)
	for i, want := range []int64{0, 4, 0, 0, 0, 5} {
		if m := mixed[i].Message; m != nil && m.Revision != want {
			t.Errorf("message %d.%d of a mixed batch: revision %d, want %d", m.Chat, m.Number, m.Revision, want)
		}
	}
	if c := mixed[3].Chat; c.AppRevision != 3 || mixed[2].Chat.AppRevision != 0 {
		t.Errorf("chats of a mixed batch: new at app revision %d (want 3), stored given %d (want none)", c.AppRevision, mixed[2].Chat.AppRevision)
	}
	feedWantRevision(t, s, app.Token, 0, 3)
	feedWantRevision(t, s, app.Token, 1, 5)
}

// feedRevisionsOfEdits: an edit takes the chat's next revision, a rename the
// application's; the creation's revision stays. Messages, however many, and
// renaming the application advance no application revision.
func feedRevisionsOfEdits(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	storeApply(t, s, storeChat(app.Token, 1), storeChat(app.Token, 2), storeMessage(app.Token, 1, 1), storeMessage(app.Token, 1, 2))
	m, err := s.UpdateMessage(t.Context(), app.Token, 1, 1, "edited", storeTime(7))
	if err != nil || m.Revision != 3 || m.CreatedRevision != 1 {
		t.Fatalf("UpdateMessage = %+v, %v; want revision 3, created at 1", m, err)
	}
	m, err = s.UpdateMessage(t.Context(), app.Token, 1, 1, "edited again", storeTime(8))
	if err != nil || m.Revision != 4 || m.CreatedRevision != 1 {
		t.Fatalf("UpdateMessage again = %+v, %v; want revision 4, created at 1", m, err)
	}
	if got, err := s.FindMessage(t.Context(), app.Token, 1, 1); err != nil || got.Revision != 4 || got.CreatedRevision != 1 {
		t.Errorf("FindMessage after edits = %+v, %v; want revision 4, created at 1", got, err)
	}
	feedWantRevision(t, s, app.Token, 1, 4)
	_, err = s.UpdateMessage(t.Context(), app.Token, 1, 9, "nothing", storeTime(8))
	wantCode(t, err, instachat.ENOTFOUND, "UpdateMessage of an unknown message")
	feedWantRevision(t, s, app.Token, 1, 4)

	feedWantRevision(t, s, app.Token, 0, 2)
	c, err := s.UpdateChat(t.Context(), app.Token, 1, "renamed", storeTime(9))
	if err != nil || c.AppRevision != 3 || c.CreatedAppRevision != 1 || c.Revision != 4 {
		t.Fatalf("UpdateChat = %+v, %v; want app revision 3, created at 1, revision 4", c, err)
	}
	_, err = s.UpdateChat(t.Context(), app.Token, 5, "nothing", storeTime(9))
	wantCode(t, err, instachat.ENOTFOUND, "UpdateChat of an unknown chat")
	if _, err := s.UpdateApplication(t.Context(), app.Token, "renamed app", storeTime(9)); err != nil {
		t.Fatal(err)
	}
	storeApply(t, s, storeMessage(app.Token, 2, 1), storeMessage(app.Token, 2, 2))
	feedWantRevision(t, s, app.Token, 0, 3)
	if got, err := s.FindChat(t.Context(), app.Token, 1); err != nil || got.AppRevision != 3 || got.CreatedAppRevision != 1 {
		t.Errorf("FindChat after a rename = %+v, %v; want app revision 3, created at 1", got, err)
	}
}

// feedMessagesBeforeTheirChat: messages stored before their chat row take
// the chat's revisions all the same, and the row starts where they left it.
func feedMessagesBeforeTheirChat(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	early := []instachat.Create{storeMessage(app.Token, 1, 1), storeMessage(app.Token, 1, 2)}
	storeApply(t, s, early...)
	if early[0].Message.Revision != 1 || early[1].Message.Revision != 2 {
		t.Errorf("messages before their chat: revisions %d, %d; want 1, 2", early[0].Message.Revision, early[1].Message.Revision)
	}
	_, err := s.ListChanges(t.Context(), instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 1}, Limit: 10})
	wantCode(t, err, instachat.ENOTFOUND, "ListChanges of a chat whose row is not stored")
	if m, err := s.UpdateMessage(t.Context(), app.Token, 1, 1, "edited before the chat", storeTime(5)); err != nil || m.Revision != 3 {
		t.Errorf("UpdateMessage before the chat's row = %+v, %v; want revision 3", m, err)
	}
	chat := storeChat(app.Token, 1)
	storeApply(t, s, chat, storeMessage(app.Token, 1, 3))
	if chat.Chat.Revision != 4 || chat.Chat.MessagesCount != 3 || chat.Chat.AppRevision != 1 {
		t.Errorf("the chat stored after its messages: %+v; want revision 4, 3 messages, app revision 1", *chat.Chat)
	}
	feedWantRevision(t, s, app.Token, 1, 4)
	page := feedList(t, s, instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 1}, Limit: 10})
	feedWantEvents(t, "changes of the chat stored after its messages", page.Events, "message.created 2@2", "message.created 1@3", "message.created 3@4")
}

// feedChangesLatestStates: each message once, in its latest state, ordered
// by its latest revision, created or updated as seen from After.
func feedChangesLatestStates(t *testing.T, s instachat.Store) {
	app, _ := storeFiveMessages(t, s)
	storeApply(t, s, storeMessage(app.Token, 2, 1))
	for _, n := range []int64{2, 4, 2} {
		if _, err := s.UpdateMessage(t.Context(), app.Token, 1, n, fmt.Sprintf("edit of %d", n), storeTime(20)); err != nil {
			t.Fatal(err)
		}
	}
	topic := instachat.Topic{Token: app.Token, Chat: 1}
	for after, want := range map[int64][]string{
		0: {"message.created 1@1", "message.created 3@3", "message.created 5@5", "message.created 4@7", "message.created 2@8"},
		3: {"message.created 5@5", "message.created 4@7", "message.updated 2@8"},
		5: {"message.updated 4@7", "message.updated 2@8"},
		7: {"message.updated 2@8"},
		8: nil,
	} {
		page := feedList(t, s, instachat.ChangesQuery{Topic: topic, After: after, Limit: 10})
		what := fmt.Sprintf("changes after %d", after)
		feedWantEvents(t, what, page.Events, want...)
		if page.Revision != 8 || page.More {
			t.Errorf("%s: revision %d, more %t; want 8, no more", what, page.Revision, page.More)
		}
		for _, e := range page.Events {
			stored, err := s.FindMessage(t.Context(), app.Token, 1, e.Message.Number)
			storeWant(t, what+": the message listed", e.Message, err, stored, sameMessage)
		}
	}
}

// feedChangesPages: pages of Limit, each cursor the previous page's last
// revision, give what one page gives, with the After split unchanged.
func feedChangesPages(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	creates := []instachat.Create{storeChat(app.Token, 1)}
	for n := range int64(23) {
		creates = append(creates, storeMessage(app.Token, 1, n+1))
	}
	storeApply(t, s, creates...)
	for _, n := range []int64{3, 10, 3, 17, 1} {
		if _, err := s.UpdateMessage(t.Context(), app.Token, 1, n, fmt.Sprintf("edit of %d", n), storeTime(30)); err != nil {
			t.Fatal(err)
		}
	}
	topic := instachat.Topic{Token: app.Token, Chat: 1}
	for _, after := range []int64{0, 5, 20} {
		whole := feedList(t, s, instachat.ChangesQuery{Topic: topic, After: after, Limit: 100})
		var paged []instachat.Event
		for cursor, pages := int64(0), 0; ; pages++ {
			page := feedList(t, s, instachat.ChangesQuery{Topic: topic, After: after, Cursor: cursor, Limit: 4})
			if page.Revision != whole.Revision || len(page.Events) > 4 || page.More && len(page.Events) != 4 || pages > 10 {
				t.Fatalf("page after %d, cursor %d: %d events, revision %d, more %t", after, cursor, len(page.Events), page.Revision, page.More)
			}
			paged = append(paged, page.Events...)
			if !page.More {
				break
			}
			cursor = page.Events[len(page.Events)-1].Revision
		}
		feedWantEvents(t, fmt.Sprintf("pages after %d", after), paged, feedtest.Names(whole.Events)...)
		if len(whole.Events) == 0 {
			t.Errorf("changes after %d are empty", after)
		}
	}
}

// feedApplicationChanges: the application's feed lists chats created and
// renamed, each once, in its latest state.
func feedApplicationChanges(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	storeApply(t, s, storeChat(app.Token, 1), storeChat(app.Token, 2), storeChat(app.Token, 3))
	if _, err := s.UpdateChat(t.Context(), app.Token, 2, "renamed", storeTime(9)); err != nil {
		t.Fatal(err)
	}
	storeApply(t, s, storeMessage(app.Token, 1, 1), storeMessage(app.Token, 1, 2))
	topic := instachat.Topic{Token: app.Token}
	page := feedList(t, s, instachat.ChangesQuery{Topic: topic, Limit: 10})
	feedWantEvents(t, "application changes", page.Events, "chat.created 1@1", "chat.created 3@3", "chat.created 2@4")
	if page.Revision != 4 || page.More {
		t.Errorf("application changes: revision %d, more %t; want 4, no more", page.Revision, page.More)
	}
	for _, e := range page.Events {
		stored, err := s.FindChat(t.Context(), app.Token, e.Chat.Number)
		storeWant(t, "the chat listed", e.Chat, err, stored, sameChat)
		if e.Chat.Revision != stored.Revision {
			t.Errorf("chat %d listed at revision %d, stored at %d", e.Chat.Number, e.Chat.Revision, stored.Revision)
		}
	}
	page = feedList(t, s, instachat.ChangesQuery{Topic: topic, After: 2, Limit: 1})
	feedWantEvents(t, "application changes after 2, first page", page.Events, "chat.created 3@3")
	page = feedList(t, s, instachat.ChangesQuery{Topic: topic, After: 2, Cursor: 3, Limit: 1})
	feedWantEvents(t, "application changes after 2, second page", page.Events, "chat.updated 2@4")
	if page.More {
		t.Errorf("the last page of application changes says there is more")
	}
}

// feedChangesRefused: unknown feeds are ENOTFOUND; a revision above the
// feed's and a malformed query are EBADREQUEST.
func feedChangesRefused(t *testing.T, s instachat.Store) {
	app := storeNewApp(t, s, 0)
	storeApply(t, s, storeChat(app.Token, 1), storeMessage(app.Token, 1, 1))
	ctx := t.Context()
	for _, c := range []struct {
		q    instachat.ChangesQuery
		code string
		what string
	}{
		{instachat.ChangesQuery{Topic: instachat.Topic{Token: instachat.NewToken()}, Limit: 10}, instachat.ENOTFOUND, "unknown application"},
		{instachat.ChangesQuery{Topic: instachat.Topic{Token: instachat.NewToken(), Chat: 1}, Limit: 10},
			instachat.ENOTFOUND, "chat of an unknown application"},
		{instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 2}, Limit: 10}, instachat.ENOTFOUND, "unknown chat"},
		{instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 1}, After: 2, Limit: 10},
			instachat.EBADREQUEST, "chat feed after its revision"},
		{instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token}, After: 2, Limit: 10},
			instachat.EBADREQUEST, "application feed after its revision"},
		{instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 1}, After: -1, Limit: 10}, instachat.EBADREQUEST, "negative after"},
		{instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 1}}, instachat.EBADREQUEST, "limit 0"},
	} {
		_, err := s.ListChanges(ctx, c.q)
		wantCode(t, err, c.code, "ListChanges of "+c.what)
	}
	page := feedList(t, s, instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: 1}, After: 1, Limit: 10})
	if len(page.Events) != 0 || page.Revision != 1 || page.More {
		t.Errorf("changes after the current revision = %+v; want none, revision 1", page)
	}
	empty := storeNewApp(t, s, 1)
	page = feedList(t, s, instachat.ChangesQuery{Topic: instachat.Topic{Token: empty.Token}, Limit: 10})
	if len(page.Events) != 0 || page.Revision != 0 {
		t.Errorf("changes of an application without chats = %+v; want none, revision 0", page)
	}
}

// feedRevisionsUnderConcurrency has writers apply batches to a few chats
// while editors edit their messages and rename the chats, and readers list
// the changes. Afterwards each feed's revisions handed out are exactly
// 1..N, each once; every message's stored state is its change with the
// highest revision; a batch's messages of a chat took consecutive
// revisions; and every page a reader got agreed with its revision.
func feedRevisionsUnderConcurrency(t *testing.T, s instachat.Store) {
	const chats, writers, batches, perBatch, editors, edits = 3, 4, 12, 8, 4, 40
	app := storeNewApp(t, s, 0)
	var setup []instachat.Create
	for c := range int64(chats) {
		setup = append(setup, storeChat(app.Token, c+1))
	}
	storeApply(t, s, setup...)

	// change is a revision handed out, and what it stored.
	type change struct {
		number   int64
		body     string
		revision int64
		created  bool
	}
	var mu sync.Mutex
	changes := map[int64][]change{} // by chat
	var appRevisions []int64
	for _, c := range setup {
		appRevisions = append(appRevisions, c.Chat.AppRevision)
	}
	names := map[int64]map[int64]string{} // chat → app revision → name
	record := func(chat int64, c change) {
		mu.Lock()
		defer mu.Unlock()
		changes[chat] = append(changes[chat], c)
	}
	var numbers [chats]atomic.Int64
	var created [chats]atomic.Int64 // the highest number stored, roughly
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range batches {
				var batch []instachat.Create
				for range perBatch {
					chat := 1 + rng.Int64N(chats)
					n := numbers[chat-1].Add(1)
					batch = append(batch, instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: chat, Number: n,
						Body: fmt.Sprintf("created %d.%d", chat, n), CreatedAt: storeTime(0), UpdatedAt: storeTime(0)}})
				}
				if err := feedRetry(func() error { return s.ApplyCreates(t.Context(), batch) }); err != nil {
					t.Errorf("ApplyCreates: %v", err)
					return
				}
				last := map[int64]int64{}
				for _, c := range batch {
					m := c.Message
					if m.Revision == 0 || m.CreatedRevision != m.Revision {
						t.Errorf("message %d.%d stored without its revisions: %d, created at %d", m.Chat, m.Number, m.Revision, m.CreatedRevision)
						continue
					}
					if prev, ok := last[m.Chat]; ok && m.Revision != prev+1 {
						t.Errorf("a batch's messages of chat %d took revisions %d then %d, not consecutive", m.Chat, prev, m.Revision)
					}
					last[m.Chat] = m.Revision
					record(m.Chat, change{m.Number, m.Body, m.Revision, true})
					for {
						if old := created[m.Chat-1].Load(); old >= m.Number || created[m.Chat-1].CompareAndSwap(old, m.Number) {
							break
						}
					}
				}
			}
		})
	}
	for e := range editors {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(e), 2))
			for i := range edits {
				chat := 1 + rng.Int64N(chats)
				if e == 0 && i%4 == 0 {
					name := fmt.Sprintf("renamed by %d, %d", e, i)
					var c *instachat.Chat
					err := feedRetry(func() (err error) {
						c, err = s.UpdateChat(t.Context(), app.Token, chat, name, storeTime(i))
						return err
					})
					if err != nil {
						t.Errorf("UpdateChat: %v", err)
						return
					}
					mu.Lock()
					appRevisions = append(appRevisions, c.AppRevision)
					if names[chat] == nil {
						names[chat] = map[int64]string{}
					}
					names[chat][c.AppRevision] = name
					mu.Unlock()
					continue
				}
				high := created[chat-1].Load()
				if high == 0 {
					continue
				}
				n := 1 + rng.Int64N(high)
				body := fmt.Sprintf("edit %d.%d by %d, %d", chat, n, e, i)
				var m *instachat.Message
				err := feedRetry(func() (err error) {
					m, err = s.UpdateMessage(t.Context(), app.Token, chat, n, body, storeTime(i))
					return err
				})
				if instachat.ErrorCode(err) == instachat.ENOTFOUND {
					continue // a lower number another writer has not stored yet
				}
				if err != nil {
					t.Errorf("UpdateMessage(%d.%d): %v", chat, n, err)
					return
				}
				record(chat, change{n, body, m.Revision, false})
			}
		})
	}
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				time.Sleep(time.Millisecond) // leave the writers room
				chat := int64(1 + r%chats)
				page, err := s.ListChanges(t.Context(), instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: chat}, Limit: 1000})
				if instachat.ErrorCode(err) == instachat.EUNAVAILABLE {
					continue
				}
				if err != nil {
					t.Errorf("ListChanges beside writers: %v", err)
					return
				}
				// The feed's newest change is some message's latest, so a
				// whole feed read in one snapshot ends at its revision.
				if len(page.Events) > 0 && !page.More && page.Events[len(page.Events)-1].Revision != page.Revision {
					t.Errorf("a page read beside writers ends at revision %d but says the feed is at %d",
						page.Events[len(page.Events)-1].Revision, page.Revision)
					return
				}
			}
		})
	}
	wg.Wait()
	close(done)
	readers.Wait()
	if t.Failed() {
		return
	}

	for chat := int64(1); chat <= chats; chat++ {
		list := changes[chat]
		revs := make([]int64, len(list))
		latest := map[int64]change{}
		for i, c := range list {
			revs[i] = c.revision
			if c.revision > latest[c.number].revision {
				latest[c.number] = c
			}
		}
		slices.Sort(revs)
		for i, r := range revs {
			if r != int64(i+1) {
				t.Fatalf("chat %d: the revisions handed out, sorted, are %v…; want 1..%d each once", chat, revs[:i+1], len(revs))
			}
		}
		feedWantRevision(t, s, app.Token, chat, int64(len(revs)))
		msgs, err := s.ListMessages(t.Context(), app.Token, chat, 0, len(latest)+1)
		if err != nil || len(msgs) != len(latest) {
			t.Fatalf("chat %d: ListMessages = %d messages, %v; want %d", chat, len(msgs), err, len(latest))
		}
		for _, m := range msgs {
			want := latest[m.Number]
			if m.Body != want.body || m.Revision != want.revision {
				t.Errorf("message %d.%d is %q at revision %d; its change with the highest revision is %q at %d: commit order and revision order differ",
					chat, m.Number, m.Body, m.Revision, want.body, want.revision)
			}
		}
		var events []instachat.Event
		for cursor := int64(0); ; {
			page := feedList(t, s, instachat.ChangesQuery{Topic: instachat.Topic{Token: app.Token, Chat: chat}, Cursor: cursor, Limit: 7})
			events = append(events, page.Events...)
			if !page.More {
				break
			}
			cursor = page.Events[len(page.Events)-1].Revision
		}
		if len(events) != len(msgs) {
			t.Errorf("chat %d: the changes list %d messages, %d are stored", chat, len(events), len(msgs))
		}
		for _, e := range events {
			if want := latest[e.Message.Number]; e.Event != instachat.EventMessageCreated || e.Revision != want.revision || e.Message.Body != want.body {
				t.Errorf("chat %d: listed %s of %d at %d (%q); want message.created at %d (%q)", chat, e.Event,
					e.Message.Number, e.Revision, e.Message.Body, want.revision, want.body)
			}
		}
	}
	slices.Sort(appRevisions)
	for i, r := range appRevisions {
		if r != int64(i+1) {
			t.Fatalf("the application revisions handed out, sorted, are %v; want 1..%d each once", appRevisions, len(appRevisions))
		}
	}
	feedWantRevision(t, s, app.Token, 0, int64(len(appRevisions)))
	for chat, byRevision := range names {
		c, err := s.FindChat(t.Context(), app.Token, chat)
		last := slices.Max(slices.Collect(maps.Keys(byRevision)))
		if err != nil || c.Name != byRevision[last] || c.AppRevision != last {
			t.Errorf("chat %d = %+v, %v; its rename with the highest revision is %q at %d", chat, c, err, byRevision[last], last)
		}
	}
}

// feedConcurrentEditsOfOneMessage: edits of one message at once, and
// renames of one chat, each take a revision of their own, and the one
// stored is the one with the highest.
func feedConcurrentEditsOfOneMessage(t *testing.T, s instachat.Store) {
	const editors, edits = 6, 8
	app := storeNewApp(t, s, 0)
	storeApply(t, s, storeChat(app.Token, 1), storeMessage(app.Token, 1, 1))
	var mu sync.Mutex
	bodies, names := map[int64]string{}, map[int64]string{}
	var wg sync.WaitGroup
	for e := range editors {
		wg.Go(func() {
			for i := range edits {
				text := fmt.Sprintf("edit %d by %d", i, e)
				var m *instachat.Message
				var c *instachat.Chat
				err := feedRetry(func() (err error) {
					m, err = s.UpdateMessage(t.Context(), app.Token, 1, 1, text, storeTime(i))
					return err
				})
				if err == nil {
					err = feedRetry(func() (err error) { c, err = s.UpdateChat(t.Context(), app.Token, 1, text, storeTime(i)); return err })
				}
				if err != nil {
					t.Errorf("edit: %v", err)
					return
				}
				mu.Lock()
				if _, dup := bodies[m.Revision]; dup {
					t.Errorf("two edits of message 1 were given revision %d", m.Revision)
				}
				if _, dup := names[c.AppRevision]; dup {
					t.Errorf("two renames of chat 1 were given application revision %d", c.AppRevision)
				}
				bodies[m.Revision], names[c.AppRevision] = text, text
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	last := slices.Max(slices.Collect(maps.Keys(bodies)))
	if m, err := s.FindMessage(t.Context(), app.Token, 1, 1); err != nil || m.Body != bodies[last] || m.Revision != last || last != 1+editors*edits {
		t.Errorf("message 1 = %+v, %v; want %q, its edit at the highest revision %d of %d", m, err, bodies[last], last, 1+editors*edits)
	}
	last = slices.Max(slices.Collect(maps.Keys(names)))
	if c, err := s.FindChat(t.Context(), app.Token, 1); err != nil || c.Name != names[last] || c.AppRevision != last || last != 1+editors*edits {
		t.Errorf("chat 1 = %+v, %v; want %q, its rename at the highest revision %d of %d", c, err, names[last], last, 1+editors*edits)
	}
}

// feedRetry runs fn again while it fails for now (a deadlock the store gave
// up retrying), as the queue and a client would.
func feedRetry(fn func() error) error {
	for {
		if err := fn(); instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
			return err
		}
	}
}

func feedList(t *testing.T, s instachat.Store, q instachat.ChangesQuery) *instachat.ChangesPage {
	t.Helper()
	page, err := s.ListChanges(t.Context(), q)
	if err != nil {
		t.Fatalf("ListChanges(%+v): %v", q, err)
	}
	return page
}

// feedWantRevision checks the current revision of a chat's feed, or of the
// application's (chat 0), as Find and ListChanges report it.
func feedWantRevision(t *testing.T, s instachat.Store, token string, chat, want int64) {
	t.Helper()
	var got int64
	if chat == 0 {
		app, err := s.FindApplication(t.Context(), token)
		if err != nil {
			t.Fatal(err)
		}
		got = app.Revision
	} else {
		c, err := s.FindChat(t.Context(), token, chat)
		if err != nil {
			t.Fatal(err)
		}
		got = c.Revision
	}
	page, err := s.ListChanges(t.Context(), instachat.ChangesQuery{Topic: instachat.Topic{Token: token, Chat: chat}, After: want, Limit: 1})
	if err != nil || got != want || page.Revision != want || len(page.Events) != 0 {
		t.Errorf("feed of chat %d: revision %d stored, ListChanges after it = %+v, %v; want %d, no events", chat, got, page, err, want)
	}
}

func feedWantEvents(t *testing.T, what string, got []instachat.Event, want ...string) {
	t.Helper()
	if names := feedtest.Names(got); !slices.Equal(names, want) {
		t.Errorf("%s:\n%v\nwant\n%v", what, names, want)
	}
}
