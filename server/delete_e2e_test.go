package server_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/feedtest"
	"github.com/instachat/instachat/internal/testenv"
)

func TestDeletesEndToEnd(t *testing.T) { deletesEndToEnd(t, start(t, t.TempDir())) }

func TestProductionDeletesEndToEnd(t *testing.T) {
	deletesEndToEnd(t, startProduction(t, productionConfig(t)))
}

// deletesEndToEnd creates 2,000 messages in 4 chats from 8 writers while a
// deleter deletes random ones — the newest acknowledged first, which in
// production are often not stored yet — and, halfway, the whole of chat 4.
// Afterwards every list, count, search and changes feed is exactly the
// surviving set, a client resuming the feed from 0 or from a mid-point
// converges to it, and no number of a deleted message or chat is issued
// again.
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

	var (
		mu       sync.Mutex
		acked    = map[int64]map[int64]bool{} // chat → numbers answered 2xx
		deleted  = map[int64]map[int64]bool{} // chat → numbers deleted (204)
		recent   []instachat.Message          // acknowledged, newest last
		chatGone bool
		refused  int // creates to chat 4 refused once it was deleted
		early    int // deletes answered 404: the create not stored yet
	)
	for c := int64(1); c <= chats; c++ {
		acked[c], deleted[c] = map[int64]bool{}, map[int64]bool{}
	}
	var wg sync.WaitGroup
	for w := range writers {
		chat := int64(w%chats) + 1
		wg.Go(func() {
			for i := range each {
				m, _, err := r.client.CreateMessage(ctx, app.Token, chat, fmt.Sprintf("e2e writer %d message %d", w, i), "")
				mu.Lock()
				switch {
				case err == nil:
					acked[chat][m.Number] = true
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

	// The mid-point client: the feed of chat 1 read from 0 once about a
	// quarter of the creates are answered.
	mid := feedtest.NewClient()
	var pending []instachat.Message // deletes answered 404, to retry
	deleter, written := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(deleter)
		rng := rand.New(rand.NewPCG(1, 2))
		tookMid := false
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
			if !tookMid && total >= writers*each/4 {
				tookMid = true
				if err := applyChanges(ctx, r, mid, instachat.Topic{Token: app.Token, Chat: 1}); err != nil {
					t.Errorf("mid-point changes: %v", err)
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
	t.Logf("%d messages acknowledged, %d deleted (%d first answered 404, not stored yet), %d creates refused after chat %d's delete",
		len(recent), ndel, early, refused, chats)

	survivors := func(chat int64) []int64 {
		var ns []int64
		for n := range acked[chat] {
			if !deleted[chat][n] {
				ns = append(ns, n)
			}
		}
		slices.Sort(ns)
		return ns
	}
	for chat := int64(1); chat < chats; chat++ {
		want := survivors(chat)
		testenv.Eventually(t, 10*time.Second, func() error {
			msgs, err := r.client.AllMessages(ctx, app.Token, chat)
			if err != nil {
				return err
			}
			got := make([]int64, len(msgs))
			for i, m := range msgs {
				got[i] = m.Number
			}
			if !slices.Equal(got, want) {
				return fmt.Errorf("chat %d lists %d messages, want the %d surviving", chat, len(got), len(want))
			}
			c, err := r.client.FindChat(ctx, app.Token, chat)
			if err != nil || c.MessagesCount != int64(len(want)) {
				return fmt.Errorf("chat %d: %+v, %v; want messages_count %d", chat, c, err, len(want))
			}
			return nil
		})
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
		if !slices.Equal(found, want) {
			t.Errorf("search of chat %d finds %d messages, want the %d surviving", chat, len(found), len(want))
		}
		fromZero := feedtest.NewClient()
		if err := applyChanges(ctx, r, fromZero, instachat.Topic{Token: app.Token, Chat: chat}); err != nil {
			t.Fatal(err)
		}
		clients := map[string]*feedtest.Client{"from 0": fromZero}
		if chat == 1 {
			if err := applyChanges(ctx, r, mid, instachat.Topic{Token: app.Token, Chat: 1}); err != nil {
				t.Fatal(err)
			}
			clients["from the mid-point"] = mid
		}
		for name, cl := range clients {
			if got := slices.Sorted(maps.Keys(cl.Messages)); !slices.Equal(got, want) {
				t.Errorf("chat %d: the client resuming %s holds %d messages, want the %d surviving", chat, name, len(got), len(want))
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
