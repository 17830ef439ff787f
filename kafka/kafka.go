// Package kafka is the production Queue: creates travel from dispatchers to
// workers through a Kafka topic. A message create is keyed by its token and
// chat, so that a chat's messages share a partition and keep their order
// while the chats of one busy application spread over every partition and
// worker; a chat create is keyed by its token, so that an application's
// chats keep their order. A chat's creation and its messages may so reach
// the store in either order, which Store.ApplyCreates allows.
//
// Publish returns once every in-sync replica holds the creates (idempotent
// producer, acks=all). Workers form one consumer group, each Consume call
// one member. A batch's offsets are committed only after the handler
// returned nil, and a rebalance waits for that commit, so a partition that
// changes hands resumes right after the last batch its old owner applied:
// delivery is at-least-once, and the store's unique keys make the effect
// exactly-once.
package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/instachat/instachat"
)

// Config locates the cluster and names what the queue uses there; a zero
// field takes its default.
type Config struct {
	Brokers         []string
	Topic           string // default "instachat.creates"
	DeadLetterTopic string // default Topic + ".dlq"
	// Partitions and ReplicationFactor apply when Open creates the topics:
	// default 12 and 1; run production with 3 replicas. Partitions bound
	// how many workers share the load.
	Partitions        int32
	ReplicationFactor int16
	Group             string        // the workers' consumer group; default "instachat-workers"
	MaxBatch          int           // creates handed to one handle call; default 1000
	PublishTimeout    time.Duration // bound of Publish and DeadLetter; default 5s
	Logger            *slog.Logger
}

// Queue is a Kafka topic of creates, its dead-letter topic and the workers'
// consumer group.
type Queue struct {
	cfg      Config
	log      *slog.Logger
	producer *kgo.Client // also carries the admin requests
	admin    *kadm.Client
	// listed is set once ensureTopics listed the topics: a topic smaller
	// than configured is warned about then, not at every /healthz.
	listed atomic.Bool

	// ids are the topics' ids as Ping last saw them, by name; a new id
	// means the topic was deleted and created again (by this process or
	// another), which kgo refuses to follow until the topic is purged.
	// incarnation counts those changes of the consumed topic, so that
	// Consume purges it too.
	mu          sync.Mutex
	ids         map[string]kadm.TopicID
	incarnation atomic.Int64
}

var _ instachat.Queue = (*Queue)(nil)

var errUnavailable = instachat.Errorf(instachat.EUNAVAILABLE, "queue unavailable")

// unavailable is what callers see of a Kafka failure: EUNAVAILABLE, with
// the cause kept in the chain for logs.
func unavailable(err error) error { return fmt.Errorf("%w: %w", errUnavailable, err) }

const (
	// linger is how long a partition's records wait for company before a
	// produce request leaves; see BenchmarkPublish.
	linger = time.Millisecond
	// A failing batch is retried from minBackoff doubling to maxBackoff: a
	// blip costs milliseconds, and a store down for minutes is not hammered.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
	// commitTimeout bounds the commit of a batch already applied, which is
	// attempted even when Consume's ctx just ended: it spares the next owner
	// of the partition from applying the batch again.
	commitTimeout = 10 * time.Second
	// pollTimeout bounds a poll that finds nothing, past the fetch wait.
	pollTimeout = 2 * time.Second
)

