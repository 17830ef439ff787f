package server_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/feed"
	"github.com/instachat/instachat/internal/feedtest"
	"github.com/instachat/instachat/internal/testenv"
)

func TestDeletesEndToEnd(t *testing.T) { deletesEndToEnd(t, start(t, t.TempDir())) }

func TestProductionDeletesEndToEnd(t *testing.T) {
	deletesEndToEnd(t, startProduction(t, productionConfig(t)))
}

// deletesEndToEnd creates 2,000 messages in 4 chats from 8 writers while a
// deleter deletes random ones — the newest acknowledged first, which in
// production are often not stored yet — edits some, and, halfway, deletes
// the whole of chat 4. Live subscribers follow every chat meanwhile, over
// SSE and WebSocket: one from revision 0 and one from a mid-point revision,
// each on one connection held through the load, and on the surviving chats
// one more from 0 that drops and resumes at random. Afterwards every list,
// count, search and changes feed is exactly the surviving set, each
// subscriber holds exactly it (numbers and bodies), the deleted chat's
// streams end with chat.deleted, a client resuming the changes feed from 0
// or from a mid-point converges to it too, and no number of a deleted
// message or chat is issued again.
func deletesEndToEnd(t *testing.T, r *running) {
	const writers, each, chats = 8, 250, 4
	ctx := t.Context()
	app, err := r.client.CreateApplication(ctx, "e2e deletes")
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= chats; n++ {
		if _, _, err := r.client.CreateChat(ctx, app.Token, "", ""); err != nil {
			t.Fatal(err)
		}
		r.readable(t, fmt.Sprintf("/api/v1/applications/%s/chats/%d", app.Token, n))
	}

	// The live subscribers. Chats 1 and 3 are followed from 0 over SSE and
	// from the mid-point over WebSocket, chats 2 and 4 the other way round,
	// so the deleted chat's stream is seen to end on both transports.
	type live struct {
		name string
		feedtest.Subscriber
	}
	var subs sync.WaitGroup
	results := make(chan live, 3*chats)
	finals := make([]atomic.Int64, chats+1) // a surviving chat's final revision, -1 until known
	for c := range finals {
		finals[c].Store(-1)
	}
	t.Cleanup(func() { // a test that failed on the way releases them
		for c := range finals {
			finals[c].Store(0)
		}
		subs.Wait()
	})
	subscribe := func(name string, chat int64, ws bool, opt feedtest.Options) {
		subs.Go(func() {
			results <- live{name, feedtest.SubscribeWith(r.URL(), app.Token, chat, ws, &finals[chat], opt)}
		})
	}

	var (
		mu       sync.Mutex
		acked    = map[int64]map[int64]string{} // chat → number → body, as last answered (create, edit)
		deleted  = map[int64]map[int64]bool{}   // chat → numbers deleted (204)
		recent   []instachat.Message            // acknowledged, newest last
		chatGone bool
		refused  int // creates to chat 4 refused once it was deleted
		early    int // deletes answered 404: the create not stored yet
		edits    int
	)
	for c := int64(1); c <= chats; c++ {
		acked[c], deleted[c] = map[int64]string{}, map[int64]bool{}
	}
	var wg sync.WaitGroup
	for w := range writers {
		chat := int64(w%chats) + 1
		wg.Go(func() {
			for i := range each {
				body := fmt.Sprintf("e2e writer %d message %d", w, i)
				m, _, err := r.client.CreateMessage(ctx, app.Token, chat, body, "")
				mu.Lock()
				switch {
				case err == nil:
					acked[chat][m.Number] = body
					recent = append(recent, *m)
				case chat == chats && chatGone && instachat.ErrorCode(err) == instachat.ENOTFOUND:
					refused++
				default:
					t.Errorf("create in chat %d: %v", chat, err)
				}
				mu.Unlock()
			}
		})
	}

	// The mid-point client of the changes feed: chat 1's feed read from 0
	// once about a quarter of the creates are answered.
	var mid *feedtest.Client
	var pending []instachat.Message // deletes answered 404, to retry
	deleter, written := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(deleter)
		rng := rand.New(rand.NewPCG(1, 2))
		opened, tookMid := false, false
		for done := false; !done; {
			mu.Lock()
			n := len(recent)
			var m instachat.Message
			if n > 0 {
				if rng.IntN(2) == 0 {
					m = recent[n-1] // just answered: in production often not stored yet
				} else {
					m = recent[rng.IntN(n)]
				}
			}
			gone, total := chatGone, n+refused
			mu.Unlock()
			select {
			case <-written:
				done = true
			default:
			}
			if !opened && total >= writers*each/20 {
				// Subscribers from 0, once creates and deletes are under way.
				opened = true
				for c := int64(1); c <= chats; c++ {
					subscribe("from 0, held", c, c%2 == 0, feedtest.Options{Hold: true})
					if c < chats {
						subscribe("from 0, dropping", c, c%2 == 1, feedtest.Options{Seed: uint64(c)})
					}
				}
			}
			if !tookMid && total >= writers*each/4 {
				// Subscribers from a mid-point: a client that loaded the
				// chat at the revision it was at then.
				tookMid = true
				for c := int64(1); c <= chats; c++ {
					cl := feedtest.NewClient()
					if err := applyChanges(ctx, r, cl, instachat.Topic{Token: app.Token, Chat: c}); err != nil {
						t.Errorf("chat %d: mid-point changes: %v", c, err)
						continue
					}
					if c == 1 {
						mid = cl.Clone()
					}
					subscribe(fmt.Sprintf("from the mid-point %d, held", cl.Last), c, c%2 == 1, feedtest.Options{From: cl, Hold: true})
				}
			}
			if !gone && total >= writers*each/2 {
				mu.Lock()
				chatGone = true // from now on a create to it may be refused
				mu.Unlock()
				if err := r.client.DeleteChat(ctx, app.Token, chats); err != nil {
					t.Errorf("DELETE chat %d: %v", chats, err)
				}
				continue
			}
			if n == 0 || m.Chat == chats {
				time.Sleep(time.Millisecond)
				continue
			}
			mu.Lock()
			already := deleted[m.Chat][m.Number]
			mu.Unlock()
			if already {
				continue
			}
			if rng.IntN(4) == 0 { // an edit, for the bodies the subscribers must hold
				body := fmt.Sprintf("e2e edit %d of message %d", edits, m.Number)
				switch _, err := r.client.UpdateMessage(ctx, app.Token, m.Chat, m.Number, body); instachat.ErrorCode(err) {
				case "":
					mu.Lock()
					acked[m.Chat][m.Number] = body
					mu.Unlock()
					edits++
				case instachat.ENOTFOUND: // not stored yet
				default:
					t.Errorf("PATCH message %d of chat %d: %v", m.Number, m.Chat, err)
				}
				continue
			}
			switch err := r.client.DeleteMessage(ctx, app.Token, m.Chat, m.Number); instachat.ErrorCode(err) {
			case "":
				mu.Lock()
				deleted[m.Chat][m.Number] = true
				mu.Unlock()
			case instachat.ENOTFOUND:
				mu.Lock()
				early++
				pending = append(pending, m)
				mu.Unlock()
			default:
				t.Errorf("DELETE message %d of chat %d: %v", m.Number, m.Chat, err)
			}
			time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
		}
	}()
	wg.Wait()
	close(written)
	<-deleter
	if t.Failed() {
		t.FailNow()
	}
	// A delete refused because its create was not stored yet succeeds once
	// it is: the choice documented for deletes that race their create.
	for _, m := range pending {
		if deleted[m.Chat][m.Number] {
			continue
		}
		testenv.Eventually(t, 10*time.Second, func() error {
			err := r.client.DeleteMessage(ctx, app.Token, m.Chat, m.Number)
			if err == nil {
				deleted[m.Chat][m.Number] = true
			}
			return err
		})
	}
	ndel := 0
	for _, d := range deleted {
		ndel += len(d)
	}
	t.Logf("%d messages acknowledged, %d deleted (%d first answered 404, not stored yet), %d edited, %d creates refused after chat %d's delete",
		len(recent), ndel, early, edits, refused, chats)

	survivors := func(chat int64) map[int64]string {
		ms := map[int64]string{}
		for n, body := range acked[chat] {
			if !deleted[chat][n] {
				ms[n] = body
			}
		}
		return ms
	}
	// Once the surviving chats list exactly what survived, their revisions
	// are final: every live subscriber must reach it and hold the same.
	for chat := int64(1); chat < chats; chat++ {
		want := survivors(chat)
		testenv.Eventually(t, 10*time.Second, func() error {
			msgs, err := r.client.AllMessages(ctx, app.Token, chat)
			if err != nil {
				return err
			}
			got := map[int64]string{}
			for _, m := range msgs {
				got[m.Number] = m.Body
			}
			if d := feedtest.Diff(got, want); d != "" {
				return fmt.Errorf("chat %d lists %d messages, want the %d surviving: %s", chat, len(got), len(want), d)
			}
			c, err := r.client.FindChat(ctx, app.Token, chat)
			if err != nil || c.MessagesCount != int64(len(want)) {
				return fmt.Errorf("chat %d: %+v, %v; want messages_count %d", chat, c, err, len(want))
			}
			finals[chat].Store(c.Revision)
			return nil
		})
	}
	subs.Wait()
	close(results)
	var seen []string
	for res := range results {
		what := fmt.Sprintf("chat %d: the %s subscriber %s (%d connections)", res.Chat, res.Transport, res.name, res.Connections)
		seen = append(seen, what)
		switch {
		case res.Err != nil:
			t.Errorf("%s: %v", what, res.Err)
		case res.Chat < chats:
			if d := feedtest.Diff(res.Client.Messages, survivors(res.Chat)); d != "" || res.Client.Deleted {
				t.Errorf("%s holds %d messages, want the %d surviving: %s (chat deleted: %t)",
					what, len(res.Client.Messages), len(survivors(res.Chat)), d, res.Client.Deleted)
			}
		default:
			// The deleted chat's streams end with chat.deleted (Apply
			// refuses any event after it), then the server closes them,
			// saying why: WebSocket with 1000, normal closure, since
			// there is nothing to resume.
			want := instachat.ErrorMessage(feed.ErrDeleted)
			if res.Transport == "websocket" {
				want = fmt.Sprintf("%d: %s", websocket.StatusNormalClosure, want)
			}
			if !res.Client.Deleted || res.End != want {
				t.Errorf("%s: chat.deleted received: %t, the stream ended with %q; want chat.deleted, then %q",
					what, res.Client.Deleted, res.End, want)
			}
		}
	}
	slices.Sort(seen)
	t.Logf("live subscribers checked:\n%s", strings.Join(seen, "\n"))
	if len(seen) != 3*chats-1 {
		t.Fatalf("%d live subscribers ran, want %d", len(seen), 3*chats-1)
	}

	for chat := int64(1); chat < chats; chat++ {
		want := survivors(chat)
		numbers := slices.Sorted(maps.Keys(want))
		var found []int64
		for offset := 0; ; offset += 100 {
			page, err := r.client.SearchMessages(ctx, instachat.SearchQuery{Token: app.Token, Chat: chat, Terms: []string{"e2e"}, Offset: offset, Limit: 100})
			if err != nil {
				t.Fatalf("search chat %d: %v", chat, err)
			}
			for _, m := range page {
				found = append(found, m.Number)
			}
			if len(page) < 100 {
				break
			}
		}
		slices.Sort(found)
		if !slices.Equal(found, numbers) {
			t.Errorf("search of chat %d finds %d messages, want the %d surviving", chat, len(found), len(numbers))
		}
		fromZero := feedtest.NewClient()
		if err := applyChanges(ctx, r, fromZero, instachat.Topic{Token: app.Token, Chat: chat}); err != nil {
			t.Fatal(err)
		}
		clients := map[string]*feedtest.Client{"from 0": fromZero}
		if chat == 1 && mid != nil {
			if err := applyChanges(ctx, r, mid, instachat.Topic{Token: app.Token, Chat: 1}); err != nil {
				t.Fatal(err)
			}
			clients["from the mid-point"] = mid
		}
		for name, cl := range clients {
			if d := feedtest.Diff(cl.Messages, want); d != "" {
				t.Errorf("chat %d: the client resuming changes %s holds %d messages, want the %d surviving: %s", chat, name, len(cl.Messages), len(want), d)
			}
		}
		// Numbering continues above every number issued, deleted or not.
		m, _, err := r.client.CreateMessage(ctx, app.Token, chat, "after", "")
		if err != nil || m.Number <= slices.Max(slices.Collect(maps.Keys(acked[chat]))) {
			t.Errorf("chat %d: a create after the deletes got %+v, %v; want a number above every one issued", chat, m, err)
		}
	}
	if _, err := r.client.FindChat(ctx, app.Token, chats); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("GET the deleted chat: %v, want 404", err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if a, err := r.client.FindApplication(ctx, app.Token); err != nil || a.ChatsCount != chats-1 {
			return fmt.Errorf("application %+v, %v; want chats_count %d", a, err, chats-1)
		}
		return nil
	})
	if c, _, err := r.client.CreateChat(ctx, app.Token, "", ""); err != nil || c.Number != chats+1 {
		t.Errorf("a chat created after the deletes: %+v, %v; want number %d", c, err, chats+1)
	}
}

// applyChanges applies the topic's changes after the client's last
// revision, page by page, as a client resuming would.
func applyChanges(ctx context.Context, r *running, cl *feedtest.Client, topic instachat.Topic) error {
	after := cl.Last
	for cursor := int64(0); ; {
		page, err := r.client.ListChanges(ctx, instachat.ChangesQuery{Topic: topic, After: after, Cursor: cursor, Limit: 100})
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			if err := cl.Apply(e); err != nil {
				return err
			}
			cursor = e.Revision
		}
		if !page.More {
			cl.Last = max(cl.Last, page.Revision)
			return nil
		}
	}
}
