package main

import (
	"context"

	"github.com/instachat/instachat/server"
)

// migrate is `instachat migrate`: opening the store of the topology
// migrates it, which is all it asks for.
func migrate(ctx context.Context, args []string, sys *system) error {
	cfg, err := loadConfig("migrate", args, sys)
	if err != nil {
		return err
	}
	store, err := server.OpenMaintenanceStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	newLogger(cfg.LogLevel, sys.stderr).Info("schema is up to date")
	return nil
}
