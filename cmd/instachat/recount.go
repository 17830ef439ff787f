package main

import (
	"context"

	"github.com/instachat/instachat/server"
)

// recount is `instachat recount`: recompute every application's
// chats_count and every chat's messages_count from the rows, for a store
// whose counts were edited by hand or restored from a partial backup.
func recount(ctx context.Context, args []string, sys *system) error {
	cfg, err := loadConfig("recount", args, sys)
	if err != nil {
		return err
	}
	store, err := server.OpenMaintenanceStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Recount(ctx); err != nil {
		return err
	}
	newLogger(cfg.LogLevel, sys.stderr).Info("counts recomputed from the rows")
	return nil
}
