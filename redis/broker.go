package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/inmem"
	"github.com/instachat/instachat/internal/jsonenc"
)

// Broker fans committed events out across processes with Redis sharded
// pub/sub. Every topic is one channel, P{T}:feed:N for chat N of the
// application with token T (P{T}:feed for the application's own feed,
// P{T}:feed:deleted for its instachat.DeletionTopic), in
// the application's hash slot like its numbering keys, so SPUBLISH and
// SSUBSCRIBE reach the shard that owns the token on Redis Cluster.
//
// A publish is one SPUBLISH of the topic's events, encoded once as a JSON
// array. A process subscribes each topic its clients watch once, however
// many clients watch it, on the one connection its client keeps to the
// shard (rueidis multiplexes every subscription and command on it), and
// fans each message out in process (inmem.Broker), decoding it once.
//
// A publish on an application's instachat.DeletionTopic reaches every
// subscriber of its topics in every process: while a process watches any
// topic of the application, it holds one subscription to the application's
// deletion channel too, subscribed before the topic's Subscribe returns, and
// fans what it brings out to all the application's topics in process.
//
// # Losing the connection
//
// Pub/sub delivers at most once: what is published while a subscription
// is down is gone. When the connection to the shard breaks (or the server
// ends a subscription, as it does when a slot moves), the broker ends every
// subscription of the topics it carried with EUNAVAILABLE rather than
// resubscribing silently: a stream that stayed open would not learn of the
// changes it missed until the next one came, however long that is, while a
// stream that ends is resumed by its client from its last revision and
// replays them from the store at once. Subscribe fails with EUNAVAILABLE
// until Redis answers again.
type Broker struct {
	// Logger, when set, is told about lost subscriptions and messages that
	// do not decode.
	Logger *slog.Logger

	client rueidis.Client
	prefix string
	local  *inmem.Broker

	mu       sync.Mutex
	channels map[instachat.Topic]*channel
	holds    map[string]*hold // by token: the deletion channel held for its topics
	closed   bool
}

// hold is a process's subscription to an application's DeletionTopic, kept
// while users subscriptions to the application's other topics are open.
type hold struct {
	token string
	sub   instachat.Subscription
	users int // guarded by Broker.mu
}

// heldSubscription is a subscription to a topic that holds its
// application's deletion channel until it is closed.
type heldSubscription struct {
	instachat.Subscription
	once    sync.Once
	release func()
}

func (s *heldSubscription) Close() {
	s.Subscription.Close()
	s.once.Do(s.release)
}

var _ instachat.Broker = (*Broker)(nil)

// channel is one topic's SSUBSCRIBE, shared by the process's subscribers.
type channel struct {
	name    string
	cancel  context.CancelFunc
	ready   chan struct{} // closed once Redis confirmed the subscription
	done    chan struct{} // closed once Receive returned
	err     error         // why Receive returned; read after done
	pending int           // Subscribe calls waiting for ready; guarded by Broker.mu
	closing bool          // cancelled because idle; guarded by Broker.mu
}

// BrokerOptions tune a Broker; a zero field takes its default.
type BrokerOptions struct {
	// Buffer is how many events one subscriber may have waiting; zero
	// means inmem.DefaultBuffer.
	Buffer int
}

// OpenBroker connects to the Redis at rawURL and names its channels under
// prefix (the same prefix as the sequencer's keys).
func OpenBroker(rawURL, prefix string, opts BrokerOptions) (*Broker, error) {
	opt, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	// One connection per shard carries the process's publishes and every
	// subscription; a broken one must end Receive rather than resubscribe
	// behind our back (see the package comment on losing the connection).
	opt.PipelineMultiplex = -1
	opt.DisableRetry = true
	// Named, so an operator (or a test) can find it in CLIENT LIST.
	opt.ClientName = ConnectionName(prefix)
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, feedUnavailable(err)
	}
	b := &Broker{client: client, prefix: prefix, channels: map[instachat.Topic]*channel{}, holds: map[string]*hold{}}
	b.local = inmem.NewBroker(inmem.BrokerOptions{Buffer: opts.Buffer, OnIdle: b.idle})
	return b, nil
}

// Close ends every subscription with EUNAVAILABLE and closes the
// connections.
func (b *Broker) Close() {
	b.mu.Lock()
	b.closed = true
	chans := b.channels
	b.channels = map[instachat.Topic]*channel{}
	b.holds = map[string]*hold{}
	b.mu.Unlock()
	for topic, c := range chans {
		c.cancel()
		<-c.done
		b.local.End(topic, errBrokerClosed)
	}
	b.client.Close()
}

