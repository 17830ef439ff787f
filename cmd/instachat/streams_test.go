package main

import (
	"testing"

	"github.com/instachat/instachat/internal/streamtest"
	"github.com/instachat/instachat/redis"
)

// TestTopologyStreams runs the streams' end-to-end scenario on the
// production topology as deployed: two api,dispatcher processes and two
// workers from the binary. Halfway through the writes one worker is
// SIGKILLed (a batch it committed may never be published; the survivor
// takes its partitions and finds that batch stored) and the fronts' Redis
// pub/sub connections are killed: every subscriber still ends with exactly
// the listed messages, no revision twice, none skipped after synced.
func TestTopologyStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four instachat processes on MySQL, Redis and Kafka: not run with -short")
	}
	tp := newTopology(t)
	fronts := []*child{tp.start("api,dispatcher", "kafka", "mysql", "redis"), tp.start("api,dispatcher", "kafka", "mysql", "redis")}
	workers := []*child{tp.start("worker", "kafka", "mysql"), tp.start("worker", "kafka", "mysql")}
	var fs []streamtest.Front
	for _, f := range fronts {
		fs = append(fs, streamtest.Front{URL: f.url, Client: f.client})
	}
	streamtest.Converge(t, fs, func() {
		if err := workers[0].cmd.Process.Kill(); err != nil {
			t.Error(err)
		}
		t.Logf("SIGKILL to worker pid %d halfway through the writes", workers[0].cmd.Process.Pid)
		streamtest.KillFeedConnections(t, tp.redisURL, redis.ConnectionName(tp.redisPrefix))
	})
}
