package conformance

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/feed"
	"github.com/instachat/instachat/internal/feedtest"
)

// OpenBroker opens a broker under test whose subscribers may each have
// buffer events waiting. It returns two handles on one fan-out — the same
// value for an in-process broker, two processes' worth of connections for
// a shared one — so that delivery is shown to cross processes.
type OpenBroker func(t *testing.T, buffer int) (a, b instachat.Broker)

// TestBroker checks a Broker backend: delivery in order to every
// subscriber of a topic and to no other, eviction of a slow subscriber
// without delaying the publisher or anyone else, and Close.
func TestBroker(t *testing.T, open OpenBroker) {
	t.Run("OrderAcrossHandles", func(t *testing.T) {
		a, b := open(t, 1000)
		topic := chatTopic()
		sub := subscribe(t, b, topic)
		for r := int64(1); r <= 300; r += 3 {
			publish(t, a, topic, messageEvents(r, r+1, r+2)...)
		}
		got := receive(t, sub, 300)
		for i, e := range got {
			want := messageEvent(int64(i + 1))
			if !sameEvent(e, want) {
				t.Fatalf("event %d = %s, want %s", i, describe(e), describe(want))
			}
		}
	})

	t.Run("EverySubscriberGetsEverything", func(t *testing.T) {
		a, b := open(t, 1000)
		topic := chatTopic()
		subs := make([]instachat.Subscription, 8)
		for i := range subs {
			subs[i] = subscribe(t, []instachat.Broker{a, b}[i%2], topic)
		}
		for r := int64(1); r <= 50; r++ {
			publish(t, []instachat.Broker{a, b}[r%2], topic, messageEvent(r))
		}
		for i, s := range subs {
			got := receive(t, s, 50)
			if got[0].Revision != 1 || got[49].Revision != 50 {
				t.Errorf("subscriber %d received revisions %d…%d, want 1…50", i, got[0].Revision, got[49].Revision)
			}
		}
	})

	t.Run("ChatAndApplicationEvents", func(t *testing.T) {
		a, b := open(t, 10)
		app := instachat.Topic{Token: instachat.NewToken()}
		sub := subscribe(t, b, app)
		at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
		chat := &instachat.Chat{Token: app.Token, Number: 3, Name: "general", MessagesCount: 7, Revision: 9, AppRevision: 4, CreatedAt: at, UpdatedAt: at}
		publish(t, a, app, instachat.Event{Event: instachat.EventChatUpdated, Revision: 4, Chat: chat})
		got := receive(t, sub, 1)[0]
		c := got.Chat
		if got.Event != instachat.EventChatUpdated || got.Revision != 4 || got.Message != nil || c == nil {
			t.Fatalf("received %s, want chat.updated at 4", describe(got))
		}
		if c.Number != 3 || c.Name != "general" || c.MessagesCount != 7 || c.Revision != 9 || !c.CreatedAt.Equal(at) || !c.UpdatedAt.Equal(at) {
			t.Errorf("received chat %+v, want %+v", *c, *chat)
		}
	})

	t.Run("TopicsAreIsolated", func(t *testing.T) {
		a, b := open(t, 100)
		token := instachat.NewToken()
		topics := []instachat.Topic{{Token: token}, {Token: token, Chat: 1}, {Token: token, Chat: 2}, {Token: instachat.NewToken(), Chat: 1}}
		subs := make([]instachat.Subscription, len(topics))
		for i, tp := range topics {
			subs[i] = subscribe(t, b, tp)
		}
		for i, tp := range topics {
			// Topic i gets i+1 events, each revision naming the topic.
			for n := range i + 1 {
				publish(t, a, tp, messageEvent(int64(100*i+n+1)))
			}
		}
		for i, s := range subs {
			for n, e := range receive(t, s, i+1) {
				if e.Revision != int64(100*i+n+1) {
					t.Errorf("topic %+v received revision %d, want %d: an event of another topic", topics[i], e.Revision, 100*i+n+1)
				}
			}
			// Nothing more arrives: the last publish to every topic
			// has been delivered above, and a later one proves it.
			publish(t, a, topics[i], messageEvent(999))
			if e := receive(t, s, 1)[0]; e.Revision != 999 {
				t.Errorf("topic %+v received revision %d after its own events, want 999", topics[i], e.Revision)
			}
		}
	})

	t.Run("DeletionReachesEveryTopicOfItsApplication", func(t *testing.T) {
		a, b := open(t, 100)
		token := instachat.NewToken()
		mine := []instachat.Topic{{Token: token}, {Token: token, Chat: 1}, {Token: token, Chat: 2}}
		var subs []instachat.Subscription
		for i, tp := range mine {
			subs = append(subs, subscribe(t, []instachat.Broker{a, b}[i%2], tp))
		}
		other := subscribe(t, b, instachat.Topic{Token: instachat.NewToken(), Chat: 1})
		publish(t, a, instachat.DeletionTopic(token), instachat.Event{Event: instachat.EventApplicationDeleted})
		for i, s := range subs {
			if e := receive(t, s, 1)[0]; e.Event != instachat.EventApplicationDeleted {
				t.Errorf("topic %+v received %s, want application.deleted", mine[i], describe(e))
			}
		}
		// Nothing else came: chat 1's next event is its own. And another
		// application's topic received nothing.
		publish(t, a, instachat.Topic{Token: token, Chat: 1}, messageEvent(7))
		if e := receive(t, subs[1], 1)[0]; e.Revision != 7 {
			t.Errorf("chat 1 after the deletion received %s, want its revision 7", describe(e))
		}
		select {
		case e := <-other.Events():
			t.Errorf("another application's topic received %s", describe(e))
		case <-time.After(100 * time.Millisecond):
		}
	})

	t.Run("SlowSubscriberEndedOthersUnaffected", func(t *testing.T) {
		const buffer = 16
		a, b := open(t, buffer)
		topic := chatTopic()
		slow := subscribe(t, b, topic)
		fast := subscribe(t, b, topic)
		// The publisher never waits for slow, who never reads: every
		// publish returns, and fast, who reads each round before the
		// next is published, receives all of them.
		const rounds, perRound = 10, buffer / 2
		for round := range rounds {
			first := int64(round*perRound + 1)
			for r := first; r < first+perRound; r++ {
				publish(t, a, topic, messageEvent(r))
			}
			for i, e := range receive(t, fast, perRound) {
				if e.Revision != first+int64(i) {
					t.Fatalf("fast subscriber received revision %d, want %d", e.Revision, first+int64(i))
				}
			}
		}
		n := drain(t, slow)
		if n > buffer {
			t.Errorf("slow subscriber received %d events after falling behind, more than its buffer of %d", n, buffer)
		}
		if err := slow.Err(); !errors.Is(err, instachat.ErrSlowSubscriber) {
			t.Errorf("slow subscriber ended with %v, want ErrSlowSubscriber", err)
		}
		if fast.Err() != nil {
			t.Errorf("fast subscriber ended: %v", fast.Err())
		}
	})

	t.Run("BatchWithinBufferIsNotSlow", func(t *testing.T) {
		a, b := open(t, 8)
		topic := chatTopic()
		sub := subscribe(t, b, topic)
		publish(t, a, topic, messageEvents(1, 2, 3, 4, 5, 6, 7, 8)...)
		if got := receive(t, sub, 8); got[7].Revision != 8 {
			t.Fatalf("last event has revision %d, want 8", got[7].Revision)
		}
		if sub.Err() != nil {
			t.Fatalf("a publish of exactly the buffer ended the subscriber: %v", sub.Err())
		}
	})

	t.Run("CloseEndsOnlyThatSubscription", func(t *testing.T) {
		a, b := open(t, 100)
		topic := chatTopic()
		closed := subscribe(t, b, topic)
		kept := subscribe(t, b, topic)
		publish(t, a, topic, messageEvent(1))
		receive(t, closed, 1)
		closed.Close()
		closed.Close() // twice is harmless
		drain(t, closed)
		if err := closed.Err(); !errors.Is(err, context.Canceled) {
			t.Errorf("closed subscription ended with %v, want context.Canceled", err)
		}
		publish(t, a, topic, messageEvent(2))
		if got := receive(t, kept, 2); got[1].Revision != 2 {
			t.Errorf("the other subscriber received revision %d, want 2", got[1].Revision)
		}
	})

	t.Run("ResubscribeAfterLastClose", func(t *testing.T) {
		a, b := open(t, 100)
		topic := chatTopic()
		for round := int64(1); round <= 3; round++ {
			s := subscribe(t, b, topic)
			publish(t, a, topic, messageEvent(round))
			if e := receive(t, s, 1)[0]; e.Revision != round {
				t.Fatalf("round %d received revision %d", round, e.Revision)
			}
			s.Close()
			drain(t, s)
		}
	})

	t.Run("StreamFillsGapFromStore", func(t *testing.T) {
		a, b := open(t, 100)
		chat := feedtest.NewChat(chatTopic())
		chat.Create(1, "m1")
		s := &feed.Streamer{Feeds: chat, Broker: b}
		events, wait := runStream(t, s, chat.Topic, 0, false)
		if e := next(t, events); e.Event != instachat.EventSynced || e.Revision != 1 {
			t.Fatalf("first %s, want synced@1", describe(e))
		}
		e2, e3, e4 := chat.Create(2, "m2"), chat.Create(3, "m3"), chat.Edit(2, "m2 edited")
		publish(t, a, chat.Topic, e2)
		publish(t, a, chat.Topic, e4) // 3 was lost on its way
		for _, want := range []string{"message.created@2(#2 \"m2\")", "message.created@3(#3 \"m3\")", "message.updated@4(#2 \"m2 edited\")"} {
			if got := describe(next(t, events)); got != want {
				t.Fatalf("received %s, want %s", got, want)
			}
		}
		// The late publish of 3 is dropped: nothing twice.
		publish(t, a, chat.Topic, e3)
		publish(t, a, chat.Topic, chat.Create(5, "m5"))
		if got := describe(next(t, events)); got != "message.created@5(#5 \"m5\")" {
			t.Fatalf("received %s after the gap, want message.created@5", got)
		}
		wait(context.Canceled)
	})

	t.Run("StreamEndsOnSupersededGap", func(t *testing.T) {
		a, b := open(t, 100)
		chat := feedtest.NewChat(chatTopic())
		s := &feed.Streamer{Feeds: chat, Broker: b}
		events, wait := runStream(t, s, chat.Topic, 0, false)
		next(t, events)                                      // synced@0
		chat.Create(1, "m1")                                 // lost
		publish(t, a, chat.Topic, chat.Edit(1, "m1 edited")) // 2 supersedes 1
		wait(feed.ErrResume)
		events, wait = runStream(t, s, chat.Topic, 0, true)
		if got := describe(next(t, events)); got != "message.created@2(#1 \"m1 edited\")" {
			t.Fatalf("resumed with %s, want message.created@2 in the latest state", got)
		}
		if e := next(t, events); e.Event != instachat.EventSynced || e.Revision != 2 {
			t.Fatalf("then %s, want synced@2", describe(e))
		}
		wait(context.Canceled)
	})

	t.Run("OnlyEventsPublishedAfterSubscribe", func(t *testing.T) {
		a, b := open(t, 100)
		topic := chatTopic()
		before := subscribe(t, b, topic) // holds the topic open
		publish(t, a, topic, messageEvent(1))
		receive(t, before, 1)
		after := subscribe(t, b, topic)
		publish(t, a, topic, messageEvent(2))
		if e := receive(t, after, 1)[0]; e.Revision != 2 {
			t.Errorf("a subscriber that came after revision 1 received %d first, want 2", e.Revision)
		}
	})
}

