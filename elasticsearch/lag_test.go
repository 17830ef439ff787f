package elasticsearch_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/kafka"
	"github.com/instachat/instachat/worker"
)

// TestReclaimWaitsForTheLaggingIndexConsumer: creates of a chat queued
// before its deletion, which the indexing consumer group (worker.Index)
// has not read yet, are indexed before the reclaim's delete by query, not
// after it, where they would stay: while the group lags (here: not
// consuming at all), the reclaim's wait for it (kafka.Queue.WaitConsumed
// of the index group, as production wires it) times out, nothing is
// deleted and the deletion stays recorded; once the group consumed the
// topic, the refresh and the delete by query follow every bulk request.
// Kafka is kfake; Elasticsearch is the recorded answers.
func TestReclaimWaitsForTheLaggingIndexConsumer(t *testing.T) {
	x, c := open(t, map[string]string{"POST /instachat-messages/_bulk": "bulk_conflict.http",
		refreshRoute: "refresh.http", deleteByQueryRoute: "delete_by_query.http"})
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	iq, err := kafka.Open(t.Context(), kafka.Config{Brokers: cluster.ListenAddrs(), Group: "instachat-workers.index", Partitions: 3, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer iq.Close()

	// The store holds the chat's messages (the workers' group applied
	// them); their creates are still queued for the index group.
	store := storeWithMessages(t)
	var creates []instachat.Create
	for _, m := range messages() {
		creates = append(creates, instachat.Create{Message: m})
	}
	if err := instachat.Publish(t.Context(), iq, creates...); err != nil {
		t.Fatal(err)
	}
	if _, err := store.DeleteChat(t.Context(), token, 1, messages()[0].CreatedAt.Add(1)); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ran := make(chan error, 2)
	r := &worker.Reclaimer{Store: store, Engine: x, Indexed: iq.WaitConsumed, IndexedTimeout: 100 * time.Millisecond,
		Poll: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	go func() { ran <- r.Run(ctx) }()
	time.Sleep(500 * time.Millisecond) // a few timed-out waits
	if reqs := c.take(); len(reqs) != 0 {
		t.Fatalf("while the index group lagged, the reclaim sent %q; want nothing", routes(reqs))
	}
	probe := errors.New("probe")
	if n, err := store.Reclaim(t.Context(), 1, func(context.Context, instachat.Scope) error { return probe }); !errors.Is(err, probe) {
		t.Fatalf("while the index group lagged: Reclaim = %d, %v; want the deletion still recorded", n, err)
	}

	go func() { ran <- iq.Consume(ctx, worker.Index(x)) }()
	waitReclaimed(t, store, probe)
	cancel()
	for range 2 {
		if err := <-ran; err != nil {
			t.Error(err)
		}
	}
	// Every bulk request came before the refresh, and together they
	// indexed the three messages queued before the deletion.
	var bulks, indexed int
	var order []string
	for _, req := range c.take() {
		switch req.Route {
		case "POST /instachat-messages/_bulk":
			bulks++
			indexed += strings.Count(string(req.Body), `"index":`)
			if len(order) == 0 || order[len(order)-1] != "bulk" {
				order = append(order, "bulk")
			}
		default:
			order = append(order, req.Route)
		}
	}
	if want := []string{"bulk", refreshRoute, deleteByQueryRoute}; !slices.Equal(order, want) {
		t.Errorf("requests in the order %q, want %q", order, want)
	}
	if indexed != 3 {
		t.Errorf("%d bulk requests indexed %d messages, want the 3 queued", bulks, indexed)
	}
}
