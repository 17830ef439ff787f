package conformance

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// TestQueue checks a Queue backend. An embedded queue's Publish returns once
// a handler took the creates and a broker's once the broker has them, so the
// suite always consumes before it publishes and waits, with a deadline, for
// what the handler saw. Each subtest uses fresh tokens and ignores creates
// of any other, so a backend may keep one topic for every subtest.
func TestQueue(t *testing.T, open func(t *testing.T) instachat.Queue) {
	opened := func(test func(*testing.T, instachat.Queue)) func(*testing.T) {
		return func(t *testing.T) { test(t, open(t)) }
	}
	t.Run("every create published is delivered", opened(testQueueDelivered))
	t.Run("concurrent publishers are delivered in batches", opened(testQueueConcurrentPublishers))
	t.Run("a chat's messages, and an application's chats, arrive in publish order", opened(testQueueOrderPerChat))
	t.Run("creates enqueued before any wait arrive in enqueue order", opened(testQueueEnqueueKeepsOrderBeforeWaiting))
	t.Run("a batch whose handler fails is delivered again", opened(testQueueRedelivery))
	t.Run("a create set aside answers its publisher with the reason", opened(testQueueDeadLetter))
}

func testQueueDelivered(t *testing.T, q instachat.Queue) {
	token := instachat.NewToken()
	log := newQueueLog(token)
	log.consume(t, q, nil)
	creates := queueCreates(token, 20)
	queuePublishMixed(t, q, creates)
	log.waitAcked(t, creates)
}

func testQueueConcurrentPublishers(t *testing.T, q instachat.Queue) {
	token := instachat.NewToken()
	log := newQueueLog(token)
	// A commit takes time, during which publishers pile up: that is
	// what a batch is made of.
	log.consume(t, q, func(context.Context, []instachat.Create) error {
		time.Sleep(time.Millisecond)
		return nil
	})
	const publishers, each = 16, 50
	creates := queueCreates(token, publishers*each)
	queuePublishConcurrently(t, q, creates, each)
	log.waitAcked(t, creates)
	if log.largest() < 2 {
		t.Errorf("%d concurrent publishers, yet every batch held one create: no batching", publishers)
	}
}

func testQueueOrderPerChat(t *testing.T, q instachat.Queue) {
	tokens := []string{instachat.NewToken(), instachat.NewToken()}
	log := newQueueLog(tokens...)
	log.consume(t, q, nil)
	created := map[string][]instachat.Create{}
	for _, token := range tokens {
		created[token] = queueCreates(token, 60)
	}
	// Each application is published by its own goroutine, the two
	// interleaving.
	var wg sync.WaitGroup
	for _, creates := range created {
		wg.Go(func() { queuePublishMixed(t, q, creates) })
	}
	wg.Wait()
	for token, creates := range created {
		log.waitAcked(t, creates)
		got, want := orderStreams(log.firstAcks(token)), orderStreams(queueKeys(creates))
		for stream, want := range want {
			if got := got[stream]; !slices.Equal(got, want) {
				t.Errorf("creates of %v acknowledged in the order\n%v\nwant the publish order\n%v", stream, got, want)
			}
		}
	}
}

// orderStreams splits keys into the sequences a Queue keeps in order: the
// chat creates of an application (under chat 0) and the messages of each
// chat. Between them no order is promised: a queue may deliver a chat's
// messages before the chat's own create.
func orderStreams(keys []queueKey) map[queueKey][]queueKey {
	streams := map[queueKey][]queueKey{}
	for _, k := range keys {
		stream := queueKey{token: k.token}
		if k.message != 0 {
			stream.chat = k.chat
		}
		streams[stream] = append(streams[stream], k)
	}
	return streams
}

