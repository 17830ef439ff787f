package main

// TestTopology runs the production topology as it is deployed, each role in
// processes of its own, with the binary of binary_test.go and the child
// processes, ledger and checks of crash_test.go.

import (
	"encoding/json"
	"fmt"
	"github.com/instachat/instachat/internal/apitest"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/testenv"
)

// The applications of TestTopology and the chats of each, 20 in all.
// Creates are partitioned by application: with ten, both workers have work
// but for a chance of about 2 in 1024.
const topologyApps, topologyChats = 10, 2

// TestTopology starts two processes with INSTACHAT_ROLES=api,dispatcher and
// two with worker, from the binary, on MySQL, Redis and a Kafka (kfake) of
// the test's own. Sixteen clients spread over both fronts create 5,000
// messages in 20 chats; then every answered message must be stored exactly
// once, every chat numbered exactly 1..n, the counts exact within 5 s, and
// search must find the messages. A second load of 3,000 SIGKILLs both
// workers at once halfway, and two new ones start: consumption must resume
// within 20 s of the kill, and then the same must hold.
func TestTopology(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four instachat processes on MySQL, Redis and Kafka and loads them (about 15 s): not run with -short")
	}
	tp := newTopology(t)
	fronts := []*child{tp.start("api,dispatcher", "kafka", "mysql", "redis"), tp.start("api,dispatcher", "kafka", "mysql", "redis")}
	workers := []*child{tp.start("worker", "kafka", "mysql"), tp.start("worker", "kafka", "mysql")}

	ctx := t.Context()
	var ledgers []*ledger
	for a := range topologyApps {
		app, err := fronts[a%2].client.CreateApplication(ctx, fmt.Sprint("topology ", a))
		if err != nil {
			t.Fatal(err)
		}
		l := &ledger{token: app.Token, acked: map[int64]map[int64]string{}, chats: map[string]int64{}}
		for n := int64(1); n <= topologyChats; n++ {
			ch, status, err := apitest.PostChat(ctx, fronts[n%2].client, app.Token, "")
			if err != nil || status != http.StatusAccepted || ch.Number != n {
				t.Fatalf("creating chat %d: %+v %d %v", n, ch, status, err)
			}
			l.acked[n] = map[int64]string{}
		}
		ledgers = append(ledgers, l)
	}

	placed, took := topologyLoad(t, fronts, ledgers, 1, 5000, nil)
	t.Logf("first load: 5000 creates answered in %v, %.0f creates/s", took.Round(time.Millisecond), 5000/took.Seconds())
	settled := settleTopology(t, fronts[0], ledgers, 5*time.Second)
	t.Logf("first load stored and counted %v after its last answer", settled.Round(time.Millisecond))
	searchSample(t, fronts, 1, placed)

	// Halfway through the second load, both workers are killed at once,
	// and two new ones started, as an orchestrator would: what the dead
	// applied without committing comes again to the new ones, with all
	// the rest. Consumption must resume within 20 s of the kill. The dead
	// leave the group at their 10 s session timeout, as the kill lands on
	// a stable group. That the bound holds depends on kfake's behaviour
	// in that case only: a worker killed with a JoinGroup pending is a
	// case kfake handles unlike Kafka (it does not complete the rebalance
	// when it drops the dead member, so the survivors wait out their own
	// JoinGroup, 25 s with Consume's 15 s rebalance timeout, 70 s with
	// kgo's default of 60 s), covered by kafka's
	// TestDeadMemberWithPendingJoin.
	before, err := workersApplied(tp.hc, workers)
	if err != nil {
		t.Fatal(err)
	}
	var killedAt time.Time
	placed, took = topologyLoad(t, fronts, ledgers, 2, 3000, func() {
		now, err := workersApplied(tp.hc, workers)
		if err != nil {
			t.Error(err)
			now = before
		}
		killedAt = time.Now()
		for _, w := range workers {
			if err := w.cmd.Process.Kill(); err != nil {
				t.Error(err)
			}
		}
		t.Logf("SIGKILL to both workers, pids %d and %d, halfway through the second load; creates of it they had applied: %v",
			workers[0].cmd.Process.Pid, workers[1].cmd.Process.Pid, []float64{now[0] - before[0], now[1] - before[1]})
	})
	t.Logf("second load: 3000 creates answered in %v, %.0f creates/s", took.Round(time.Millisecond), 3000/took.Seconds())
	for _, w := range workers {
		select {
		case <-w.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("pid %d still runs 10 s after SIGKILL", w.cmd.Process.Pid)
		}
	}
	workers = []*child{tp.start("worker", "kafka", "mysql"), tp.start("worker", "kafka", "mysql")}
	for {
		applied, err := workersApplied(tp.hc, workers)
		if err != nil {
			t.Fatal(err)
		}
		if applied[0]+applied[1] > 0 {
			t.Logf("consumption resumed %v after the kill", time.Since(killedAt).Round(time.Millisecond))
			break
		}
		if time.Since(killedAt) > 20*time.Second {
			t.Fatalf("no create applied by the new workers %v after both were killed", time.Since(killedAt).Round(time.Millisecond))
		}
		time.Sleep(50 * time.Millisecond)
	}
	settled = settleTopology(t, fronts[1], ledgers, 30*time.Second)
	t.Logf("second load stored and counted %v after its last answer, the new workers having taken over", settled.Round(time.Millisecond))
	searchSample(t, fronts, 2, placed)

	// The others stop cleanly on SIGTERM.
	for _, p := range append(fronts, workers...) {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.exited:
			if p.err != nil {
				t.Errorf("pid %d exited with %v after SIGTERM, want status 0", p.cmd.Process.Pid, p.err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("pid %d still runs 20 s after SIGTERM", p.cmd.Process.Pid)
		}
	}
}