func chatTopic() instachat.Topic { return instachat.Topic{Token: instachat.NewToken(), Chat: 1} }

// messageEvent is message.created of message r at revision r, the body
// naming the revision so a mix-up shows.
func messageEvent(r int64) instachat.Event {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r) * time.Millisecond)
	return instachat.Event{Event: instachat.EventMessageCreated, Revision: r,
		Message: &instachat.Message{Number: r, Body: fmt.Sprintf("body %d", r), Revision: r, CreatedAt: at, UpdatedAt: at}}
}

func messageEvents(rs ...int64) []instachat.Event {
	es := make([]instachat.Event, len(rs))
	for i, r := range rs {
		es[i] = messageEvent(r)
	}
	return es
}

func sameEvent(a, b instachat.Event) bool {
	if a.Event != b.Event || a.Revision != b.Revision || (a.Message == nil) != (b.Message == nil) {
		return false
	}
	return a.Message == nil || a.Message.Number == b.Message.Number && a.Message.Body == b.Message.Body &&
		a.Message.CreatedAt.Equal(b.Message.CreatedAt) && a.Message.UpdatedAt.Equal(b.Message.UpdatedAt)
}

func describe(e instachat.Event) string {
	switch {
	case e.Message != nil:
		return fmt.Sprintf("%s@%d(#%d %q)", e.Event, e.Revision, e.Message.Number, e.Message.Body)
	case e.Chat != nil:
		return fmt.Sprintf("%s@%d(chat %d)", e.Event, e.Revision, e.Chat.Number)
	}
	return fmt.Sprintf("%s@%d", e.Event, e.Revision)
}

