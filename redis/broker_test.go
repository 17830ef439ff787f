package redis

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
	"github.com/instachat/instachat/internal/testenv"
)

func TestBrokerConformance(t *testing.T) {
	conformance.TestBroker(t, func(t *testing.T, buffer int) (a, b instachat.Broker) {
		url, prefix := testenv.RedisPrefix(t)
		return openBrokerAt(t, url, prefix, buffer), openBrokerAt(t, url, prefix, buffer)
	})
}

func openBrokerAt(t *testing.T, url, prefix string, buffer int) *Broker {
	t.Helper()
	b, err := OpenBroker(url, prefix, BrokerOptions{Buffer: buffer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// TestBrokerChannelsInTheApplicationSlot checks the channel names: the
// token hash-tagged, so a feed lives on the shard of its application.
func TestBrokerChannelsInTheApplicationSlot(t *testing.T) {
	b := &Broker{prefix: "p:"}
	if got := b.channelName(instachat.Topic{Token: "T", Chat: 7}); got != "p:{T}:feed:7" {
		t.Errorf("chat channel %q, want p:{T}:feed:7", got)
	}
	if got := b.channelName(instachat.Topic{Token: "T"}); got != "p:{T}:feed" {
		t.Errorf("application channel %q, want p:{T}:feed", got)
	}
}

// shardChannels lists the sharded channels Redis has subscribers on under
// prefix.
func shardChannels(t *testing.T, b *Broker, prefix string) []string {
	t.Helper()
	chans, err := b.client.Do(t.Context(), b.client.B().PubsubShardchannels().Pattern(prefix+"*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	return chans
}

// TestBrokerOneSubscriptionPerTopic checks that many local subscribers of
// a topic share one SSUBSCRIBE, and that the channel is unsubscribed once
// the last of them left.
func TestBrokerOneSubscriptionPerTopic(t *testing.T) {
	url, prefix := testenv.RedisPrefix(t)
	b := openBrokerAt(t, url, prefix, 0)
	topic := instachat.Topic{Token: instachat.NewToken(), Chat: 1}
	var subs []instachat.Subscription
	for range 5 {
		s, err := b.Subscribe(t.Context(), topic)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	n, err := b.client.Do(t.Context(), b.client.B().PubsubShardnumsub().Channel(b.channelName(topic)).Build()).AsIntMap()
	if err != nil {
		t.Fatal(err)
	}
	if got := n[b.channelName(topic)]; got != 1 {
		t.Errorf("SHARDNUMSUB = %d with five local subscribers, want 1", got)
	}
	for _, s := range subs {
		s.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(shardChannels(t, b, prefix)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("channels %v still subscribed after every subscriber closed", shardChannels(t, b, prefix))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And a new subscriber subscribes it again.
	s, err := b.Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := b.Publish(t.Context(), topic, instachat.Event{Event: instachat.EventMessageCreated, Revision: 1,
		Message: &instachat.Message{Number: 1}}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-s.Events():
		if e.Revision != 1 || e.Message.Token != topic.Token || e.Message.Chat != 1 {
			t.Errorf("received %+v (message %+v)", e, e.Message)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after subscribing again")
	}
}

// TestBrokerLostConnectionEndsSubscriptions kills the subscribing
// connection on the server: every subscription it carried ends with
// EUNAVAILABLE, so its stream ends and its client resumes, instead of
// waiting unknowingly for events published while it was down.
func TestBrokerLostConnectionEndsSubscriptions(t *testing.T) {
	url, prefix := testenv.RedisPrefix(t)
	b := openBrokerAt(t, url, prefix, 0)
	topic := instachat.Topic{Token: instachat.NewToken(), Chat: 1}
	s, err := b.Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	killSubscribers(t, url, b, b.channelName(topic))
	select {
	case _, ok := <-s.Events():
		if ok {
			t.Fatal("an event arrived instead of the end")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the subscription outlived its connection")
	}
	if err := s.Err(); instachat.ErrorCode(err) != instachat.EUNAVAILABLE || errors.Is(err, instachat.ErrSlowSubscriber) {
		t.Fatalf("ended with %v, want EUNAVAILABLE", err)
	}
	// Redis is still there: subscribing again works and delivers.
	s2, err := b.Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("subscribe after the loss: %v", err)
	}
	defer s2.Close()
	if err := b.Publish(t.Context(), topic, instachat.Event{Event: instachat.EventMessageCreated, Revision: 2,
		Message: &instachat.Message{Number: 2}}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-s2.Events():
		if e.Revision != 2 {
			t.Fatalf("received revision %d, want 2", e.Revision)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event after resubscribing")
	}
}

// killSubscribers kills, with CLIENT KILL from another client, the one
// connection b keeps to Redis, which carries its subscriptions.
func killSubscribers(t *testing.T, url string, b *Broker, channel string) {
	t.Helper()
	id, err := b.client.Do(t.Context(), b.client.B().ClientId().Build()).AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	info, err := b.client.Do(t.Context(), b.client.B().ClientInfo().Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(info, " ssub=0 ") {
		t.Fatalf("the broker's connection has no sharded subscription to %s: %s", channel, info)
	}
	other := openBrokerAt(t, url, "", 0)
	if err := other.client.Do(t.Context(), other.client.B().ClientKill().Id(id).Build()).Error(); err != nil {
		t.Fatal(err)
	}
}
