package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
	"github.com/instachat/instachat/internal/testenv"
)

// newCluster starts a one-broker kfake cluster without topics: Open
// creates them through kadm, as in production.
func newCluster(t testing.TB) *kfake.Cluster {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// open opens a queue of four partitions on c, unless cfg says otherwise.
func open(t testing.TB, c *kfake.Cluster, cfg Config) *Queue {
	t.Helper()
	cfg.Brokers = c.ListenAddrs()
	if cfg.Partitions == 0 {
		cfg.Partitions = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	q, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	return q
}

// consume runs q.Consume until stop is called or the test ends. It sends
// every batch handle acknowledged to seen, unless seen is nil.
func consume(t testing.TB, q *Queue, handle func([]instachat.Create) error, seen chan<- []instachat.Create) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- q.Consume(ctx, func(_ context.Context, batch []instachat.Create) error {
			if handle != nil {
				if err := handle(batch); err != nil {
					return err
				}
			}
			if seen != nil {
				seen <- batch
			}
			return nil
		})
	}()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Consume: %v", err)
		}
	})
	t.Cleanup(stop)
	return stop
}

// collect receives batches until it holds n creates.
func collect(t testing.TB, seen <-chan []instachat.Create, n int) []instachat.Create {
	t.Helper()
	var got []instachat.Create
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case b := <-seen:
			got = append(got, b...)
		case <-timeout:
			t.Fatalf("received %d creates of %d", len(got), n)
		}
	}
	return got
}

// messages returns n messages of chat 1 of a new application per token,
// numbered 1…n, with microsecond timestamps as the dispatcher makes them.
func messages(n int, tokens ...string) []instachat.Create {
	at := time.Now().UTC().Truncate(time.Microsecond)
	var creates []instachat.Create
	for _, token := range tokens {
		for i := range n {
			creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: 1,
				Number: int64(i + 1), Body: fmt.Sprint("body ", i+1), CreatedAt: at, UpdatedAt: at}})
		}
	}
	return creates
}

func tokens(n int) []string {
	ts := make([]string, n)
	for i := range ts {
		ts[i] = instachat.NewToken()
	}
	return ts
}

