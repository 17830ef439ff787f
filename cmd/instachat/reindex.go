package main

import (
	"context"
	"fmt"

	"github.com/instachat/instachat/elasticsearch"
	"github.com/instachat/instachat/server"
	"github.com/instachat/instachat/worker"
)

// reindex is `instachat reindex`: rebuild the search index of the topology
// from the store, while the deployment serves or again after a failure
// (worker.Reindex). Only Elasticsearch has an index apart from the store:
// the embedded store indexes each message in the transaction that writes
// it, and without Elasticsearch search scans MySQL, so there is nothing to
// rebuild.
func reindex(ctx context.Context, args []string, sys *system) error {
	cfg, err := loadConfig("reindex", args, sys)
	if err != nil {
		return err
	}
	logger := newLogger(cfg.LogLevel, sys.stderr)
	switch production, _ := cfg.Production(); {
	case !production:
		logger.Info("nothing to rebuild: the embedded store indexes every message in the transaction that stores it")
		return nil
	case cfg.ElasticsearchURL == "":
		logger.Info("nothing to rebuild: without INSTACHAT_ELASTICSEARCH_URL search scans MySQL")
		return nil
	}
	es, err := elasticsearch.Open(ctx, elasticsearch.Config{URL: cfg.ElasticsearchURL, Index: cfg.ElasticsearchIndex, Logger: logger})
	if err != nil {
		return fmt.Errorf("elasticsearch: %w", err)
	}
	store, err := server.OpenMaintenanceStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	return worker.Reindex(ctx, store, es, logger)
}
