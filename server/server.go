// Package server assembles one Instachat process from a Config: it opens the
// backends, starts the worker, and serves the HTTP API, then shuts all of it
// down in the order that loses nothing. cmd/instachat only parses and calls
// it; tests run it on :0 with a temporary data directory.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/dispatch"
	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/inmem"
	"github.com/instachat/instachat/sqlite"
	"github.com/instachat/instachat/worker"
)

// Server is one running process.
type Server struct {
	Config Config
	Logger *slog.Logger

	store      *sqlite.DB
	queue      *inmem.Queue
	http       *http.Server
	ln         net.Listener
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

// DatabasePath is where the embedded default keeps its rows.
func DatabasePath(dataDir string) string { return filepath.Join(dataDir, "instachat.db") }

// OpenStore opens (and migrates) the embedded store of cfg.
func OpenStore(cfg Config) (*sqlite.DB, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return sqlite.Open(DatabasePath(cfg.DataDir), sqlite.Options{Synchronous: strings.ToUpper(cfg.Sync)})
}

// Open starts the process and returns once it serves: the store is migrated,
// the sequencer knows every stored number, and the worker runs.
func (s *Server) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			s.Close(context.Background())
		}
	}()
	if s.store, err = OpenStore(s.Config); err != nil {
		return err
	}
	seq, err := inmem.LoadSequencer(ctx, s.store)
	if err != nil {
		return fmt.Errorf("load sequencer: %w", err)
	}
	s.queue = inmem.NewQueue(inmem.QueueOptions{})

	w := &worker.Worker{Queue: s.queue, Store: s.store, Logger: s.Logger}
	wctx, stop := context.WithCancel(context.Background())
	s.stopWorker, s.workerDone = stop, make(chan error, 1)
	go func() { s.workerDone <- w.Run(wctx) }()

	limits := instachat.DefaultLimits
	limits.MaxBodyBytes = s.Config.MaxBodyBytes
	d := dispatch.New(seq, s.queue)
	d.Limits = limits
	api := &instachathttp.Server{
		Store:           s.store,
		Sequencer:       seq,
		Dispatcher:      d,
		Searcher:        s.store,
		Limits:          limits,
		MaxRequestBytes: s.Config.MaxRequestBytes,
		// The embedded queue answers after the worker's commit: the row is
		// readable when the client hears back.
		CreatedStatus: http.StatusCreated,
		API:           true,
		Dispatch:      true,
		Logger:        s.Logger,
	}
	s.http = &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	if s.ln, err = net.Listen("tcp", s.Config.Addr); err != nil {
		return err
	}
	go func() {
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.Logger.Error("http server stopped", "err", err)
		}
	}()
	s.Logger.Info("instachat serving", "addr", s.ln.Addr().String(), "data_dir", s.Config.DataDir, "sync", s.Config.Sync)
	return nil
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
// let in-flight requests finish (their creates are committed before they
// answer), refuse new publishes, stop the worker once the queue is drained,
// then close the store.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	if s.http != nil {
		errs = append(errs, s.http.Shutdown(ctx))
	}
	if s.queue != nil {
		s.queue.Close()
	}
	if s.stopWorker != nil {
		s.stopWorker()
		if err := <-s.workerDone; err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}
