package main

import (
	"context"

	"github.com/instachat/instachat/server"
)

// serve is `instachat serve`: run the roles of the configuration until
// SIGINT or SIGTERM, then shut down without losing an acknowledged create.
func serve(ctx context.Context, args []string, sys *system) error {
	cfg, err := loadConfig("serve", args, sys)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogLevel, sys.stderr)
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