// Open connects to the cluster and creates the topics if they are missing.
// It does not consume until Consume is called.
func Open(ctx context.Context, cfg Config) (*Queue, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers")
	}
	cfg.Topic = cmp.Or(cfg.Topic, "instachat.creates")
	cfg.DeadLetterTopic = cmp.Or(cfg.DeadLetterTopic, cfg.Topic+".dlq")
	cfg.Partitions = cmp.Or(cfg.Partitions, 12)
	cfg.ReplicationFactor = cmp.Or(cfg.ReplicationFactor, 1)
	cfg.Group = cmp.Or(cfg.Group, "instachat-workers")
	cfg.MaxBatch = cmp.Or(cfg.MaxBatch, 1000)
	cfg.PublishTimeout = cmp.Or(cfg.PublishTimeout, 5*time.Second)
	q := &Queue{cfg: cfg, log: cmp.Or(cfg.Logger, slog.Default()), ids: map[string]kadm.TopicID{}}
	var err error
	q.producer, err = q.newClient(
		kgo.RequiredAcks(kgo.AllISRAcks()), // the default, named because durability rests on it
		kgo.ProducerLinger(linger),
		// Fails records that never reached a broker — a dead cluster —
		// once Publish gave up on them; the producer's floor is a second.
		kgo.RecordDeliveryTimeout(max(cfg.PublishTimeout, time.Second)+linger),
		// kgo's retry backoff grows to 5 s, as long as a publish may wait,
		// so creates went on failing for seconds after a broker came back
		// (docs/RELIABILITY.md). A 1 s cap lets the producer notice the
		// broker within a publish.
		kgo.RetryBackoffFn(func(tries int) time.Duration {
			return min(time.Duration(tries)*100*time.Millisecond, time.Second)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	q.admin = kadm.NewClient(q.producer)
	_, err = q.ensureTopics(ctx, false)
	if err == nil {
		err = q.followTopics(ctx)
	}
	if err != nil {
		q.producer.Close()
		return nil, fmt.Errorf("kafka: topics: %w", err)
	}
	return q, nil
}

// Close ends publishing. Consume stops with its own ctx.
func (q *Queue) Close() { q.producer.Close() }

func (q *Queue) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(q.cfg.Brokers...), kgo.WithLogger(kgoLogger{q.log})}, opts...)...)
}

// ensureTopics creates the topics that are missing and returns their
// names. An existing topic is kept as it is: an operator may have sized it
// on purpose. fresh asks the broker rather than the client's metadata
// cache, which may say for seconds (MetadataMinAge) that a topic deleted
// since still exists.
func (q *Queue) ensureTopics(ctx context.Context, fresh bool) (created []string, err error) {
	topics, err := q.listTopics(ctx, fresh)
	if err != nil {
		return nil, err
	}
	// acks=all waits only for the replicas in sync, which with the broker
	// default may be the leader alone; requiring all but one keeps every
	// acknowledged create on two brokers while one may be down.
	minISR := strconv.Itoa(max(1, int(q.cfg.ReplicationFactor)-1))
	first := !q.listed.Swap(true)
	for _, name := range []string{q.cfg.Topic, q.cfg.DeadLetterTopic} {
		switch t := topics[name]; {
		case t.Err == nil && len(t.Partitions) > 0:
			if n := len(t.Partitions); n < int(q.cfg.Partitions) && first {
				q.log.Warn("kafka: topic has fewer partitions than configured: fewer workers can share it", "topic", name,
					"partitions", n, "configured", q.cfg.Partitions)
			}
		case t.Err == nil || errors.Is(t.Err, kerr.UnknownTopicOrPartition):
			// The cached listing of Open may be older than the topic:
			// TopicAlreadyExists then says it is there, as it does when
			// another process won the race.
			_, err := q.admin.CreateTopic(ctx, q.cfg.Partitions, q.cfg.ReplicationFactor, map[string]*string{"min.insync.replicas": &minISR}, name)
			switch {
			case err == nil:
				created = append(created, name)
			case !errors.Is(err, kerr.TopicAlreadyExists):
				return created, err
			}
		default:
			return created, t.Err
		}
	}
	return created, nil
}

// listTopics describes the topic and the dead-letter topic.
func (q *Queue) listTopics(ctx context.Context, fresh bool) (kadm.TopicDetails, error) {
	names := []string{q.cfg.Topic, q.cfg.DeadLetterTopic}
	if !fresh {
		return q.admin.ListTopics(ctx, names...)
	}
	req := kmsg.NewPtrMetadataRequest() // AllowAutoTopicCreation false: the broker's defaults would size them
	for _, name := range names {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, q.producer)
	if err != nil {
		return nil, err
	}
	topics := kadm.TopicDetails{}
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		d := kadm.TopicDetail{Topic: *t.Topic, ID: t.TopicID, Err: kerr.ErrorForCode(t.ErrorCode), Partitions: kadm.PartitionDetails{}}
		for _, p := range t.Partitions {
			d.Partitions[p.Partition] = kadm.PartitionDetail{Topic: *t.Topic, Partition: p.Partition, Err: kerr.ErrorForCode(p.ErrorCode)}
		}
		topics[*t.Topic] = d
	}
	return topics, nil
}

