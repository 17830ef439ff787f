package server_test

import (
	"context"
	"fmt"
	"github.com/instachat/instachat/internal/apitest"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/instachat/instachat/internal/testenv"
	"github.com/instachat/instachat/server"
)

// The production topology in one process: servers on MySQL, Redis and a
// kfake cluster, each of the test's own.

// productionConfig returns the configuration of a production process with a
// fresh MySQL database, a Redis key prefix and a Kafka cluster of the test's
// own, all of it removed when the test ends. opts set the cluster up further.
func productionConfig(t *testing.T, opts ...kfake.Opt) server.Config {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.MySQLDSN = testenv.MySQLDatabase(t)
	cfg.RedisURL, cfg.RedisPrefix = testenv.RedisPrefix(t)
	kc, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...) // kafka.Open creates the topics, as in production
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	id := rand.Uint64()
	cfg.KafkaBrokers = kc.ListenAddrs()
	cfg.KafkaTopic = fmt.Sprintf("instachat-test-%016x", id)
	cfg.KafkaGroup = fmt.Sprintf("instachat-test-workers-%016x", id)
	cfg.KafkaPartitions = 4
	cfg.AdminToken = testAdminToken // production generates none
	return cfg
}

// startProduction opens a production process on cfg, playing the roles of
// cfg.Roles (by default all). Its warnings go to the test's output and to
// logs.
func startProduction(t *testing.T, cfg server.Config, logs ...io.Writer) *running {
	t.Helper()
	out := io.MultiWriter(append([]io.Writer{t.Output()}, logs...)...)
	s := server.New(cfg, slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	return serve(t, s, "", http.StatusAccepted)
}

func TestProductionEveryRoute(t *testing.T) {
	everyRoute(t, startProduction(t, productionConfig(t)))
}

// TestProductionOnRedisCluster runs every route with numbering, rate limits
// and feeds on a three-master Redis Cluster (.ci/redis-cluster), in the URL
// form README gives for one.
func TestProductionOnRedisCluster(t *testing.T) {
	cfg := productionConfig(t)
	cfg.RedisURL, cfg.RedisPrefix = testenv.RedisClusterPrefix(t)
	everyRoute(t, startProduction(t, cfg))
}

func TestProductionSearchFallsBackToMySQL(t *testing.T) {
	searchThroughTheAPI(t, startProduction(t, productionConfig(t)))
}

func TestProductionConcurrentCreatesAreNumberedOneToN(t *testing.T) {
	concurrentCreates(t, startProduction(t, productionConfig(t)))
}

// TestProductionRefusesAHalfConfiguredTopology checks that Open, not only
// LoadConfig (see config_test.go), refuses a Config built in code with part
// of the production topology, naming what is missing, before it connects
// to anything.
func TestProductionRefusesAHalfConfiguredTopology(t *testing.T) {
	for _, c := range []struct {
		set     func(*server.Config)
		missing []string
	}{
		{func(c *server.Config) { c.KafkaBrokers = []string{"127.0.0.1:1"} }, []string{"INSTACHAT_MYSQL_DSN", "INSTACHAT_REDIS_URL"}},
		{func(c *server.Config) { c.MySQLDSN, c.RedisURL = "root@tcp(127.0.0.1:1)/x", "redis://127.0.0.1:1/0" }, []string{"INSTACHAT_KAFKA_BROKERS"}},
	} {
		cfg := server.DefaultConfig()
		cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
		c.set(&cfg)
		s := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		err := s.Open(t.Context())
		if err == nil {
			s.Close(context.Background())
			t.Fatalf("Open of %v succeeded", c.missing)
		}
		for _, name := range c.missing {
			if !strings.Contains(err.Error(), name) || strings.Contains(err.Error(), "127.0.0.1:1") {
				t.Errorf("Open: %q, want it to name %v and no address", err, c.missing)
			}
		}
	}
}

func TestProductionHealthAndMetrics(t *testing.T) {
	r := startProduction(t, productionConfig(t))
	ctx := context.Background()
	st, v := r.do(t, "GET", "/healthz", "", "")
	checks, _ := v["checks"].(map[string]any)
	if st != http.StatusOK || v["status"] != "ok" || len(checks) != 3 ||
		checks["mysql"] != "ok" || checks["redis"] != "ok" || checks["kafka"] != "ok" {
		t.Fatalf("healthz: %d %v, want 200 with mysql, redis and kafka ok", st, v)
	}

	app := r.appWithChat(t, "metered", "")
	for range 3 {
		if _, _, err := r.client.CreateMessage(ctx, app.Token, 1, "counted", ""); err != nil {
			t.Fatal(err)
		}
	}
	r.readable(t, "/api/v1/applications/"+app.Token+"/chats/1/messages/3")

	// The worker counts a batch just after committing it: wait for it.
	var text string
	testenv.Eventually(t, 5*time.Second, func() (err error) {
		if text, err = scrape(r); err != nil {
			return err
		}
		for _, want := range []string{
			`instachat_creates_accepted_total{kind="chat"} 1`,
			`instachat_creates_accepted_total{kind="message"} 3`,
			`instachat_http_request_duration_seconds_count{route="POST /api/v1/applications/{token}/chats/{chat}/messages",status="202"} 3`,
			`instachat_http_request_duration_seconds_count{route="GET /healthz",status="200"} 1`,
			`instachat_worker_creates_applied_total 4`,
		} {
			if !strings.Contains(text, want) {
				return fmt.Errorf("/metrics lacks %s", want)
			}
		}
		return nil
	})
	// Routes are labelled by pattern: literal segments and {parameters}.
	pattern := regexp.MustCompile(`^[A-Z]+ (/([a-z0-9.]+|\{[a-z]+\}))+$`)
	routes := regexp.MustCompile(`route="([^"]*)"`).FindAllStringSubmatch(text, -1)
	for _, m := range routes {
		if !pattern.MatchString(m[1]) {
			t.Errorf("route label %q is not a route pattern", m[1])
		}
	}
	if strings.Contains(text, app.Token) {
		t.Error("/metrics contains an application token")
	}
}

// TestProductionHealthRecreatesALostTopic deletes the topic under a running
// process, as a fresh broker on the same address would lack it: pings still
// answer, and every create would get 503 (UNKNOWN_TOPIC_OR_PARTITION).
// /healthz must not call that ok: it creates the topic again, as at
// startup, and then creates are answered, stored and indexed again.
func TestProductionHealthRecreatesALostTopic(t *testing.T) {
	cfg := productionConfig(t)
	es := replayElasticsearch(t) // the index reads the topic in a group of its own
	cfg.ElasticsearchURL = es.url
	var logs testenv.Buffer
	r := startProduction(t, cfg, &logs)
	ctx := t.Context()
	app := r.appWithChat(t, "topic lost", "")
	admin, err := kgo.NewClient(kgo.SeedBrokers(cfg.KafkaBrokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := kadm.NewClient(admin).DeleteTopics(ctx, cfg.KafkaTopic); err != nil {
		t.Fatal(err)
	}

	st, v := r.do(t, "GET", "/healthz", "", "")
	checks, _ := v["checks"].(map[string]any)
	if st != http.StatusOK || checks["kafka"] != "ok" || !strings.Contains(logs.String(), "created them again") {
		t.Fatalf("healthz with the topic lost: %d %v; log %q; want the topic created again, then ok", st, v, logs.String())
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		m, status, err := apitest.PostMessage(ctx, r.client, app.Token, 1, "after the topic came back")
		if err == nil {
			r.readable(t, fmt.Sprintf("/api/v1/applications/%s/chats/1/messages/%d", app.Token, m.Number))
			testenv.Eventually(t, 10*time.Second, func() error { return es.holds(app.Token, []answers{nil, {m.Number: m.Body}}) })
			break
		}
		if status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("create after /healthz said kafka ok: %d %v", status, err)
		}
	}
}

// TestProductionNumberingSurvivesRedisLoss restarts Redis without its data
// (a proxy cuts every connection while every key is deleted) while no
// worker runs, so that the chats and the first load's messages are queued
// but not stored. Numbering must not resume until a worker has stored them
// (FindApplication, then kafka WaitConsumed, then HighestNumber): the second
// load's numbers continue above the first's, none is answered twice, and
// every chat stores exactly 1..n.
func TestProductionNumberingSurvivesRedisLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the sequencer's 5 s grace for in-flight publishes twice (about 17 s): not run with -short")
	}
	cfg := productionConfig(t)
	direct := cfg.RedisURL
	restart := proxyRedis(t, &cfg)
	frontCfg, workerCfg := cfg, cfg
	frontCfg.Roles, workerCfg.Roles = server.Roles{API: true, Dispatcher: true}, server.Roles{Worker: true}
	front := startProduction(t, frontCfg)
	ctx := context.Background()
	app, err := front.client.CreateApplication(ctx, "forgetful")
	if err != nil {
		t.Fatal(err)
	}
	const chats, clients, each = 2, 8, 10
	for range chats {
		if _, _, err := front.client.CreateChat(ctx, app.Token, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	answered, _, before := createConcurrently(ctx, t, front, app.Token, clients, each, chats, "before the loss: ", nil)
	if t.Failed() {
		t.FailNow()
	}
	// Redis restarts without its data: connections cut, every key gone.
	restart.down()
	testenv.DeleteRedisKeys(t, direct, cfg.RedisPrefix+"*")
	restart.up(t)

	// Longer than the sequencer's grace for publishes in flight (5 s):
	// numbering that read the store without waiting for the queue would
	// have answered by now, from a store without these chats.
	var after []int64
	done := make(chan struct{})
	loadCtx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(done)
		answered, after, _ = createConcurrently(loadCtx, t, front, app.Token, clients, each, chats, "after the loss: ", answered)
	}()
	t.Cleanup(func() { cancel(); <-done }) // the load ends before the test, even if it fails
	select {
	case <-done:
		t.Fatal("creates answered after the loss before a worker stored what the queue holds")
	case <-time.After(6 * time.Second):
	}
	startProduction(t, workerCfg)
	<-done
	if t.Failed() {
		t.FailNow()
	}
	for chat := 1; chat <= chats; chat++ {
		if after[chat] != before[chat]+1 {
			t.Errorf("chat %d: lowest number after the loss %d, want %d", chat, after[chat], before[chat]+1)
		}
	}
	if c, _, err := front.client.CreateChat(ctx, app.Token, "", ""); err != nil || c.Number != chats+1 {
		t.Errorf("first chat after the loss: %+v %v, want number %d", c, err, chats+1)
	}
	settled(t, front, app.Token, answered, 5*time.Second)
}