func testQueueEnqueueKeepsOrderBeforeWaiting(t *testing.T, q instachat.Queue) {
	// The dispatcher enqueues under its numbering lock and waits after
	// releasing it, so several creates of one chat are enqueued before
	// any is durable; they must still arrive in enqueue order.
	token := instachat.NewToken()
	log := newQueueLog(token)
	log.consume(t, q, nil)
	creates := queueCreates(token, 50)
	var waits []func(context.Context) error
	for _, c := range creates {
		wait, err := q.Enqueue(context.Background(), c)
		if err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
		waits = append(waits, wait)
	}
	for i, wait := range waits {
		if err := wait(context.Background()); err != nil {
			t.Fatalf("wait for create %d: %v", i, err)
		}
	}
	log.waitAcked(t, creates)
	got, want := orderStreams(log.firstAcks(token)), orderStreams(queueKeys(creates))
	for stream, want := range want {
		if got := got[stream]; !slices.Equal(got, want) {
			t.Errorf("creates of %v acknowledged in the order\n%v\nwant the enqueue order\n%v", stream, got, want)
		}
	}
}

func testQueueRedelivery(t *testing.T, q instachat.Queue) {
	token := instachat.NewToken()
	const failures = 2
	log := newQueueLog(token)
	// Every create fails its first deliveries, alone or with others.
	log.consume(t, q, func(_ context.Context, batch []instachat.Create) error {
		for _, c := range batch {
			if log.delivered(c) < failures {
				return errors.New("store unavailable")
			}
		}
		return nil
	})
	creates := queueCreates(token, 24)
	queuePublishConcurrently(t, q, creates, 4)
	log.waitAcked(t, creates)
	for _, c := range creates {
		if n := log.delivered(c); n <= failures {
			t.Errorf("%v delivered %d times; its handler failed %d times", queueKeyOf(c), n, failures)
		}
	}
}

func testQueueDeadLetter(t *testing.T, q instachat.Queue) {
	token := instachat.NewToken()
	creates := queueCreates(token, 3)
	poison, reason := queueKeyOf(creates[1]), errors.New("refused for good")
	dead := make(chan error, 1)
	log := newQueueLog(token)
	log.consume(t, q, func(ctx context.Context, batch []instachat.Create) error {
		for _, c := range batch {
			if queueKeyOf(c) == poison {
				err := q.DeadLetter(ctx, c, reason)
				select {
				case dead <- err:
				default: // delivered again: the first answer is checked
				}
			}
		}
		return nil
	})
	for _, c := range creates {
		err := instachat.Publish(t.Context(), q, c)
		// A broker answered before the handler ran; an embedded queue
		// answers with the handler's verdict.
		if err != nil && (queueKeyOf(c) != poison || !errors.Is(err, reason)) {
			t.Errorf("Publish(%v): %v", queueKeyOf(c), err)
		}
	}
	log.waitAcked(t, creates)
	if err := <-dead; err != nil {
		t.Errorf("DeadLetter: %v", err)
	}
}

// queueKey identifies a create by its numbers, since a backend that carries
// creates over a wire hands back equal creates, not the same pointers.
type queueKey struct {
	token   string
	chat    int64
	message int64 // 0 for a chat create
}

func queueKeyOf(c instachat.Create) queueKey {
	if c.Chat != nil {
		return queueKey{c.Chat.Token, c.Chat.Number, 0}
	}
	return queueKey{c.Message.Token, c.Message.Chat, c.Message.Number}
}

func queueKeys(creates []instachat.Create) []queueKey {
	keys := make([]queueKey, len(creates))
	for i, c := range creates {
		keys[i] = queueKeyOf(c)
	}
	return keys
}

// queueCreates returns n creates of the application, chats and messages
// alternating, the messages over chats 1 to 3, none equal to another.
func queueCreates(token string, n int) []instachat.Create {
	now := time.Now().UTC().Truncate(time.Microsecond)
	creates := make([]instachat.Create, n)
	for i := range creates {
		if i%2 == 0 {
			creates[i].Chat = &instachat.Chat{Token: token, Number: int64(i + 1), Name: "chat", CreatedAt: now, UpdatedAt: now}
		} else {
			creates[i].Message = &instachat.Message{Token: token, Chat: int64(i/2%3 + 1), Number: int64(i + 1), Body: "hello", CreatedAt: now, UpdatedAt: now}
		}
	}
	return creates
}