// Enqueue hands the records to the producer, which keeps their order within
// a partition, and returns a wait that answers once the brokers
// acknowledged every create, or EUNAVAILABLE after PublishTimeout or when
// ctx ends. A create it gave up on may still be stored later, as with any
// request whose answer is lost.
func (q *Queue) Enqueue(ctx context.Context, creates ...instachat.Create) (func(context.Context) error, error) {
	recs := make([]*kgo.Record, len(creates))
	for i, c := range creates {
		k, v, err := encode(c)
		if err != nil {
			return nil, err
		}
		recs[i] = &kgo.Record{Topic: q.cfg.Topic, Key: k, Value: v}
	}
	return q.enqueue(ctx, recs...)
}

// DeadLetter puts c on the dead-letter topic with the reason and the time.
// It returns EUNAVAILABLE when the brokers do not acknowledge it; the worker
// then fails the batch, which comes again.
func (q *Queue) DeadLetter(ctx context.Context, c instachat.Create, reason error) error {
	k, v, err := encode(c)
	if err != nil {
		return err
	}
	return q.deadLetter(ctx, k, v, reason)
}

func (q *Queue) deadLetter(ctx context.Context, key, value []byte, reason error) error {
	return q.produce(ctx, &kgo.Record{Topic: q.cfg.DeadLetterTopic, Key: key, Value: value, Headers: []kgo.RecordHeader{
		{Key: "reason", Value: []byte(fmt.Sprint(reason))},
		{Key: "failed_at", Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	}})
}

// produce waits, at most PublishTimeout, for the brokers to acknowledge
// every record. Records of concurrent calls travel in shared batches.
func (q *Queue) produce(ctx context.Context, recs ...*kgo.Record) error {
	wait, err := q.enqueue(ctx, recs...)
	if err != nil {
		return err
	}
	return wait(ctx)
}

// enqueue hands recs to the producer and returns a wait that answers once
// the brokers acknowledged all of them, bounded by PublishTimeout from now.
func (q *Queue) enqueue(ctx context.Context, recs ...*kgo.Record) (func(context.Context) error, error) {
	if err := ctx.Err(); err != nil { // nobody waits for the answer: publish nothing
		return nil, unavailable(err)
	}
	deadline := time.Now().Add(q.cfg.PublishTimeout)
	// The records get a context that is never canceled, because the
	// producer fails every record buffered behind a canceled one in its
	// partition: a client hanging up would fail other clients' creates.
	// RecordDeliveryTimeout bounds them instead, and TryProduce answers a
	// full buffer — brokers not keeping up — at once.
	rctx := context.WithoutCancel(ctx)
	acked := make(chan error, len(recs))
	for _, r := range recs {
		q.producer.TryProduce(rctx, r, func(_ *kgo.Record, err error) { acked <- err })
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		for range recs {
			select {
			case err := <-acked:
				if err != nil {
					return unavailable(err)
				}
			case <-ctx.Done():
				return unavailable(ctx.Err())
			}
		}
		return nil
	}, nil
}

// Consume joins the consumer group and hands handle up to MaxBatch creates
// at a time until ctx ends. A batch handle fails is handed again, with
// backoff, until it succeeds; only then are its offsets committed. A record
// that does not decode goes to the dead-letter topic with the reason.
func (q *Queue) Consume(ctx context.Context, handle func(ctx context.Context, batch []instachat.Create) error) error {
	cl, err := q.newClient(
		kgo.ConsumerGroup(q.cfg.Group),
		kgo.ConsumeTopics(q.cfg.Topic),
		// A group without commits starts at the oldest record: creates
		// published before the first worker joined are not skipped.
		kgo.ConsumeStartOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		// A rebalance waits until the polled batch is committed, so the
		// next owner of a partition starts right after it.
		kgo.BlockRebalanceOnPoll(),
		// A newly assigned partition joins the fetches only when the long
		// poll in flight returns; a one-second poll keeps that pause after
		// a rebalance short, at the cost of an idle request a second.
		kgo.FetchMaxWait(time.Second),
		// A worker that dies without leaving the group keeps its partitions
		// until its session times out; kgo's default of 45 s kept creates
		// already answered 202 unreadable that long after a SIGKILL. 10 s
		// (heartbeats every second) bounds it; brokers allow 6 s and up.
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		// A rebalance waits this long for every member to rejoin, and a
		// member's own JoinGroup waits as long (plus kgo's 10 s request
		// overhead). A member that died with its JoinGroup pending held
		// the group until then on kfake, which drops it at its session
		// timeout but does not complete the rebalance without it (Kafka
		// does): 70 s with kgo's default of 60 s, 25 s with 15 s (see
		// TestDeadMemberWithPendingJoin). 15 s still lets a batch in
		// flight finish and commit before its worker rejoins
		// (BlockRebalanceOnPoll); one stuck longer, say on a store
		// outage, has its member dropped and the batch delivered again,
		// which changes nothing.
		kgo.RebalanceTimeout(15*time.Second),
	)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	// Leaving the group hands the partitions over at once; a batch in
	// flight is uncommitted and goes to their next owner.
	defer cl.CloseAllowingRebalance()
	incarnation := q.incarnation.Load()
	for {
		// A poll that finds nothing returns within a second or so, for
		// the check of the topic's incarnation below: a client whose
		// topic was lost waits for nothing else.
		pctx, cancel := context.WithTimeout(ctx, pollTimeout)
		fetches := cl.PollRecords(pctx, q.cfg.MaxBatch)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		// The client retries by itself; these errors only inform.
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				q.log.Warn("kafka: fetch failed", "topic", topic, "partition", partition, "err", err)
			}
		})
		if recs := fetches.Records(); len(recs) > 0 && !q.deliver(ctx, cl, recs, handle) {
			return nil
		}
		cl.AllowRebalance()
		// A topic Ping saw deleted and created again is consumed anew:
		// kgo would stay on the lost one.
		if n := q.incarnation.Load(); n != incarnation {
			incarnation = n
			q.log.Warn("kafka: the topic was deleted and created again; consuming it anew", "topic", q.cfg.Topic)
			cl.PurgeTopicsFromConsuming(q.cfg.Topic)
			cl.AddConsumeTopics(q.cfg.Topic)
		}
	}
}

