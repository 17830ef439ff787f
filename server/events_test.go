package server_test

import (
	"testing"

	"github.com/instachat/instachat/internal/streamtest"
	"github.com/instachat/instachat/redis"
	"github.com/instachat/instachat/server"
)

// The change feeds end to end: writers create and edit messages in several
// chats through the API while SSE and WebSocket subscribers receive them,
// drop their connection at random moments and resume from the last
// revision they received.

func TestStreamsConverge(t *testing.T) {
	r := start(t, t.TempDir())
	streamtest.Converge(t, []streamtest.Front{{URL: r.URL(), Client: r.client}}, nil)
}

// TestProductionStreamsConverge is the scenario on the production topology
// in one process: two api,dispatcher fronts and two workers on one MySQL,
// Redis and Kafka. Creates are published to Redis by the workers, edits by
// the fronts, and halfway through every pub/sub connection of the test's
// brokers is killed (CLIENT KILL, as TYPE pubsub would, but sparing other
// tests on the same Redis): the streams they fed end, their clients resume,
// and all still converge.
func TestProductionStreamsConverge(t *testing.T) {
	cfg := productionConfig(t)
	var fronts []streamtest.Front
	for _, roles := range []server.Roles{{API: true, Dispatcher: true}, {API: true, Dispatcher: true}, {Worker: true}, {Worker: true}} {
		c := cfg
		c.Roles = roles
		r := startProduction(t, c)
		if roles.API {
			fronts = append(fronts, streamtest.Front{URL: r.URL(), Client: r.client})
		}
	}
	streamtest.Converge(t, fronts, func() { streamtest.KillFeedConnections(t, cfg.RedisURL, redis.ConnectionName(cfg.RedisPrefix)) })
}
