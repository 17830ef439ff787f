package inmem

import (
	"testing"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
)

func TestBrokerConformance(t *testing.T) {
	conformance.TestBroker(t, func(_ *testing.T, buffer int) (a, b instachat.Broker) {
		br := NewBroker(BrokerOptions{Buffer: buffer})
		return br, br
	})
}

// TestBrokerOnIdle checks that the hook the Redis broker unsubscribes with
// fires once the last subscriber of a topic left, however it left.
func TestBrokerOnIdle(t *testing.T) {
	idle := make(chan instachat.Topic, 4)
	b := NewBroker(BrokerOptions{Buffer: 1, OnIdle: func(tp instachat.Topic) { idle <- tp }})
	topic := instachat.Topic{Token: "t", Chat: 1}
	s1, _ := b.Subscribe(t.Context(), topic)
	s2, _ := b.Subscribe(t.Context(), topic)
	s1.Close()
	select {
	case tp := <-idle:
		t.Fatalf("OnIdle(%+v) with a subscriber left", tp)
	default:
	}
	// s2 never reads: the second event overflows its buffer of one.
	b.Publish(t.Context(), topic, instachat.Event{Revision: 1}, instachat.Event{Revision: 2})
	select {
	case tp := <-idle:
		if tp != topic {
			t.Fatalf("OnIdle(%+v), want %+v", tp, topic)
		}
	default:
		t.Fatal("OnIdle not called after the last subscriber fell behind")
	}
	if n := b.Subscribers(topic); n != 0 {
		t.Fatalf("Subscribers = %d after both left", n)
	}
	for range s2.Events() {
	}
}