// deliver hands recs to handle until it succeeds, then commits them. It
// reports false if ctx ended first, leaving them uncommitted.
func (q *Queue) deliver(ctx context.Context, cl *kgo.Client, recs []*kgo.Record, handle func(context.Context, []instachat.Create) error) bool {
	creates := make([]instachat.Create, 0, len(recs))
	for _, r := range recs {
		c, err := decode(r.Value)
		if err == nil {
			creates = append(creates, c)
			continue
		}
		// Set aside before the batch is handled: once, however often the
		// handler then fails.
		if !q.persist(ctx, "dead-lettering an undecodable record", func() error { return q.deadLetter(ctx, r.Key, r.Value, err) }) {
			return false
		}
		q.log.Error("kafka: undecodable record set aside", "partition", r.Partition, "offset", r.Offset, "err", err)
	}
	if len(creates) > 0 && !q.persist(ctx, "handling a batch", func() error { return handle(ctx, creates) }) {
		return false
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := cl.CommitRecords(cctx, recs...); err != nil {
		// Applied but not committed: the partition's next owner, maybe
		// this member, applies the batch again, which changes nothing.
		q.log.Warn("kafka: commit failed; the batch will be delivered again", "creates", len(recs), "err", err)
	}
	return true
}

// Lag is how many records of Topic the consumer group has not committed.
func (q *Queue) Lag(ctx context.Context) (int64, error) {
	ends, err := q.endOffsets(ctx)
	if err != nil {
		return 0, err
	}
	return q.behind(ctx, ends)
}

// WaitConsumed returns once the consumer group has committed every record
// that Topic held at the call, so every create published before it is
// stored. It returns EUNAVAILABLE if ctx ends first.
func (q *Queue) WaitConsumed(ctx context.Context) error {
	ends, err := q.endOffsets(ctx)
	if err != nil {
		return err
	}
	return retry(ctx, time.Second, func() error {
		lag, err := q.behind(ctx, ends)
		if err == nil && lag > 0 {
			err = unavailable(fmt.Errorf("consumer group %s is %d records behind", q.cfg.Group, lag))
		}
		return err
	})
}

func (q *Queue) endOffsets(ctx context.Context) (kadm.ListedOffsets, error) {
	ends, err := q.admin.ListEndOffsets(ctx, q.cfg.Topic)
	if err = cmp.Or(err, ends.Error()); err != nil {
		return nil, unavailable(err)
	}
	return ends, nil
}

// behind is how many records before ends the consumer group has not
// committed. A partition without a commit counts from its oldest record,
// since records deleted by retention can never be consumed.
func (q *Queue) behind(ctx context.Context, ends kadm.ListedOffsets) (int64, error) {
	starts, err := q.admin.ListStartOffsets(ctx, q.cfg.Topic)
	if err = cmp.Or(err, starts.Error()); err != nil {
		return 0, unavailable(err)
	}
	commits, err := q.admin.FetchOffsets(ctx, q.cfg.Group)
	if err = cmp.Or(err, commits.Error()); err != nil {
		return 0, unavailable(err)
	}
	var lag int64
	ends.Each(func(end kadm.ListedOffset) {
		from, _ := starts.Lookup(end.Topic, end.Partition)
		done := from.Offset
		if c, ok := commits.Lookup(end.Topic, end.Partition); ok {
			done = max(done, c.At)
		}
		lag += max(end.Offset-done, 0)
	})
	return lag, nil
}

// persist calls try until it succeeds, logging every failure, and reports
// false if ctx ended first.
func (q *Queue) persist(ctx context.Context, what string, try func() error) bool {
	attempt := 0
	return retry(ctx, maxBackoff, func() error {
		err := try()
		if attempt++; err != nil {
			q.log.Warn("kafka: "+what+" failed; trying again", "attempt", attempt, "err", err)
		}
		return err
	}) == nil
}

// retry calls try until it returns nil, waiting from minBackoff doubling up
// to ceiling in between. If ctx ends first it returns try's last error.
func retry(ctx context.Context, ceiling time.Duration, try func() error) error {
	for wait := minBackoff; ; wait = min(2*wait, ceiling) {
		err := try()
		if err == nil {
			return nil
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return err
		}
	}
}

// kgoLogger passes the client's warnings and errors to slog; its info and
// debug lines are per-request chatter.
type kgoLogger struct{ log *slog.Logger }

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	l.log.Log(context.Background(), lvl, "kafka: "+msg, keyvals...)
}