// errFeedUnavailable is what a stream sees of a failure to reach Redis.
var errFeedUnavailable = instachat.Errorf(instachat.EUNAVAILABLE, "event feed unavailable")

// feedUnavailable is unavailable for the broker: EUNAVAILABLE, the cause
// kept in the chain.
func feedUnavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("redis: %w: %w", errFeedUnavailable, err)
}

var (
	errBrokerClosed = instachat.Errorf(instachat.EUNAVAILABLE, "the event broker is closed; resume from the last revision received")
	errFeedLost     = instachat.Errorf(instachat.EUNAVAILABLE, "the event feed lost its connection; resume from the last revision received")
)

// ConnectionName is the CLIENT SETNAME of the connection a broker under
// prefix keeps: "instachat-feed:" and the prefix, spaces made dashes.
func ConnectionName(prefix string) string {
	return "instachat-feed:" + strings.ReplaceAll(prefix, " ", "-")
}

// channelName is the topic's channel: P{T}:feed:N, P{T}:feed, or
// P{T}:feed:deleted for the application's DeletionTopic.
func (b *Broker) channelName(topic instachat.Topic) string {
	switch topic.Chat {
	case 0:
		return tokenKey(b.prefix, topic.Token, "feed")
	case instachat.DeletionChat:
		return tokenKey(b.prefix, topic.Token, "feed:deleted")
	}
	return tokenKey(b.prefix, topic.Token, "feed:"+strconv.FormatInt(topic.Chat, 10))
}

// Publish sends the events in one SPUBLISH. It returns EUNAVAILABLE if Redis
// does not take it; the events are committed all the same, and subscribers
// find them when the next event shows the gap.
func (b *Broker) Publish(ctx context.Context, topic instachat.Topic, events ...instachat.Event) error {
	if len(events) == 0 {
		return nil
	}
	// By hand, as encoding/json would: its reflection was a tenth of a
	// worker's CPU (docs/BENCHMARKS.md).
	payload, ok := jsonenc.AppendEvents(nil, events)
	if !ok {
		var err error
		if payload, err = json.Marshal(events); err != nil {
			return err
		}
	}
	cmd := b.client.B().Spublish().Channel(b.channelName(topic)).Message(rueidis.BinaryString(payload)).Build()
	return feedUnavailable(b.client.Do(ctx, cmd).Error())
}

// Subscribe returns once Redis confirmed the topic's channel, and its
// application's deletion channel, so nothing published after it returns is
// missed.
func (b *Broker) Subscribe(ctx context.Context, topic instachat.Topic) (instachat.Subscription, error) {
	if topic.Chat == instachat.DeletionChat {
		return b.subscribe(ctx, topic)
	}
	h, err := b.hold(ctx, topic.Token)
	if err != nil {
		return nil, err
	}
	s, err := b.subscribe(ctx, topic)
	if err != nil {
		b.release(h)
		return nil, err
	}
	return &heldSubscription{Subscription: s, release: func() { b.release(h) }}, nil
}

// hold counts one more user of the application's deletion channel,
// subscribing it first if the process holds it for no topic yet.
func (b *Broker) hold(ctx context.Context, token string) (*hold, error) {
	b.mu.Lock()
	if h := b.holds[token]; h != nil {
		h.users++
		b.mu.Unlock()
		return h, nil
	}
	b.mu.Unlock()
	s, err := b.subscribe(ctx, instachat.DeletionTopic(token))
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	if err := s.Err(); err != nil { // lost already (see lostDeletions)
		b.mu.Unlock()
		return nil, err
	}
	if h := b.holds[token]; h != nil { // another caller subscribed it meanwhile
		h.users++
		b.mu.Unlock()
		s.Close()
		return h, nil
	}
	h := &hold{token: token, sub: s, users: 1}
	if !b.closed {
		b.holds[token] = h
	}
	b.mu.Unlock()
	return h, nil
}

// release counts one user of h less, and unsubscribes it after the last.
func (b *Broker) release(h *hold) {
	b.mu.Lock()
	h.users--
	last := h.users == 0
	if last && b.holds[h.token] == h {
		delete(b.holds, h.token)
	}
	b.mu.Unlock()
	if last {
		h.sub.Close() // the channel goes once idle (see idle)
	}
}

