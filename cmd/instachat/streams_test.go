package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/instachat/instachat/internal/streamtest"
	"github.com/instachat/instachat/internal/testenv"
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
	dsn := testenv.MySQLDatabase(t)
	redisURL, prefix := testenv.RedisPrefix(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	id := rand.Uint64()
	env := []string{
		"INSTACHAT_MYSQL_DSN=" + dsn,
		"INSTACHAT_REDIS_URL=" + redisURL,
		"INSTACHAT_REDIS_PREFIX=" + prefix,
		"INSTACHAT_KAFKA_BROKERS=" + strings.Join(kc.ListenAddrs(), ","),
		fmt.Sprintf("INSTACHAT_KAFKA_TOPIC=instachat-test-%016x", id),
		fmt.Sprintf("INSTACHAT_KAFKA_GROUP=instachat-test-workers-%016x", id),
		"INSTACHAT_KAFKA_PARTITIONS=8",
		"INSTACHAT_ADMIN_TOKEN=" + topologyAdminToken,
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	start := func(roles string, checks ...string) *child {
		p := startChild(t, t.TempDir(), append(env[:len(env):len(env)], "INSTACHAT_ROLES="+roles)...)
		waitHealthy(t, hc, p, checks)
		return p
	}
	fronts := []*child{start("api,dispatcher", "kafka", "mysql", "redis"), start("api,dispatcher", "kafka", "mysql", "redis")}
	workers := []*child{start("worker", "kafka", "mysql"), start("worker", "kafka", "mysql")}
	var fs []streamtest.Front
	for _, f := range fronts {
		fs = append(fs, streamtest.Front{URL: f.url, Client: f.client})
	}
	streamtest.Converge(t, fs, func() {
		if err := workers[0].cmd.Process.Kill(); err != nil {
			t.Error(err)
		}
		t.Logf("SIGKILL to worker pid %d halfway through the writes", workers[0].cmd.Process.Pid)
		streamtest.KillFeedConnections(t, redisURL, redis.ConnectionName(prefix))
	})
}
