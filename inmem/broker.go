package inmem

import (
	"cmp"
	"context"
	"sync"

	"github.com/instachat/instachat"
)

// DefaultBuffer is how many events a subscriber may have waiting before it
// is ended as slow. It is larger than the largest batch a worker applies
// (1000 creates), so one batch to one chat never ends a subscriber that
// keeps up; the buffer is a slice that grows only while events wait, so an
// idle subscriber holds none of it.
const DefaultBuffer = 4096

// BrokerOptions tune a Broker; a zero field takes its default.
type BrokerOptions struct {
	// Buffer is how many events one subscriber may have waiting; a publish
	// that would exceed it ends that subscriber with ErrSlowSubscriber.
	Buffer int
	// OnIdle, when set, is called (from no lock of the Broker's) after the
	// last subscriber of a topic left by Close or by falling behind. The
	// Redis broker uses it to unsubscribe the topic's channel.
	OnIdle func(instachat.Topic)
}

// Broker fans events out within one process: the embedded topology's
// broker, and the local fan-out behind the Redis one. Publish costs one
// append per subscriber under the topic's lock and never waits for one:
// every subscriber has a goroutine of its own that hands its waiting events
// to its channel.
type Broker struct {
	buffer int
	onIdle func(instachat.Topic)

	mu     sync.RWMutex
	topics map[instachat.Topic]map[*subscription]struct{}
}

var _ instachat.Broker = (*Broker)(nil)

// NewBroker returns an empty Broker.
func NewBroker(opts BrokerOptions) *Broker {
	return &Broker{
		buffer: cmp.Or(opts.Buffer, DefaultBuffer),
		onIdle: opts.OnIdle,
		topics: map[instachat.Topic]map[*subscription]struct{}{},
	}
}

// Publish hands events to every current subscriber of topic — for a
// DeletionTopic, of every topic of its application. A subscriber whose
// waiting events would exceed the buffer is ended instead.
func (b *Broker) Publish(_ context.Context, topic instachat.Topic, events ...instachat.Event) error {
	if len(events) == 0 {
		return nil
	}
	var slow []*subscription
	offer := func(subs map[*subscription]struct{}) {
		for s := range subs {
			if !s.offer(events, b.buffer) {
				slow = append(slow, s)
			}
		}
	}
	b.mu.RLock()
	if topic.Chat == instachat.DeletionChat {
		// Deletions are rare: a scan of the topics costs less than an
		// index by token kept up on every subscribe.
		for t, subs := range b.topics {
			if t.Token == topic.Token {
				offer(subs)
			}
		}
	} else {
		offer(b.topics[topic])
	}
	b.mu.RUnlock()
	for _, s := range slow {
		b.remove(s, true)
	}
	return nil
}

// Subscribe starts a subscription to topic; it never fails.
func (b *Broker) Subscribe(_ context.Context, topic instachat.Topic) (instachat.Subscription, error) {
	s := &subscription{
		b:     b,
		topic: topic,
		out:   make(chan instachat.Event),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	b.mu.Lock()
	subs := b.topics[topic]
	if subs == nil {
		subs = map[*subscription]struct{}{}
		b.topics[topic] = subs
	}
	subs[s] = struct{}{}
	b.mu.Unlock()
	go s.forward()
	return s, nil
}

// Subscribers returns how many subscriptions topic has.
func (b *Broker) Subscribers(topic instachat.Topic) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.topics[topic])
}

// End ends every subscription of topic with err, e.g. EUNAVAILABLE when
// the connection that fed them was lost. Unlike Close and eviction it does
// not call OnIdle: its caller knows the topic is gone.
func (b *Broker) End(topic instachat.Topic, err error) {
	b.mu.Lock()
	subs := b.topics[topic]
	delete(b.topics, topic)
	b.mu.Unlock()
	for s := range subs {
		s.end(err)
	}
}

// remove ends s with ErrSlowSubscriber (slow) or context.Canceled and
// drops it from its topic.
func (b *Broker) remove(s *subscription, slow bool) {
	err := error(context.Canceled)
	if slow {
		err = instachat.ErrSlowSubscriber
	}
	if !s.end(err) {
		return
	}
	b.mu.Lock()
	subs, idle := b.topics[s.topic], false
	if _, ok := subs[s]; ok {
		delete(subs, s)
		if len(subs) == 0 {
			delete(b.topics, s.topic)
			idle = true
		}
	}
	b.mu.Unlock()
	if idle && b.onIdle != nil {
		b.onIdle(s.topic)
	}
}

// subscription is one subscriber: events wait in pending until its
// goroutine hands them to out, one at a time.
type subscription struct {
	b     *Broker
	topic instachat.Topic
	out   chan instachat.Event
	wake  chan struct{} // a token when pending may be non-empty
	done  chan struct{} // closed when the subscription ends

	mu      sync.Mutex
	pending []instachat.Event
	waiting int // events offered and not yet received: pending and the one in hand
	err     error
}

// offer appends events unless that would put more than buffer events in
// waiting; it reports false if the subscriber is too slow for them.
func (s *subscription) offer(events []instachat.Event, buffer int) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return true // already ended; its remover drops it
	}
	if s.waiting+len(events) > buffer {
		s.mu.Unlock()
		return false
	}
	s.pending = append(s.pending, events...)
	s.waiting += len(events)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return true
}

// end records why the subscription ended and stops its goroutine; it
// reports false if it had ended already.
func (s *subscription) end(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	s.err = err
	s.pending = nil
	close(s.done)
	return true
}

// forward hands waiting events to out in order until the subscription
// ends, then closes out. Taking the whole pending slice at once keeps the
// lock out of the per-event path; a drained subscriber holds no slice.
func (s *subscription) forward() {
	defer close(s.out)
	for {
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		for _, e := range batch {
			select {
			case s.out <- e:
			case <-s.done:
				return
			}
			s.mu.Lock()
			s.waiting--
			s.mu.Unlock()
		}
	}
}

func (s *subscription) Events() <-chan instachat.Event { return s.out }

func (s *subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *subscription) Close() { s.b.remove(s, false) }
