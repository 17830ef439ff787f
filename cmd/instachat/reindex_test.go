package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/instachat/instachat"
)

// TestReindexHasNothingToRebuildApartFromElasticsearch runs the subcommand
// on an embedded data directory, whose store indexes itself, and on a
// production topology without Elasticsearch, whose search scans MySQL:
// each says so and succeeds without opening a store. (worker's
// TestReindexFeedsEveryStoredMessage covers the rebuild itself.)
func TestReindexHasNothingToRebuildApartFromElasticsearch(t *testing.T) {
	production := map[string]string{"INSTACHAT_MYSQL_DSN": "root@tcp(127.0.0.1:1)/none",
		"INSTACHAT_REDIS_URL": "redis://127.0.0.1:1/0", "INSTACHAT_KAFKA_BROKERS": "127.0.0.1:1"}
	for _, c := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"embedded", nil, "the embedded store indexes every message"},
		{"production without Elasticsearch", production, "without INSTACHAT_ELASTICSEARCH_URL search scans MySQL"},
	} {
		var stdout, stderr bytes.Buffer
		getenv := func(k string) string { return c.env[k] }
		if err := run(context.Background(), []string{"reindex", "-data-dir", t.TempDir()}, getenv, &stdout, &stderr); err != nil {
			t.Fatalf("%s: instachat reindex: %v\n%s", c.name, err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "nothing to rebuild: ") || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%s: instachat reindex says %q, want that there is nothing to rebuild: %s", c.name, stderr.String(), c.want)
		}
	}
}

// TestReindexWithoutElasticsearchFails: Elasticsearch configured but out of
// reach fails the command as unavailable.
func TestReindexWithoutElasticsearchFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	env := map[string]string{"INSTACHAT_MYSQL_DSN": "root@tcp(127.0.0.1:1)/none", "INSTACHAT_REDIS_URL": "redis://127.0.0.1:1/0",
		"INSTACHAT_KAFKA_BROKERS": "127.0.0.1:1", "INSTACHAT_ELASTICSEARCH_URL": "http://" + closed}
	var stderr bytes.Buffer
	err = run(t.Context(), []string{"reindex"}, func(k string) string { return env[k] }, &stderr, &stderr)
	if instachat.ErrorCode(err) != instachat.EUNAVAILABLE || !strings.Contains(err.Error(), "elasticsearch") {
		t.Errorf("instachat reindex with Elasticsearch down: %v, want it unavailable", err)
	}
}
