package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/redis/rueidis"
)

// MySQLDatabase creates a database of the test's own on the server that
// INSTACHAT_TEST_MYSQL_DSN names, drops it when the test ends, and returns
// its DSN.
func MySQLDatabase(t testing.TB) string {
	t.Helper()
	cfg, err := mysqldrv.ParseDSN(Lookup(t, "INSTACHAT_TEST_MYSQL_DSN"))
	if err != nil {
		t.Fatalf("INSTACHAT_TEST_MYSQL_DSN: %v", err)
	}
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.DBName = fmt.Sprintf("instachat_test_%016x", rand.Uint64())
	if _, err := admin.ExecContext(context.Background(), "CREATE DATABASE "+cfg.DBName); err != nil {
		t.Fatalf("create a test database: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + cfg.DBName); err != nil {
			t.Errorf("drop the test database: %v", err)
		}
		admin.Close()
	})
	return cfg.FormatDSN()
}

// RedisPrefix returns the URL INSTACHAT_TEST_REDIS_URL names and a key
// prefix of the test's own, whose keys are deleted when the test ends.
func RedisPrefix(t testing.TB) (url, prefix string) {
	t.Helper()
	return redisPrefix(t, "INSTACHAT_TEST_REDIS_URL")
}

// RedisClusterPrefix is RedisPrefix on the Redis Cluster that
// INSTACHAT_TEST_REDIS_CLUSTER_URL names, in the form INSTACHAT_REDIS_URL
// takes for a cluster: redis://host:port?addr=host:port&addr=host:port.
// .ci/redis-cluster starts one on 127.0.0.1:7001-7003.
func RedisClusterPrefix(t testing.TB) (url, prefix string) {
	t.Helper()
	return redisPrefix(t, "INSTACHAT_TEST_REDIS_CLUSTER_URL")
}

func redisPrefix(t testing.TB, name string) (url, prefix string) {
	t.Helper()
	url = Lookup(t, name)
	prefix = fmt.Sprintf("instachat-test:%016x:", rand.Uint64())
	t.Cleanup(func() { DeleteRedisKeys(t, url, prefix+"*") })
	return url, prefix
}

// DeleteRedisKeys deletes every key matching the SCAN pattern match, as a
// flush, an eviction or a Redis restart without its data would. On a
// Redis Cluster it scans every node, and deletes key by key, as the keys
// of one node may lie in different slots.
func DeleteRedisKeys(t testing.TB, url, match string) {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background() // also called once the test's context ended
	for _, node := range c.Nodes() {
		for cursor := uint64(0); ; {
			e, err := node.Do(ctx, node.B().Scan().Cursor(cursor).Match(match).Count(1000).Build()).AsScanEntry()
			if err != nil {
				t.Fatal(err)
			}
			dels := make(rueidis.Commands, 0, len(e.Elements))
			for _, key := range e.Elements {
				dels = append(dels, c.B().Del().Key(key).Build())
			}
			for _, r := range c.DoMulti(ctx, dels...) {
				if err := r.Error(); err != nil {
					t.Fatal(err)
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
}