// subscribe is Subscribe of the topic's channel alone.
func (b *Broker) subscribe(ctx context.Context, topic instachat.Topic) (instachat.Subscription, error) {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return nil, errBrokerClosed
		}
		c := b.channels[topic]
		if c != nil && c.closing {
			// An unsubscribe is under way; the channel can be subscribed
			// again once Redis confirmed it, not before.
			b.mu.Unlock()
			select {
			case <-c.done:
				continue
			case <-ctx.Done():
				return nil, feedUnavailable(ctx.Err())
			}
		}
		if c == nil {
			c = b.start(topic)
			b.channels[topic] = c
		}
		c.pending++
		b.mu.Unlock()

		var err error
		select {
		case <-c.ready:
		case <-c.done:
			err = c.err
		case <-ctx.Done():
			err = feedUnavailable(ctx.Err())
		}

		b.mu.Lock()
		c.pending--
		if err == nil && b.channels[topic] == c && !c.closing {
			s, _ := b.local.Subscribe(ctx, topic) // inmem never fails
			b.mu.Unlock()
			return s, nil
		}
		b.mu.Unlock()
		if err == nil {
			continue // the channel ended between ready and here: try again
		}
		b.idle(topic) // this caller may have started the channel
		return nil, err
	}
}

// start runs the topic's Receive until it is cancelled or fails; Broker.mu
// is held.
func (b *Broker) start(topic instachat.Topic) *channel {
	ctx, cancel := context.WithCancel(context.Background())
	c := &channel{name: b.channelName(topic), cancel: cancel, ready: make(chan struct{}), done: make(chan struct{})}
	var confirmed atomic.Bool
	// The hook runs on the connection's reading goroutine: it must not
	// block, and it only ever sees this channel's confirmations.
	ctx = rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
		if s.Kind == "ssubscribe" && confirmed.CompareAndSwap(false, true) {
			close(c.ready)
		}
	})
	ctx = rueidis.WithOnReceiveReturnHook(ctx, func(err error, cc rueidis.CommandClient) error {
		if errors.Is(err, context.Canceled) {
			// Receive only stops listening; the server keeps the
			// subscription until told.
			cc.Do(context.Background(), cc.B().Sunsubscribe().Channel(c.name).Build())
		}
		return err
	})
	go func() {
		err := b.client.Receive(ctx, b.client.B().Ssubscribe().Channel(c.name).Build(), func(m rueidis.PubSubMessage) {
			b.deliver(topic, m.Message)
		})
		b.mu.Lock()
		if b.channels[topic] == c {
			delete(b.channels, topic)
		}
		lost := !c.closing && !b.closed
		if lost {
			// Nil means the server ended the subscription itself.
			c.err = errFeedLost
			if err != nil {
				c.err = feedUnavailable(err)
			}
			// Under the lock, so a subscriber of the next channel for
			// this topic is never ended for this one's loss.
			b.local.End(topic, errFeedLost)
			if topic.Chat == instachat.DeletionChat {
				b.lostDeletions(topic.Token)
			}
		}
		b.mu.Unlock()
		if lost && confirmed.Load() && b.Logger != nil {
			b.Logger.Warn("event feed subscription lost; its streams end and resume", "err", err)
		}
		close(c.done)
	}()
	return c
}

// lostDeletions ends every subscription of the application's topics, whose
// deletion channel was lost, so their streams resume and subscribe it
// again; Broker.mu is held. Their channels are unsubscribed: a subscriber
// of one now waits for that and subscribes anew, deletion channel first.
func (b *Broker) lostDeletions(token string) {
	delete(b.holds, token)
	for topic, c := range b.channels {
		if topic.Token != token || topic.Chat == instachat.DeletionChat {
			continue
		}
		b.local.End(topic, errFeedLost)
		if !c.closing {
			c.closing = true
			c.cancel()
		}
	}
}

// idle unsubscribes topic's channel once no one in the process watches it.
func (b *Broker) idle(topic instachat.Topic) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.channels[topic]
	if c == nil || c.closing || c.pending > 0 || b.local.Subscribers(topic) > 0 {
		return
	}
	c.closing = true
	c.cancel()
}

// deliver decodes one published message and hands it to the topic's local
// subscribers. Fields the events' JSON leaves out come from the topic.
func (b *Broker) deliver(topic instachat.Topic, payload string) {
	var events []instachat.Event
	if err := json.Unmarshal([]byte(payload), &events); err != nil {
		if b.Logger != nil {
			b.Logger.Warn("event feed message does not decode; dropped, subscribers fill the gap from the store", "err", err)
		}
		return
	}
	for i := range events {
		e := &events[i]
		if e.Message != nil {
			e.Message.Token, e.Message.Chat, e.Message.Revision = topic.Token, topic.Chat, e.Revision
		}
		if e.Chat != nil {
			e.Chat.Token, e.Chat.AppRevision = topic.Token, e.Revision
		}
	}
	b.local.Publish(context.Background(), topic, events...)
}

// Ping reports whether Redis answers, for /healthz.
func (b *Broker) Ping(ctx context.Context) error {
	return feedUnavailable(b.client.Do(ctx, b.client.B().Ping().Build()).Error())
}
