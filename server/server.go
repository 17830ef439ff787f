// Package server assembles one Instachat process from a Config: it opens the
// backends of the topology (embedded: SQLite and in-process numbering and
// queue; production: MySQL, Redis, Kafka, optionally Elasticsearch), starts
// the roles the process plays, and shuts all of it down in the order that
// loses nothing. cmd/instachat only parses and calls it; tests run it on :0.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/console"
	"github.com/instachat/instachat/dispatch"
	"github.com/instachat/instachat/feed"
	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/metrics"
	"github.com/instachat/instachat/search"
	"github.com/instachat/instachat/worker"
)

// backends are the moving parts a topology provides to the roles.
// gauge is a figure a backend reads when /metrics is scraped.
type gauge struct {
	name, help string
	read       func() float64
}

type backends struct {
	store    instachat.Store
	searcher instachat.Searcher
	indexer  instachat.Indexer // nil when the store indexes itself
	// engine is the search engine apart from the store, whose documents
	// of a deleted chat or application the reclaim erases; nil when the
	// store indexes itself.
	engine    instachat.SearchEngine
	sequencer instachat.Sequencer
	queue     instachat.Queue
	// newLimiter makes a rate limiter of the topology (in memory, or
	// shared in Redis); nil where the process has none to offer.
	newLimiter func(instachat.RateLimit) instachat.RateLimiter
	// createdStatus is 201 where a create is readable when answered (the
	// embedded queue answers after the commit), 202 where it will be soon.
	createdStatus int
	checks        map[string]func(context.Context) error
	// broker carries committed events from the roles that commit them to
	// the streams of the api role; nil where the process does neither.
	broker instachat.Broker
	lag    func(context.Context) (int64, error) // nil without a broker
	// gauges are the backends' own figures, read at scrape time.
	gauges []gauge
	// indexLoop, when set, feeds indexer from the queue apart from the
	// worker, so that the search engine being down holds up the index,
	// never the store.
	indexLoop func(context.Context) error
	// indexed, when set, returns once indexLoop's consumer group indexed
	// every create queued before the call: the reclaim waits for it before
	// the engine forgets a deleted chat or application.
	indexed func(context.Context) error
	// erasures, when set with indexer, is where the store records the
	// search erasures message deletions owe the indexer (see
	// instachat.SearchErasures); the worker sends what the API did not.
	erasures instachat.SearchErasures
	// chores are scheduled upkeep run beside the worker until it stops,
	// e.g. pruning expired idempotency receipts, so no operator has to.
	chores []func(context.Context) error

	// closeQueue refuses new publishes; closers release the backends, last
	// opened first.
	closeQueue func()
	closers    []func() error
}

func (b *backends) onClose(fn func() error) { b.closers = append(b.closers, fn) }

// Server is one running process.
type Server struct {
	Config Config
	Logger *slog.Logger

	b          *backends
	http       *http.Server
	debug      *http.Server
	ln         net.Listener
	streams    *feed.Streamer // nil unless the process serves the api
	stopWorker context.CancelFunc
	workerDone chan error
}

// New returns a Server for cfg; Open starts it.
func New(cfg Config, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.Default()
	}
	return &Server{Config: cfg, Logger: logger}
}

