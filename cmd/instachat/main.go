// Command instachat is the Instachat chat backend: one binary whose
// subcommands serve the API and maintain the data.
//
//	instachat [serve] [flags]   serve the API (the default)
//	instachat migrate [flags]   apply the schema migrations (idempotent; serve does it too)
//	instachat recount [flags]   recompute chats_count and messages_count from the rows
//	instachat reindex [flags]   rebuild the Elasticsearch index from the store (embedded: nothing to do)
//	instachat config [flags]    print the effective configuration (passwords hidden)
//
// The load tools are cmd/instachat-bench, apart from this binary.
// Every flag mirrors an INSTACHAT_* environment variable; see -help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/instachat/instachat/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "instachat:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	cfg, err := server.LoadConfig("instachat "+cmd, args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogLevel, stderr)
	switch cmd {
	case "serve":
		return serve(ctx, cfg, logger)
	case "migrate", "recount":
		return maintain(ctx, cmd, cfg, logger)
	case "reindex":
		return server.Reindex(ctx, cfg, logger)
	case "config":
		cfg.Dump(stdout)
		return nil
	default:
		return fmt.Errorf("unknown command %q (serve, migrate, recount, reindex, config)", cmd)
	}
}

func serve(ctx context.Context, cfg server.Config, logger *slog.Logger) error {
	s := server.New(cfg, logger)
	if err := s.Open(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("shutting down: draining requests and queued creates", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return s.Close(sctx)
}

// maintain runs a one-off command against the store of the topology.
// Opening the store migrates it, which is all migrate asks for.
func maintain(ctx context.Context, cmd string, cfg server.Config, logger *slog.Logger) error {
	store, err := server.OpenMaintenanceStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if cmd == "recount" {
		if err := store.Recount(ctx); err != nil {
			return err
		}
		logger.Info("counts recomputed from the rows")
		return nil
	}
	logger.Info("schema is up to date")
	return nil
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level)) // LoadConfig validated it
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
