// Package metrics exposes a process's Prometheus metrics. What it measures
// it measures from the outside, as decorators of the same interfaces the
// rest of the code uses (a Queue that times Publish, a handler that times
// requests), so no backend carries metric code of its own.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/feed"
	"github.com/instachat/instachat/internal/httpstatus"
)

// Metrics is one process's registry and the instruments in it.
type Metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.HistogramVec
	accepted   *prometheus.CounterVec
	publish    *prometheus.HistogramVec
	batchSize  prometheus.Histogram
	batchTime  prometheus.Histogram
	applied    prometheus.Counter
	deadLetter prometheus.Counter
	feeds      *feeds
	dropped    prometheus.Counter
	reclaimed  prometheus.Counter
}

// New registers the instruments, with the Go runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	latency := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "instachat_http_request_duration_seconds", Help: "HTTP request latency by route pattern and status.", Buckets: latency,
	}, []string{"route", "status"})
	m.accepted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "instachat_creates_accepted_total", Help: "Creates the queue accepted, by kind (chat or message).",
	}, []string{"kind"})
	m.publish = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "instachat_queue_publish_duration_seconds", Help: "Time for the queue to make a create durable, by outcome.", Buckets: latency,
	}, []string{"outcome"})
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "instachat_worker_batch_size", Help: "Creates per batch the worker applied in one transaction.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 7),
	})
	m.batchTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "instachat_worker_batch_duration_seconds", Help: "Time to apply a batch: rows, counts and index.", Buckets: latency,
	})
	m.applied = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instachat_worker_creates_applied_total", Help: "Creates in batches the worker applied (rows and count maintenance in one transaction).",
	})
	m.deadLetter = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instachat_dead_letters_total", Help: "Creates set aside because the store refuses them.",
	})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instachat_worker_creates_dropped_total",
		Help: "Creates the store dropped because their chat or application, or their message, was deleted.",
	})
	m.reclaimed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "instachat_reclaimed_rows_total", Help: "Rows of deleted chats and applications erased in the background.",
	})
	m.reg.MustRegister(m.requests, m.accepted, m.publish, m.batchSize, m.batchTime, m.applied, m.deadLetter, m.dropped, m.reclaimed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.feeds = newFeeds(m.reg)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Gauge registers a gauge read from fn at scrape time, e.g. consumer lag.
func (m *Metrics) Gauge(name, help string, fn func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
}

// LagGauge registers the queue's consumer lag, read with a short timeout so
// a scrape never hangs on an unreachable broker (it then reports -1).
func (m *Metrics) LagGauge(lag func(context.Context) (int64, error)) {
	m.Gauge("instachat_queue_consumer_lag", "Creates published but not yet committed by the workers (-1: unknown).", func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := lag(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
}

// Middleware times every request by the route pattern that served it (the
// pattern, not the path, so tokens never become label values).
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := httpstatus.NewRecorder(w)
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, strconv.Itoa(rec.Status)).Observe(time.Since(start).Seconds())
	})
}

// ObserveBatch is the worker's hook: size and duration of an applied batch.
func (m *Metrics) ObserveBatch(size int, took time.Duration) {
	m.batchSize.Observe(float64(size))
	m.batchTime.Observe(took.Seconds())
	m.applied.Add(float64(size))
}

// ObserveDropped is the worker's hook: creates the store dropped as deleted.
func (m *Metrics) ObserveDropped(n int) { m.dropped.Add(float64(n)) }

// ObserveReclaimed is the reclaimer's hook: rows one batch erased.
func (m *Metrics) ObserveReclaimed(n int64) { m.reclaimed.Add(float64(n)) }

// Queue wraps q so publishes are timed and counted.
func (m *Metrics) Queue(q instachat.Queue) instachat.Queue { return &queue{Queue: q, m: m} }

type queue struct {
	instachat.Queue
	m *Metrics
}

