package feed_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/feed"
	"github.com/instachat/instachat/inmem"
)

// committingStore stands for a store: it gives the creates it "stores"
// revisions as a store does once committed, or fails.
type committingStore struct {
	instachat.Store // the methods the publisher does not decorate are not called
	fail            error
	revision        int64
}

func (s *committingStore) ApplyCreates(_ context.Context, creates []instachat.Create) error {
	if s.fail != nil {
		return s.fail
	}
	for _, c := range creates {
		if c.Message != nil && c.Message.Body != "stored already" {
			s.revision++
			c.Message.Revision, c.Message.CreatedRevision = s.revision, s.revision
		}
		if c.Chat != nil {
			c.Chat.AppRevision, c.Chat.CreatedAppRevision = 1, 1
		}
	}
	return nil
}

func (s *committingStore) UpdateMessage(_ context.Context, token string, chat, number int64, body string, at time.Time) (*instachat.Message, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	s.revision++
	return &instachat.Message{Token: token, Chat: chat, Number: number, Body: body, Revision: s.revision, UpdatedAt: at}, nil
}

func (s *committingStore) UpdateChat(_ context.Context, token string, number int64, name string, at time.Time) (*instachat.Chat, error) {
	if s.fail != nil {
		return nil, s.fail
	}
	return &instachat.Chat{Token: token, Number: number, Name: name, AppRevision: 2, UpdatedAt: at}, nil
}

func TestPublisherPublishesWhatCommitted(t *testing.T) {
	b := inmem.NewBroker(inmem.BrokerOptions{})
	store := &committingStore{}
	p := &feed.Publisher{Store: store, Broker: b}
	token := instachat.NewToken()
	app, _ := b.Subscribe(t.Context(), instachat.Topic{Token: token})
	chat, _ := b.Subscribe(t.Context(), instachat.Topic{Token: token, Chat: 1})
	other, _ := b.Subscribe(t.Context(), instachat.Topic{Token: token, Chat: 2})
	defer app.Close()
	defer chat.Close()
	defer other.Close()

	err := p.ApplyCreates(t.Context(), []instachat.Create{
		{Chat: &instachat.Chat{Token: token, Number: 1, Name: "c"}},
		{Message: &instachat.Message{Token: token, Chat: 1, Number: 1, Body: "a"}},
		{Message: &instachat.Message{Token: token, Chat: 1, Number: 2, Body: "stored already"}},
		{Message: &instachat.Message{Token: token, Chat: 1, Number: 3, Body: "b"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e := <-app.Events(); e.Event != instachat.EventChatCreated || e.Revision != 1 || e.Chat.Number != 1 {
		t.Errorf("application topic got %+v, want chat.created@1", e)
	}
	for _, want := range []struct {
		n, r int64
	}{{1, 1}, {3, 2}} {
		e := <-chat.Events()
		if e.Event != instachat.EventMessageCreated || e.Revision != want.r || e.Message.Number != want.n {
			t.Errorf("chat topic got %s@%d #%d, want message.created@%d #%d (a skipped create is not published)",
				e.Event, e.Revision, e.Message.Number, want.r, want.n)
		}
	}
	if _, err := p.UpdateMessage(t.Context(), token, 1, 3, "b2", time.Now()); err != nil {
		t.Fatal(err)
	}
	if e := <-chat.Events(); e.Event != instachat.EventMessageUpdated || e.Revision != 3 || e.Message.Body != "b2" {
		t.Errorf("after the edit got %+v, want message.updated@3", e)
	}
	if _, err := p.UpdateChat(t.Context(), token, 1, "renamed", time.Now()); err != nil {
		t.Fatal(err)
	}
	if e := <-app.Events(); e.Event != instachat.EventChatUpdated || e.Revision != 2 || e.Chat.Name != "renamed" {
		t.Errorf("after the rename got %+v, want chat.updated@2", e)
	}

	// Nothing is published for what did not commit.
	store.fail = instachat.Errorf(instachat.EUNAVAILABLE, "down")
	if err := p.ApplyCreates(t.Context(), []instachat.Create{{Message: &instachat.Message{Token: token, Chat: 1,
		Number: 4, Body: "x"}}}); !errors.Is(err, store.fail) {
		t.Fatalf("ApplyCreates returned %v, want the store's error", err)
	}
	if _, err := p.UpdateMessage(t.Context(), token, 1, 1, "x", time.Now()); !errors.Is(err, store.fail) {
		t.Fatalf("UpdateMessage returned %v, want the store's error", err)
	}
	b.Publish(t.Context(), instachat.Topic{Token: token, Chat: 1}, instachat.Event{Revision: 99})
	if e := <-chat.Events(); e.Revision != 99 {
		t.Errorf("a failed store call published %+v", e)
	}
	select {
	case e := <-other.Events():
		t.Errorf("another chat's topic got %+v", e)
	default:
	}
}