func subscribe(t *testing.T, b instachat.Broker, topic instachat.Topic) instachat.Subscription {
	t.Helper()
	s, err := b.Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("subscribe %+v: %v", topic, err)
	}
	t.Cleanup(s.Close)
	return s
}

func publish(t *testing.T, b instachat.Broker, topic instachat.Topic, events ...instachat.Event) {
	t.Helper()
	if err := b.Publish(t.Context(), topic, events...); err != nil {
		t.Fatalf("publish %+v: %v", topic, err)
	}
}

// brokerWait bounds how long a delivery may take before the suite calls
// it lost; it is a hang detector, not a speed requirement.
const brokerWait = 10 * time.Second

// receive returns the next n events of s, failing if s ends or stalls.
func receive(t *testing.T, s instachat.Subscription, n int) []instachat.Event {
	t.Helper()
	got, err := receiveErr(s, n)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// receiveErr is receive for a goroutine other than the test's.
func receiveErr(s instachat.Subscription, n int) ([]instachat.Event, error) {
	got := make([]instachat.Event, 0, n)
	timeout := time.After(brokerWait)
	for len(got) < n {
		select {
		case e, ok := <-s.Events():
			if !ok {
				return got, fmt.Errorf("subscription ended after %d of %d events: %v", len(got), n, s.Err())
			}
			got = append(got, e)
		case <-timeout:
			return got, fmt.Errorf("received %d of %d events in %v", len(got), n, brokerWait)
		}
	}
	return got, nil
}

// drain reads s until it ends and returns how many events it still held.
func drain(t *testing.T, s instachat.Subscription) int {
	t.Helper()
	n := 0
	timeout := time.After(brokerWait)
	for {
		select {
		case _, ok := <-s.Events():
			if !ok {
				return n
			}
			n++
		case <-timeout:
			t.Fatalf("subscription still open after %v", brokerWait)
		}
	}
}

// streamWriter hands a stream's events to a channel.
type streamWriter chan instachat.Event

func (w streamWriter) Event(e instachat.Event) error { w <- e; return nil }
func (w streamWriter) Heartbeat() error              { return nil }

// runStream opens a stream and runs it in the background. wait cancels it
// unless it ended already and checks why it ended.
func runStream(t *testing.T, s *feed.Streamer, topic instachat.Topic, after int64, resume bool) (<-chan instachat.Event, func(want error)) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	st, err := s.Open(ctx, topic, after, resume)
	if err != nil {
		cancel()
		t.Fatalf("open the stream: %v", err)
	}
	events := make(streamWriter, 100)
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx, events); st.Close() }()
	return events, func(want error) {
		t.Helper()
		if errors.Is(want, context.Canceled) {
			cancel()
		}
		select {
		case err := <-done:
			if !errors.Is(err, want) {
				t.Errorf("the stream ended with %v, want %v", err, want)
			}
		case <-time.After(brokerWait):
			t.Errorf("the stream did not end with %v", want)
		}
		cancel()
	}
}

func next(t *testing.T, events <-chan instachat.Event) instachat.Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(brokerWait):
		t.Fatal("the stream wrote nothing")
		return instachat.Event{}
	}
}