func queuePublish(t *testing.T, q instachat.Queue, creates ...instachat.Create) {
	t.Helper()
	if err := instachat.Publish(t.Context(), q, creates...); err != nil {
		t.Errorf("Publish(%v): %v", queueKeys(creates), err)
	}
}

// queuePublishMixed publishes the first half of creates one at a time and
// the rest several to a call.
func queuePublishMixed(t *testing.T, q instachat.Queue, creates []instachat.Create) {
	half := len(creates) / 2
	for _, c := range creates[:half] {
		queuePublish(t, q, c)
	}
	for chunk := range slices.Chunk(creates[half:], 5) {
		queuePublish(t, q, chunk...)
	}
}

// queuePublishConcurrently publishes each chunk of n creates from its own
// goroutine, one create at a time, and waits for them all.
func queuePublishConcurrently(t *testing.T, q instachat.Queue, creates []instachat.Create, n int) {
	var wg sync.WaitGroup
	for chunk := range slices.Chunk(creates, n) {
		wg.Go(func() {
			for _, c := range chunk {
				queuePublish(t, q, c)
			}
		})
	}
	wg.Wait()
}

// queueLog is what a handler saw of the creates of its tokens.
type queueLog struct {
	tokens []string

	mu           sync.Mutex
	deliveries   map[queueKey]int
	acks         map[queueKey]int
	order        map[string][]queueKey // first acknowledgements, per token
	largestBatch int
}

func newQueueLog(tokens ...string) *queueLog {
	return &queueLog{tokens: tokens, deliveries: map[queueKey]int{}, acks: map[queueKey]int{}, order: map[string][]queueKey{}}
}

// consume consumes q until the test ends, handing handle (when not nil)
// each batch cut down to the creates of the log's tokens, and logs what it
// saw: a create counts as acknowledged when handle returned nil for its
// batch.
func (l *queueLog) consume(t *testing.T, q instachat.Queue, handle func(context.Context, []instachat.Create) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(ctx, func(ctx context.Context, batch []instachat.Create) error {
			batch = slices.DeleteFunc(slices.Clone(batch), func(c instachat.Create) bool {
				return !slices.Contains(l.tokens, c.Token())
			})
			if len(batch) == 0 {
				return nil
			}
			var err error
			if handle != nil {
				err = handle(ctx, batch)
			}
			l.record(batch, err == nil)
			return err
		})
	}()
	t.Cleanup(func() {
		cancel()
		// The contract leaves open what Consume returns once ctx ended.
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Consume: %v", err)
		}
	})
}

func (l *queueLog) record(batch []instachat.Create, acked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range batch {
		k := queueKeyOf(c)
		l.deliveries[k]++
		if !acked {
			continue
		}
		if l.acks[k]++; l.acks[k] == 1 {
			l.order[k.token] = append(l.order[k.token], k)
		}
	}
	if acked {
		l.largestBatch = max(l.largestBatch, len(batch))
	}
}

func (l *queueLog) delivered(c instachat.Create) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deliveries[queueKeyOf(c)]
}

func (l *queueLog) largest() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.largestBatch
}

func (l *queueLog) firstAcks(token string) []queueKey {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.order[token])
}

// queueTimeout bounds the wait for deliveries; a broker may take seconds to
// hand a new consumer its partitions.
const queueTimeout = 30 * time.Second

// waitAcked waits until every create was acknowledged at least once.
func (l *queueLog) waitAcked(t *testing.T, creates []instachat.Create) {
	t.Helper()
	missing := func() []queueKey {
		l.mu.Lock()
		defer l.mu.Unlock()
		var keys []queueKey
		for _, c := range creates {
			if k := queueKeyOf(c); l.acks[k] == 0 {
				keys = append(keys, k)
			}
		}
		return keys
	}
	for deadline := time.Now().Add(queueTimeout); ; time.Sleep(5 * time.Millisecond) {
		m := missing()
		if len(m) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d creates never acknowledged: %v", queueTimeout, len(m), len(creates), m)
		}
	}
}