// Enqueue times from the hand-over to the answer of wait.
func (q *queue) Enqueue(ctx context.Context, creates ...instachat.Create) (func(context.Context) error, error) {
	start := time.Now()
	wait, err := q.Queue.Enqueue(ctx, creates...)
	if err != nil {
		q.observe(start, creates, err)
		return nil, err
	}
	return func(ctx context.Context) error {
		err := wait(ctx)
		q.observe(start, creates, err)
		return err
	}, nil
}

func (q *queue) observe(start time.Time, creates []instachat.Create, err error) {
	outcome := "ok"
	if err != nil {
		outcome = instachat.ErrorCode(err)
	}
	q.m.publish.WithLabelValues(outcome).Observe(time.Since(start).Seconds())
	if err != nil {
		return
	}
	for _, c := range creates {
		kind := "message"
		if c.Chat != nil {
			kind = "chat"
		}
		q.m.accepted.WithLabelValues(kind).Inc()
	}
}

func (q *queue) DeadLetter(ctx context.Context, c instachat.Create, reason error) error {
	q.m.deadLetter.Inc()
	return q.Queue.DeadLetter(ctx, c, reason)
}

// Feeds are the instruments of the change feeds: events published, streams
// open by transport, events delivered and how late, gap fills, and why
// streams ended (reason "slow" counts those ended for falling behind).
type feeds struct {
	published   prometheus.Counter
	subscribers *prometheus.GaugeVec
	ended       *prometheus.CounterVec
	delivered   prometheus.Counter
	lag         prometheus.Histogram
	gapFills    prometheus.Counter
}

func newFeeds(reg *prometheus.Registry) *feeds {
	f := &feeds{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "instachat_feed_events_published_total", Help: "Committed changes this process published to the event broker.",
		}),
		subscribers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "instachat_stream_subscribers", Help: "Event streams open, by transport (sse, websocket).",
		}, []string{"transport"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "instachat_streams_ended_total",
			Help: "Event streams ended, by transport and reason (client, slow, shutdown, resume, deleted, unavailable, error).",
		}, []string{"transport", "reason"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "instachat_stream_events_delivered_total", Help: "Live events written to streams (replays not counted).",
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "instachat_stream_delivery_lag_seconds", Help: "From a change's timestamp (updated_at) to its live event written to a stream.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		gapFills: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "instachat_stream_gap_fills_total", Help: "Revision gaps streams filled from the store (a publish lost, late or out of order).",
		}),
	}
	for _, t := range []string{"sse", "websocket"} {
		f.subscribers.WithLabelValues(t)
	}
	reg.MustRegister(f.published, f.subscribers, f.ended, f.delivered, f.lag, f.gapFills)
	return f
}

// Broker wraps b so the events this process publishes are counted.
func (m *Metrics) Broker(b instachat.Broker) instachat.Broker { return &broker{Broker: b, m: m} }

type broker struct {
	instachat.Broker
	m *Metrics
}

func (b *broker) Publish(ctx context.Context, topic instachat.Topic, events ...instachat.Event) error {
	err := b.Broker.Publish(ctx, topic, events...)
	if err == nil {
		b.m.feeds.published.Add(float64(len(events)))
	}
	return err
}

// StreamObserver is the streams' hook for deliveries and gap fills.
func (m *Metrics) StreamObserver() feed.Observer {
	return feed.Observer{
		Delivered: func(lag time.Duration) {
			m.feeds.delivered.Inc()
			m.feeds.lag.Observe(lag.Seconds())
		},
		GapFilled: m.feeds.gapFills.Inc,
	}
}

// ObserveStream counts a stream open on transport until the returned
// function is told why it ended.
func (m *Metrics) ObserveStream(transport string) func(reason string) {
	g := m.feeds.subscribers.WithLabelValues(transport)
	g.Inc()
	return func(reason string) {
		g.Dec()
		m.feeds.ended.WithLabelValues(transport, reason).Inc()
	}
}
