package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestReindexHasNothingToRebuildInTheEmbeddedDefault runs the subcommand on
// an embedded data directory, whose store indexes itself: it says so and
// succeeds. (server's TestReindexRebuildsTheSearchIndexFromTheStore covers
// the production topology.)
func TestReindexHasNothingToRebuildInTheEmbeddedDefault(t *testing.T) {
	var stdout, stderr bytes.Buffer
	getenv := func(string) string { return "" }
	if err := run(context.Background(), []string{"reindex", "-data-dir", t.TempDir()}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("instachat reindex: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "nothing to rebuild") {
		t.Errorf("instachat reindex says %q, want that there is nothing to rebuild", stderr.String())
	}
}