// Open starts the process and returns once it serves: schemas are migrated,
// numbering knows what exists, and the worker runs.
func (s *Server) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			s.Close(context.Background())
		}
	}()
	production, err := s.Config.Production()
	if err != nil {
		return err
	}
	if production {
		s.b, err = openProduction(ctx, s.Config, s.Logger)
	} else {
		s.b, err = openEmbedded(ctx, s.Config, s.Logger)
	}
	if err != nil {
		return err
	}
	if !production && s.Config.AdminToken == "" {
		// Secure by default, yet usable on a laptop: the embedded default
		// makes its own. The production topology has none unless set, so
		// what it guards is refused.
		if s.Config.AdminToken, err = embeddedAdminToken(s.Config.DataDir, s.Logger); err != nil {
			return err
		}
	}
	if s.Config.RequireAdminForApplications && s.Config.AdminToken == "" {
		return errors.New("INSTACHAT_REQUIRE_ADMIN_FOR_APPLICATIONS needs INSTACHAT_ADMIN_TOKEN: without it no one could create an application")
	}
	b, roles := s.b, s.Config.Roles
	m := metrics.New()
	if b.lag != nil {
		m.LagGauge(b.lag)
	}
	for _, g := range b.gauges {
		m.Gauge(g.name, g.help, g.read)
	}
	queue := m.Queue(b.queue)
	// The store's layers, wired once for every role: the backend, then
	// the search engine's indexing of edits (where it lives apart), then
	// the publishing of what committed. So an edit is stored, indexed and
	// announced in that order by one call; the worker's creates are
	// published by the same layer (and indexed by their own consumer).
	store := b.store
	if b.sequencer != nil {
		store = &dispatch.Deletes{Store: store, Sequencer: b.sequencer, Logger: s.Logger}
	}
	if b.indexer != nil {
		store = &search.Indexing{Store: store, Indexer: b.indexer, Erasures: b.erasures, Logger: s.Logger}
	}
	if b.broker != nil {
		store = &feed.Publisher{Store: store, Broker: m.Broker(b.broker), Logger: s.Logger}
	}
	if roles.API && b.broker != nil {
		s.streams = &feed.Streamer{
			Feeds: b.store, Broker: b.broker,
			MaxStreams: s.Config.MaxSubscribers, MaxStreamsPerToken: s.Config.MaxSubscribersPerToken,
			Observer: m.StreamObserver(),
		}
	}

	if roles.Worker {
		w := &worker.Worker{Queue: queue, Store: store, Logger: s.Logger, Observe: m.ObserveBatch, Dropped: m.ObserveDropped}
		loops := []func(context.Context) error{w.Run}
		if b.indexLoop != nil {
			loops = append(loops, b.indexLoop)
		}
		loops = append(loops, b.chores...)
		// Every worker process erases what deletions left, in batches of
		// their own transactions, resuming what a crash interrupted, and
		// then the search engine's documents of each deletion.
		r := &worker.Reclaimer{Store: b.store, Engine: b.engine, Indexed: b.indexed, Logger: s.Logger, Reclaimed: m.ObserveReclaimed}
		loops = append(loops, r.Run)
		if b.erasures != nil && b.indexer != nil {
			e := &worker.SearchEraser{Store: b.erasures, Indexer: b.indexer, Logger: s.Logger}
			loops = append(loops, e.Run)
		}
		wctx, stop := context.WithCancel(context.Background())
		s.stopWorker, s.workerDone = stop, make(chan error, 1)
		go func() { s.workerDone <- runAll(wctx, loops) }()
	}

	limits := instachat.DefaultLimits
	limits.MaxBodyBytes = s.Config.MaxBodyBytes
	d := dispatch.New(b.sequencer, queue)
	d.Store, d.Limits = store, limits
	api := &instachathttp.Server{
		Store:           store,
		Creator:         d,
		Searcher:        b.searcher,
		Streams:         s.streams,
		ObserveStream:   m.ObserveStream,
		Limits:          limits,
		MaxRequestBytes: s.Config.MaxRequestBytes,
		CreatedStatus:   b.createdStatus,
		API:             roles.API,
		Dispatch:        roles.Dispatcher,
		AdminToken:      s.Config.AdminToken,
		Checks:          b.checks,
		Logger:          s.Logger,
	}
	s.limit(api)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", instachathttp.RequireAdmin(s.Config.AdminToken, m.Handler()))
	mux.Handle("/", api.Handler())
	if roles.API {
		// The web console is a client of the API this process serves.
		c := console.Handler()
		mux.Handle("GET /{$}", c)
		mux.Handle("GET "+console.Prefix, c)
	}
	s.http = &http.Server{
		// The outer mux would redirect an unclean path before the API's.
		Handler:           m.Middleware(instachathttp.CleanPaths(mux)),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	if s.Config.DebugAddr != "" {
		if s.debug, err = serveDebug(s.Config.DebugAddr, s.Logger); err != nil {
			return err
		}
	}
	if s.ln, err = net.Listen("tcp", s.Config.Addr); err != nil {
		return err
	}
	// What net/http refuses itself (a header over MaxHeaderBytes…) is
	// answered in the API's JSON shape too.
	s.ln = instachathttp.Listener(s.ln, s.http.MaxHeaderBytes)
	go func() {
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("http server stopped", "err", err)
		}
	}()
	topology := "embedded"
	if production {
		topology = "production"
	}
	s.Logger.Info("instachat serving", "addr", s.ln.Addr().String(), "topology", topology, "roles", roles.String(), "pid", os.Getpid())
	return nil
}

// limit gives api the limiters the configuration asks for, each where its
// role serves what it limits: creates per token on dispatchers, searches
// per token and application creates per client address on api processes.
func (s *Server) limit(api *instachathttp.Server) {
	cfg, roles, newLimiter := s.Config, s.Config.Roles, s.b.newLimiter
	api.TrustForwardedFor = cfg.TrustForwardedFor
	api.RequireAdminForApplications = cfg.RequireAdminForApplications
	if newLimiter == nil {
		return
	}
	if l, on := cfg.RateLimitPolicy(); on && roles.Dispatcher {
		api.RateLimiter = newLimiter(l)
	}
	if l, on := cfg.SearchRateLimitPolicy(); on && roles.API {
		api.SearchLimiter = newLimiter(l)
	}
	if l, on := cfg.ApplicationRateLimitPolicy(); on && roles.API {
		api.ApplicationLimiter = newLimiter(l)
	}
}

// runAll runs every loop until ctx ends and returns their errors.
func runAll(ctx context.Context, loops []func(context.Context) error) error {
	errs := make([]error, len(loops))
	var wg sync.WaitGroup
	for i, loop := range loops {
		wg.Go(func() { errs[i] = loop(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// URL is the base URL the server listens on, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string {
	addr := s.ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port))
}

// Close shuts down without losing an acknowledged create: stop accepting and
// let in-flight requests finish (each answers only once its create is
// durable), refuse new publishes, stop the worker after the batch it is
// applying, then release the backends.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.streams != nil {
		// Streams never go idle, so the HTTP shutdown would wait for them
		// until ctx ends: end them first, each after the events it holds,
		// and refuse new ones; their clients resume on another process.
		errs = append(errs, s.streams.Shutdown(ctx))
	}
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	if s.debug != nil {
		errs = append(errs, s.debug.Close())
	}
	if s.b != nil && s.b.closeQueue != nil {
		s.b.closeQueue()
	}
	if s.stopWorker != nil {
		s.stopWorker()
		if err := <-s.workerDone; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
		s.stopWorker = nil
	}
	if s.b != nil {
		for i := len(s.b.closers) - 1; i >= 0; i-- {
			errs = append(errs, s.b.closers[i]())
		}
		s.b = nil
	}
	return errors.Join(errs...)
}

// serveDebug serves net/http/pprof on its own listener, apart from the API,
// so profiles can be taken from any role without exposing them with it.
func serveDebug(addr string, logger *slog.Logger) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug server: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	logger.Info("pprof serving", "addr", ln.Addr().String())
	return srv, nil
}