func publish(t testing.TB, q *Queue, creates []instachat.Create) {
	t.Helper()
	for _, c := range creates {
		if err := instachat.Publish(t.Context(), q, c); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
}

// sameSet reports whether got holds each message of want exactly once,
// equal in every field: timestamps come back in UTC without a monotonic
// reading, as the dispatcher hands them over.
func sameSet(got, want []instachat.Create) error {
	count := map[instachat.Message]int{}
	for _, c := range got {
		count[*c.Message]++
	}
	for _, c := range want {
		if n := count[*c.Message]; n != 1 {
			return fmt.Errorf("%+v received %d times", *c.Message, n)
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("received %d creates, want %d", len(got), len(want))
	}
	return nil
}

func TestConformance(t *testing.T) {
	conformance.TestQueue(t, func(t *testing.T) instachat.Queue { return open(t, newCluster(t), Config{}) })
}

// Creates published while no worker runs wait in the topic for the next.
func TestSurvivesRestart(t *testing.T) {
	c := newCluster(t)
	want := messages(20, tokens(5)...)
	q := open(t, c, Config{})
	publish(t, q, want)
	q.Close()

	seen := make(chan []instachat.Create, 100)
	consume(t, open(t, c, Config{}), nil, seen)
	if err := sameSet(collect(t, seen, len(want)), want); err != nil {
		t.Error(err)
	}
}

// Offsets are committed only after handle succeeded: a failing batch
// leaves the lag whole, and once committed a new member of the group
// starts after it.
func TestCommitsOnlyAfterSuccess(t *testing.T) {
	c := newCluster(t)
	q := open(t, c, Config{})
	want := messages(10, tokens(3)...)
	publish(t, q, want)

	var failing atomic.Bool
	failing.Store(true)
	failures := make(chan struct{}, 1)
	seen := make(chan []instachat.Create, 100)
	stop := consume(t, q, func([]instachat.Create) error {
		if !failing.Load() {
			return nil
		}
		select {
		case failures <- struct{}{}:
		default:
		}
		return errors.New("store down")
	}, seen)
	for range 3 {
		select {
		case <-failures:
		case <-time.After(20 * time.Second):
			t.Fatal("handle was never called")
		}
	}
	if lag, err := q.Lag(t.Context()); err != nil || lag != int64(len(want)) {
		t.Fatalf("while handle fails, Lag() = %d, %v; want %d", lag, err, len(want))
	}
	failing.Store(false)
	if err := sameSet(collect(t, seen, len(want)), want); err != nil {
		t.Error(err)
	}
	if err := q.WaitConsumed(t.Context()); err != nil {
		t.Fatal(err)
	}
	if lag, err := q.Lag(t.Context()); err != nil || lag != 0 {
		t.Fatalf("after success, Lag() = %d, %v; want 0", lag, err)
	}
	stop()

	// The next member's first create is one published after it joined.
	next := make(chan []instachat.Create, 100)
	consume(t, q, nil, next)
	later := messages(1, instachat.NewToken())
	publish(t, q, later)
	if got := collect(t, next, 1); *got[0].Message != *later[0].Message {
		t.Errorf("a new member received %+v again", *got[0].Message)
	}
}

// Creates of one application arrive in publish order while applications
// spread over partitions.
// TestOrderPerChat checks that each chat's messages arrive in publish
// order, however many chats and applications publish at once.
func TestOrderPerChat(t *testing.T) {
	q := open(t, newCluster(t), Config{Partitions: 6})
	seen := make(chan []instachat.Create, 1000)
	consume(t, q, nil, seen)
	ts := tokens(6)
	var wg sync.WaitGroup
	for _, token := range ts {
		wg.Go(func() { publish(t, q, chatMessages(token, 5, 12)) })
	}
	wg.Wait()
	type chat struct {
		token string
		n     int64
	}
	last := map[chat]int64{}
	for _, c := range collect(t, seen, 5*12*len(ts)) {
		m := c.Message
		k := chat{m.Token, m.Chat}
		if m.Number != last[k]+1 {
			t.Fatalf("application %s chat %d: message %d after %d", m.Token, m.Chat, m.Number, last[k])
		}
		last[k]++
	}
}

// Two workers of one group split the partitions; a rebalance in the middle
// of the stream loses nothing and, since it waits for commits, repeats
// nothing.
func TestGroupSharesPartitions(t *testing.T) {
	c := newCluster(t)
	first, second := open(t, c, Config{}), open(t, c, Config{})
	want := messages(10, tokens(40)...)
	type batch struct {
		worker  int
		creates []instachat.Create
	}
	seen := make(chan batch, 1000)
	worker := func(n int) func([]instachat.Create) error {
		return func(b []instachat.Create) error { seen <- batch{n, b}; return nil }
	}
	var got []instachat.Create
	per := map[int]int{}
	receive := func(n int) {
		for len(got) < n {
			select {
			case b := <-seen:
				got = append(got, b.creates...)
				per[b.worker] += len(b.creates)
			case <-time.After(20 * time.Second):
				t.Fatalf("received %d creates of %d", len(got), n)
			}
		}
	}

	consume(t, first, worker(1), nil)
	publish(t, first, want[:len(want)/2])
	receive(1) // the first worker is busy when the second joins
	consume(t, second, worker(2), nil)
	waitMembers(t, c, 2)
	publish(t, second, want[len(want)/2:])
	receive(len(want))
	if err := sameSet(got, want); err != nil {
		t.Error(err)
	}
	if per[2] == 0 {
		t.Errorf("creates per worker: %v; the second never received any", per)
	}
}

// waitMembers waits until n members of the group each own partitions.
func waitMembers(t testing.TB, c *kfake.Cluster, n int) {
	t.Helper()
	adm := kadm.NewClient(rawClient(t, c))
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		groups, err := adm.DescribeGroups(t.Context(), "instachat-workers")
		if err != nil {
			continue
		}
		owning := 0
		for _, m := range groups["instachat-workers"].Members {
			if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
				owning++
			}
		}
		if owning == n {
			return
		}
	}
	t.Fatalf("the group never had %d members owning partitions", n)
}