// Ping reports, for /healthz, whether creates can be queued: a broker
// answers and the topics exist. A broker that lost them (a fresh one on the
// same address, a topic deleted) answers pings while every publish fails
// with UNKNOWN_TOPIC_OR_PARTITION, so Ping creates them again as Open does.
// A topic created again has a new id, which kgo refuses to follow (every
// record fails with UNKNOWN_TOPIC_ID) until it is purged: Ping purges it
// from the producer and has Consume purge it from the consumer, so this
// process publishes and consumes again from its next health check.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.producer.Ping(ctx); err != nil {
		return unavailable(err)
	}
	created, err := q.ensureTopics(ctx, true)
	if err != nil {
		return unavailable(fmt.Errorf("topics: %w", err))
	}
	if len(created) > 0 {
		q.log.Warn("kafka: topics were missing; created them again as at startup (what they held is lost)", "topics", created)
	}
	if err := q.followTopics(ctx); err != nil {
		return unavailable(fmt.Errorf("topics: %w", err))
	}
	return nil
}

// followTopics notes the topics' ids and purges from the producer, and has
// Consume purge, a topic whose id changed since the last call.
func (q *Queue) followTopics(ctx context.Context) error {
	topics, err := q.listTopics(ctx, true)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var changed []string
	for name, t := range topics {
		if t.Err != nil {
			continue
		}
		if old, ok := q.ids[name]; ok && old != t.ID {
			changed = append(changed, name)
			if name == q.cfg.Topic {
				q.incarnation.Add(1)
			}
		}
		q.ids[name] = t.ID
	}
	if len(changed) > 0 {
		q.log.Warn("kafka: topics were deleted and created again; publishing to them anew", "topics", changed)
		q.producer.PurgeTopicsFromProducing(changed...)
	}
	return nil
}