// topology is what the processes of one run of the production topology
// share: a MySQL database and a Redis prefix of the test's own, and a Kafka
// (kfake) of its own, in which the processes create the topics, as in
// production.
type topology struct {
	t                     *testing.T
	env                   []string
	hc                    *http.Client // bounded, for /healthz and /metrics
	redisURL, redisPrefix string
}

func newTopology(t *testing.T) *topology {
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
		"INSTACHAT_ADMIN_TOKEN=" + topologyAdminToken, // /metrics needs it
	}
	return &topology{t: t, env: env, hc: &http.Client{Timeout: 5 * time.Second}, redisURL: redisURL, redisPrefix: prefix}
}

// start starts a process of the binary playing roles and waits until its
// /healthz reports checks ok.
func (tp *topology) start(roles string, checks ...string) *child {
	p := startChild(tp.t, tp.t.TempDir(), append(tp.env[:len(tp.env):len(tp.env)], "INSTACHAT_ROLES="+roles)...)
	tp.t.Logf("pid %d plays %s at %s", p.cmd.Process.Pid, roles, p.url)
	waitHealthy(tp.t, tp.hc, p, checks)
	return p
}

// waitHealthy waits until p's /healthz answers 200 with exactly the checks
// named, each ok.
func waitHealthy(t *testing.T, hc *http.Client, p *child, checks []string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var v struct{ Checks map[string]string }
		res, err := hc.Get(p.url + "/healthz")
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&v)
			res.Body.Close()
			if err == nil && res.StatusCode != http.StatusOK {
				err = fmt.Errorf("%s %v", res.Status, v.Checks)
			}
		}
		if err == nil {
			var names []string
			for name, state := range v.Checks {
				if state == "ok" {
					names = append(names, name)
				}
			}
			if slices.Sort(names); !slices.Equal(names, checks) {
				t.Fatalf("pid %d: /healthz checks %v, want %v ok", p.cmd.Process.Pid, v.Checks, checks)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: /healthz: %v", p.cmd.Process.Pid, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// placement is where a create of a load was answered to be.
type placement struct {
	l *ledger
	m *instachat.Message
}

// topologyLoad has 16 clients, spread over the fronts, create n messages,
// round robin over the chats of the ledgers, and records what they were
// answered; every create must be answered 2xx. Create k's body carries the
// word u<round>n<k>w, found by no other create's. midway, if set, runs once
// half of the creates are under way. It returns where each create went and
// how long the load took.
func topologyLoad(t *testing.T, fronts []*child, ledgers []*ledger, round, n int, midway func()) ([]placement, time.Duration) {
	t.Helper()
	placed := make([]placement, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 16 {
		c := fronts[w%len(fronts)].client
		wg.Go(func() {
			for k := int(next.Add(1)) - 1; k < n; k = int(next.Add(1)) - 1 {
				if k == n/2 && midway != nil {
					midway()
				}
				l := ledgers[k%len(ledgers)]
				chat := int64(k/len(ledgers)%topologyChats + 1)
				body := fmt.Sprintf("load %d message %d from client %d: u%dn%05dw", round, k, w, round, k)
				m, _, err := c.CreateMessage(t.Context(), l.token, chat, body, "")
				if err != nil {
					t.Errorf("create %d of load %d: %v", k, round, err)
					return
				}
				placed[k] = placement{l, m}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	for _, p := range placed {
		p.l.sent([]sentCreate{{p.m.Chat, p.m.Body}})
		p.l.ack(t, p.m)
	}
	return placed, took
}

// settleTopology waits, at most within, until every application and chat
// counts exactly what its ledger was answered, then checks every chat's
// rows against the ledger: each answered message stored once, with its
// number and body, and nothing else. It returns how long the counts took.
func settleTopology(t *testing.T, front *child, ledgers []*ledger, within time.Duration) time.Duration {
	t.Helper()
	ctx, c := t.Context(), front.client
	start := time.Now()
	for exact := false; !exact; {
		err := func() error {
			for _, l := range ledgers {
				app, err := c.FindApplication(ctx, l.token)
				if err != nil {
					return err
				}
				if app.ChatsCount != topologyChats {
					return fmt.Errorf("chats_count %d, want %d", app.ChatsCount, topologyChats)
				}
				for n, acked := range l.acked {
					ch, err := c.FindChat(ctx, l.token, n)
					if err != nil {
						return err
					}
					if ch.MessagesCount != int64(len(acked)) {
						return fmt.Errorf("chat %d: messages_count %d, %d answered", n, ch.MessagesCount, len(acked))
					}
				}
			}
			return nil
		}()
		if exact = err == nil; !exact {
			if time.Since(start) > within {
				t.Fatalf("counts not exact %v after the load: %v", within, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	took := time.Since(start)
	for _, l := range ledgers {
		for n := range l.acked {
			rows, err := c.AllMessages(ctx, l.token, n)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.check(n, int64(len(l.acked[n])), rows); err != nil {
				t.Errorf("chat %d of %s…: %v", n, l.token[:6], err)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return took
}

// searchSample looks up a sample of a load's messages, through both fronts,
// by a substring of their unique word.
func searchSample(t *testing.T, fronts []*child, round int, placed []placement) {
	t.Helper()
	for i := range 20 {
		k := i * len(placed) / 20
		p := placed[k]
		q := fmt.Sprintf("%dn%05d", round, k)
		found, err := fronts[i%len(fronts)].client.SearchMessages(t.Context(),
			instachat.SearchQuery{Token: p.l.token, Chat: p.m.Chat, Terms: []string{q}, Limit: 10})
		if err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		if len(found) != 1 || found[0].Number != p.m.Number || found[0].Body != p.m.Body {
			t.Errorf("search %q in chat %d: %d results, want message %d alone", q, p.m.Chat, len(found), p.m.Number)
		}
	}
}

const topologyAdminToken = "topology-admin-token-0123456789"

var appliedLine = regexp.MustCompile(`(?m)^instachat_worker_creates_applied_total (\S+)$`)

// workersApplied reads instachat_worker_creates_applied_total from each
// worker.
func workersApplied(hc *http.Client, workers []*child) ([]float64, error) {
	var got []float64
	for _, w := range workers {
		req, err := http.NewRequest("GET", w.url+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+topologyAdminToken)
		res, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		text, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			return nil, err
		}
		m := appliedLine.FindSubmatch(text)
		if m == nil {
			return nil, fmt.Errorf("pid %d: /metrics has no instachat_worker_creates_applied_total", w.cmd.Process.Pid)
		}
		n, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			return nil, err
		}
		got = append(got, n)
	}
	return got, nil
}