func rawClient(t testing.TB, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// deadLetters returns the first n records of the dead-letter topic.
func deadLetters(t testing.TB, c *kfake.Cluster, n int) []*kgo.Record {
	t.Helper()
	cl := rawClient(t, c, kgo.ConsumeTopics("instachat.creates.dlq"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n && ctx.Err() == nil {
		recs = append(recs, cl.PollFetches(ctx).Records()...)
	}
	if len(recs) < n {
		t.Fatalf("%d dead letters, want %d", len(recs), n)
	}
	return recs
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestDeadLetter(t *testing.T) {
	c := newCluster(t)
	q := open(t, c, Config{})
	create := messages(1, instachat.NewToken())[0]
	before := time.Now().UTC()
	if err := q.DeadLetter(t.Context(), create, instachat.Errorf(instachat.EINVALID, "body too long")); err != nil {
		t.Fatal(err)
	}
	r := deadLetters(t, c, 1)[0]
	if want := recordKey(create); string(r.Key) != string(want) {
		t.Errorf("key %q, want %q, the record's own", r.Key, want)
	}
	if got := header(r, "reason"); got != "instachat: invalid: body too long" {
		t.Errorf("reason %q", got)
	}
	if at, err := time.Parse(time.RFC3339Nano, header(r, "failed_at")); err != nil || at.Before(before) {
		t.Errorf("failed_at %q: %v", header(r, "failed_at"), err)
	}
	if got, err := decode(r.Value); err != nil || got.Message == nil || *got.Message != *create.Message {
		t.Errorf("dead letter holds %v, %v; want %v", got.Message, err, create.Message)
	}
}

// A record no worker can read is set aside with the reason, and the rest
// of its batch goes on.
func TestUndecodableToDeadLetter(t *testing.T) {
	c := newCluster(t)
	q := open(t, c, Config{Partitions: 1})
	good := messages(1, instachat.NewToken())
	if err := rawClient(t, c).ProduceSync(t.Context(),
		&kgo.Record{Topic: "instachat.creates", Key: []byte("k"), Value: []byte("{garbage")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	publish(t, q, good)
	seen := make(chan []instachat.Create, 10)
	consume(t, q, nil, seen)
	if err := sameSet(collect(t, seen, 1), good); err != nil {
		t.Error(err)
	}
	r := deadLetters(t, c, 1)[0]
	if string(r.Value) != "{garbage" || !strings.HasPrefix(header(r, "reason"), "undecodable create") {
		t.Errorf("dead letter %q, reason %q", r.Value, header(r, "reason"))
	}
	if err := q.WaitConsumed(t.Context()); err != nil {
		t.Error(err)
	}
}

// Publish and DeadLetter answer EUNAVAILABLE within the timeout whether the
// brokers are gone or accept requests and never answer.
func TestUnavailable(t *testing.T) {
	const timeout = time.Second
	for name, fail := range map[string]func(*kfake.Cluster){
		"Down": (*kfake.Cluster).Close,
		"Hung": func(c *kfake.Cluster) {
			c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
				c.KeepControl()
				return nil, nil, true // swallowed: no answer ever comes
			})
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			q := open(t, c, Config{PublishTimeout: timeout})
			fail(c)
			create := messages(1, instachat.NewToken())[0]
			for call, produce := range map[string]func() error{
				"Publish":    func() error { return instachat.Publish(t.Context(), q, create) },
				"DeadLetter": func() error { return q.DeadLetter(t.Context(), create, errors.New("refused")) },
			} {
				start := time.Now()
				err := produce()
				if took := time.Since(start); instachat.ErrorCode(err) != instachat.EUNAVAILABLE || took > timeout+time.Second {
					t.Errorf("%s = %v after %v; want EUNAVAILABLE within %v", call, err, took, timeout)
				}
			}
		})
	}
}

// WaitConsumed blocks while nobody consumes and returns once a worker
// applied what was published before the call.
func TestWaitConsumed(t *testing.T) {
	q := open(t, newCluster(t), Config{})
	want := messages(25, tokens(4)...)
	publish(t, q, want)

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := q.WaitConsumed(ctx); instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
		t.Fatalf("with no consumer, WaitConsumed = %v; want EUNAVAILABLE", err)
	}

	var mu sync.Mutex
	var applied []instachat.Create
	consume(t, q, func(b []instachat.Create) error {
		mu.Lock()
		defer mu.Unlock()
		applied = append(applied, b...)
		return nil
	}, nil)
	if err := q.WaitConsumed(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if err := sameSet(applied, want); err != nil {
		t.Error(err)
	}
}

// An existing topic is kept even when smaller than configured.
func TestOpenKeepsExistingTopic(t *testing.T) {
	c := newCluster(t)
	if _, err := kadm.NewClient(rawClient(t, c)).CreateTopic(t.Context(), 2, 1, nil, "instachat.creates"); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	// Closed before logs is read: the client's goroutines may log too.
	open(t, c, Config{Partitions: 8, Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Close()
	topics, err := kadm.NewClient(rawClient(t, c)).ListTopics(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topics["instachat.creates"].Partitions); n != 2 {
		t.Errorf("topic has %d partitions, want the existing 2", n)
	}
	if n := len(topics["instachat.creates.dlq"].Partitions); n != 8 {
		t.Errorf("dead-letter topic has %d partitions, want 8", n)
	}
	if !strings.Contains(logs.String(), "fewer partitions") {
		t.Errorf("no warning about the partitions; logs:\n%s", logs.String())
	}
}

// TestConsumeBoundsADeadMembersStay checks the timeouts a worker joins
// its group with, as the broker receives them. A worker SIGKILLed keeps its
// partitions until the broker drops it, at its session timeout once its
// heartbeats stop; one that died with a JoinGroup pending held the group on
// kfake until the survivors' JoinGroups timed out, after the rebalance
// timeout (TestDeadMemberWithPendingJoin): kgo's default of 60 s stalled
// consumption that long. cmd/instachat's TestTopology kills both workers.
func TestConsumeBoundsADeadMembersStay(t *testing.T) {
	c := newCluster(t)
	q := open(t, c, Config{})
	joins := make(chan *kmsg.JoinGroupRequest, 10)
	c.ControlKey(int16(kmsg.JoinGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		select {
		case joins <- req.(*kmsg.JoinGroupRequest):
		default:
		}
		return nil, nil, false // the broker answers it as usual
	})
	consume(t, q, nil, nil)
	select {
	case j := <-joins:
		if j.SessionTimeoutMillis != 10_000 || j.RebalanceTimeoutMillis > 15_000 {
			t.Errorf("JoinGroup with session timeout %d ms and rebalance timeout %d ms, want 10000 and at most 15000",
				j.SessionTimeoutMillis, j.RebalanceTimeoutMillis)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the worker never sent JoinGroup")
	}
}

// TestPingRecreatesAMissingTopic: a broker that lost the topic (a fresh
// one, or the topic deleted) answers pings while every publish fails with
// UNKNOWN_TOPIC_OR_PARTITION. Ping, which /healthz runs, must see that and
// create the topic again as Open does, so that publishing and consuming
// work again; a broker that does not answer stays EUNAVAILABLE.
func TestPingRecreatesAMissingTopic(t *testing.T) {
	c := newCluster(t)
	var logs testenv.Buffer
	q := open(t, c, Config{Partitions: 3, PublishTimeout: time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	adm := kadm.NewClient(rawClient(t, c))
	seen := make(chan []instachat.Create, 10)
	consume(t, q, nil, seen)
	first := messages(1, instachat.NewToken())[0]
	publish(t, q, []instachat.Create{first})
	collect(t, seen, 1)
	if err := q.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with the topics there: %v", err)
	}
	if strings.Contains(logs.String(), "missing") {
		t.Fatalf("Ping with the topics there logged %q", logs.String())
	}
	if _, err := adm.DeleteTopics(t.Context(), "instachat.creates"); err != nil {
		t.Fatal(err)
	}
	if err := q.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with the topic missing: %v, want it created again", err)
	}
	if !strings.Contains(logs.String(), "topics=[instachat.creates]") {
		t.Errorf("log %q, want a warning that names the topic created again", logs.String())
	}
	topics, err := adm.ListTopics(t.Context(), "instachat.creates")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(topics["instachat.creates"].Partitions); n != 3 {
		t.Fatalf("after Ping the topic has %d partitions, want 3", n)
	}
	create := messages(1, instachat.NewToken())[0]
	deadline := time.Now().Add(10 * time.Second)
	for err := errors.New("not yet"); err != nil; {
		if err = instachat.Publish(t.Context(), q, create); err != nil && time.Now().After(deadline) {
			t.Fatalf("Publish after the topic was created again: %v", err)
		}
	}
	if err := sameSet(collect(t, seen, 1), []instachat.Create{create}); err != nil {
		t.Errorf("consumed after the topic was created again: %v", err)
	}
	c.Close()
	if err := q.Ping(t.Context()); instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
		t.Errorf("Ping with the broker down: %v, want EUNAVAILABLE", err)
	}
}

// chatMessages returns n messages in each of chats chats of the
// application, chat by chat interleaved: message 1 of every chat, then 2…
func chatMessages(token string, chats, n int) []instachat.Create {
	at := time.Now().UTC().Truncate(time.Microsecond)
	var creates []instachat.Create
	for i := range n {
		for c := range chats {
			creates = append(creates, instachat.Create{Message: &instachat.Message{Token: token, Chat: int64(c + 1),
				Number: int64(i + 1), Body: "hello", CreatedAt: at, UpdatedAt: at}})
		}
	}
	return creates
}

// TestOneApplicationSpreadsOverPartitions checks the keying: the messages
// of one application with many chats land on many partitions, each chat's
// in one and in order, while its chat creates share one partition.
func TestOneApplicationSpreadsOverPartitions(t *testing.T) {
	c := newCluster(t)
	q := open(t, c, Config{Partitions: 12})
	token := instachat.NewToken()
	const chats, each = 48, 5
	at := time.Now().UTC().Truncate(time.Microsecond)
	creates := chatMessages(token, chats, each)
	for n := range chats {
		creates = append(creates, instachat.Create{Chat: &instachat.Chat{Token: token, Number: int64(n + 1), CreatedAt: at, UpdatedAt: at}})
	}
	wait, err := q.Enqueue(t.Context(), creates...)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(t.Context()); err != nil {
		t.Fatal(err)
	}

	cl := rawClient(t, c, kgo.ConsumeTopics("instachat.creates"))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < len(creates) && ctx.Err() == nil {
		recs = append(recs, cl.PollFetches(ctx).Records()...)
	}
	if len(recs) != len(creates) {
		t.Fatalf("read %d records, want %d", len(recs), len(creates))
	}
	chatPartition := map[int64]int32{} // chat → its messages' partition
	last := map[int64]int64{}          // chat → last message number read
	used := map[int32]bool{}
	chatCreates := map[int32]bool{}
	for _, r := range recs {
		got, err := decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if got.Chat != nil {
			chatCreates[r.Partition] = true
			continue
		}
		m := got.Message
		if p, ok := chatPartition[m.Chat]; ok && p != r.Partition {
			t.Errorf("chat %d: messages on partitions %d and %d, want one", m.Chat, p, r.Partition)
		}
		chatPartition[m.Chat] = r.Partition
		used[r.Partition] = true
		if m.Number != last[m.Chat]+1 {
			t.Errorf("chat %d: message %d after %d", m.Chat, m.Number, last[m.Chat])
		}
		last[m.Chat] = m.Number
	}
	// 48 chats hashed over 12 partitions leave fewer than 6 used with a
	// probability far below 1e-12.
	if len(used) < 6 {
		t.Errorf("the messages of %d chats of one application used %d of 12 partitions, want them spread", chats, len(used))
	}
	if len(chatCreates) != 1 {
		t.Errorf("the chat creates of one application used partitions %v, want one", chatCreates)
	}
}

// TestWaitConsumedWaitsForItsOwnGroup: two queues on one topic in
// different groups (the workers' and the indexing consumer's, as
// production opens them): the workers' group having consumed everything
// does not satisfy the index group's WaitConsumed, which returns only once
// that group consumed it too. The reclaim relies on it before Elasticsearch
// forgets a deleted chat.
func TestWaitConsumedWaitsForItsOwnGroup(t *testing.T) {
	c := newCluster(t)
	workers := open(t, c, Config{Group: "g"})
	index := open(t, c, Config{Group: "g.index"})
	publish(t, workers, messages(10, tokens(2)...))
	stop := consume(t, workers, nil, nil)
	defer stop()
	if err := workers.WaitConsumed(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := index.WaitConsumed(ctx); instachat.ErrorCode(err) != instachat.EUNAVAILABLE {
		t.Fatalf("with the index group not consuming, its WaitConsumed = %v; want EUNAVAILABLE", err)
	}
	stopIndex := consume(t, index, nil, nil)
	defer stopIndex()
	if err := index.WaitConsumed(t.Context()); err != nil {
		t.Fatal(err)
	}
}
