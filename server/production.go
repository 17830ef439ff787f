package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/elasticsearch"
	"github.com/instachat/instachat/kafka"
	"github.com/instachat/instachat/mysql"
	"github.com/instachat/instachat/redis"
	"github.com/instachat/instachat/search"
	"github.com/instachat/instachat/worker"
)

// openProduction connects the engines the seed chose. Every role uses
// MySQL (reads, writes, or recovering numbering); Redis serves the roles
// that number or register (api, dispatcher); Kafka the roles on either end
// of the queue (dispatcher, worker); Elasticsearch, when set, the roles that
// search or index (api, worker).
func openProduction(ctx context.Context, cfg Config, logger *slog.Logger) (b *backends, err error) {
	b = &backends{createdStatus: http.StatusAccepted, checks: map[string]func(context.Context) error{}}
	defer func() {
		if err != nil {
			for i := len(b.closers) - 1; i >= 0; i-- {
				b.closers[i]()
			}
		}
	}()
	roles := cfg.Roles

	// With Elasticsearch, each message deletion records the erasure
	// Elasticsearch owes, until the API or the worker's retry sent it.
	db, err := mysql.Open(ctx, cfg.MySQLDSN, mysql.Options{SearchErasures: cfg.ElasticsearchURL != ""})
	if err != nil {
		return nil, fmt.Errorf("mysql: %w", err)
	}
	b.onClose(db.Close)
	// Every process migrates at start; Migrate is idempotent and serialised
	// by a lock, so no manual step is needed and concurrent starts are safe.
	if err := db.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("mysql migrate: %w", err)
	}
	b.store, b.searcher = db, search.New(db, db) // the fallback without a search engine
	b.checks["mysql"] = db.Ping

	var q *kafka.Queue
	if roles.Dispatcher || roles.Worker {
		if q, err = openQueue(ctx, cfg, cfg.KafkaGroup, logger, b); err != nil {
			return nil, err
		}
		b.queue, b.lag = q, q.Lag
		b.checks["kafka"] = q.Ping
	}

	if roles.API || roles.Dispatcher {
		seq, err := redis.Open(cfg.RedisURL, cfg.RedisPrefix)
		if err != nil {
			return nil, fmt.Errorf("redis: %w", err)
		}
		b.onClose(func() error { seq.Close(); return nil })
		if q != nil {
			seq.Recover = recoverNumbering(db, q)
			seq.RecoverGrace = publishTimeout
			seq.ReceiptTTL = cfg.IdempotencyTTL
		}
		b.sequencer = seq
		b.checks["redis"] = seq.Ping
		// Each budget is shared by every process, on the sequencer's
		// connection.
		b.newLimiter = func(l instachat.RateLimit) instachat.RateLimiter { return seq.RateLimiter(l) }
	}

	if roles.API || roles.Worker {
		// Workers publish the creates they commit, api processes the
		// edits, and api processes subscribe for their streams.
		br, err := redis.OpenBroker(cfg.RedisURL, cfg.RedisPrefix, redis.BrokerOptions{})
		if err != nil {
			return nil, fmt.Errorf("redis broker: %w", err)
		}
		br.Logger = logger
		b.onClose(func() error { br.Close(); return nil })
		b.broker = br
	}

	if cfg.ElasticsearchURL == "" {
		if roles.API {
			logger.Info("no INSTACHAT_ELASTICSEARCH_URL: search scans the chat in MySQL (correct, slower on large chats)")
		}
		return b, nil
	}
	if roles.API || roles.Worker {
		es, err := elasticsearch.Open(ctx, elasticsearch.Config{URL: cfg.ElasticsearchURL, Index: cfg.ElasticsearchIndex, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("elasticsearch: %w", err)
		}
		b.searcher, b.indexer, b.engine, b.erasures = search.New(db, es), es, es, db
		b.checks["elasticsearch"] = es.Ping
		if roles.Worker {
			// Indexing reads the topic in a consumer group of its own,
			// which commits only what Elasticsearch took: while it is
			// down, the workers keep storing and the index falls behind,
			// then catches up.
			iq, err := openQueue(ctx, cfg, cfg.KafkaGroup+indexGroupSuffix, logger, b)
			if err != nil {
				return nil, err
			}
			// A create of a chat deleted meanwhile is dropped, not indexed.
			b.indexLoop = func(ctx context.Context) error { return iq.Consume(ctx, worker.IndexUndeleted(es, db)) }
			// The reclaim has Elasticsearch forget a deleted chat only
			// once this group consumed what the topic held: a create
			// queued before the deletion is indexed first, then erased.
			b.indexed = iq.WaitConsumed
			// Each queue follows a topic deleted and created again at its
			// own Ping (kafka.Queue.Ping): /healthz pings both.
			ping := b.checks["kafka"]
			b.checks["kafka"] = func(ctx context.Context) error { return errors.Join(ping(ctx), iq.Ping(ctx)) }
		}
	}
	return b, nil
}

// indexGroupSuffix names the consumer group that feeds the search index
// after the workers' group: instachat-workers.index by default.
const indexGroupSuffix = ".index"

// openQueue opens the topic of cfg for the consumer group, closed with b.
func openQueue(ctx context.Context, cfg Config, group string, logger *slog.Logger, b *backends) (*kafka.Queue, error) {
	q, err := kafka.Open(ctx, kafka.Config{
		Brokers: cfg.KafkaBrokers, Topic: cfg.KafkaTopic, Group: group,
		Partitions: cfg.KafkaPartitions, ReplicationFactor: cfg.KafkaReplication,
		PublishTimeout: publishTimeout, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	b.onClose(func() error { q.Close(); return nil })
	return q, nil
}

// publishTimeout bounds a publish, and so the longest a number can be in
// flight between Redis and Kafka; recovery waits that long before trusting
// the store.
const publishTimeout = 5 * time.Second

// recoverNumbering is how the Redis sequencer resumes after losing its
// state: an unknown application is answered from the store at once
// (applications are stored before they are numbered); for a known one, wait
// until the workers consumed everything published so far, so the store
// holds every number issued, then read the highest.
func recoverNumbering(store instachat.Store, q *kafka.Queue) func(context.Context, instachat.Scope) (int64, error) {
	return func(ctx context.Context, s instachat.Scope) (int64, error) {
		if _, err := store.FindApplication(ctx, s.Token); err != nil {
			return 0, err
		}
		if err := q.WaitConsumed(ctx); err != nil {
			return 0, err
		}
		return store.HighestNumber(ctx, s)
	}
}

// MaintenanceStore is a store opened for a maintenance command.
type MaintenanceStore interface {
	instachat.Store
	Close() error
}

// OpenMaintenanceStore opens and migrates the store of cfg's topology, for
// commands such as migrate and recount.
func OpenMaintenanceStore(ctx context.Context, cfg Config) (MaintenanceStore, error) {
	production, err := cfg.Production()
	if err != nil {
		return nil, err
	}
	if !production {
		return OpenStore(cfg)
	}
	db, err := mysql.Open(ctx, cfg.MySQLDSN, mysql.Options{})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
