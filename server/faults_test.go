package server_test

// Faults of the production topology: MySQL, Kafka or Elasticsearch out of
// reach for a while, then back. Each dependency sits behind a switchable
// listener that refuses new connections and cuts open ones while it is
// down, as a crashed or partitioned server would, and listens again on the
// same address when it comes back. Redis losing its data under clients
// that give up after 5 s is TestProductionRedisLossImpatientClients (with no
// worker running, TestProductionNumberingSurvivesRedisLoss); workers
// SIGKILLed mid-batch are cmd/instachat's TestTopology.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/instachat/instachat/internal/apitest"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/instachat/instachat"
	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/internal/testenv"
	"github.com/instachat/instachat/server"
)

// TestProductionMySQLOutage cuts MySQL off for 10 s. Creates keep being
// answered 202 (numbering is Redis, the queue Kafka), the worker retries
// its batch with backoff while the consumer lag grows, and what needs MySQL
// answers 503 with the JSON error at once. When MySQL is back the worker
// drains: every create answered is stored once, numbered 1..n, counted
// exactly, and nothing ever answered 500.
func TestProductionMySQLOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps MySQL unreachable for 10 s: not run with -short")
	}
	t.Parallel()
	const outage = 10 * time.Second
	cfg := productionConfig(t)
	db := proxyMySQL(t, &cfg)
	var logs testenv.Buffer
	r := startProduction(t, cfg, &logs)
	ctx := t.Context()
	app, answered := loadedChats(t, r, "mysql outage")
	waitLag(t, r, 0)

	db.down()
	cut := time.Now()
	chat := "/api/v1/applications/" + app + "/chats/1"
	unavailable(t, r, 2*time.Second, []request{
		{"GET", "/api/v1/applications/" + app, ""},
		{"GET", chat, ""},
		{"GET", chat + "/messages", ""},
		{"GET", chat + "/messages/1", ""},
		{"GET", chat + "/messages/search?q=says", ""},
		{"PATCH", chat + "/messages/1", `{"body":"edited"}`},
		{"POST", "/api/v1/applications", `{"name":"new"}`},
		{"GET", "/healthz", ""},
	})
	if c, status, err := apitest.PostChat(ctx, r.client, app, ""); err != nil || status != http.StatusAccepted || c.Number != faultChats+1 {
		t.Errorf("create a chat without MySQL: %+v %d %v, want 202 and number %d", c, status, err, faultChats+1)
	}
	var during int
	for round := 0; time.Since(cut) < outage; round++ {
		answered, _, _ = createWithin(t, r, app, fmt.Sprintf("without MySQL, round %d: ", round), answered)
		during += faultLoad
		// Nothing published during the outage can be committed.
		if lag := sample(t, r, "instachat_queue_consumer_lag"); lag < float64(during) {
			t.Fatalf("consumer lag %v after %d creates the worker cannot store", lag, during)
		}
		time.Sleep(300 * time.Millisecond)
	}
	attempts := strings.Count(logs.String(), "kafka: handling a batch failed; trying again")
	t.Logf("%d creates answered 202 in %v without MySQL; the worker tried its batch %d times", during, time.Since(cut).Round(time.Millisecond), attempts)
	// Backoff from 50 ms doubling to 5 s makes about 8 attempts in 10 s;
	// without it the worker would spin through thousands.
	if attempts < 3 || attempts > 20 {
		t.Errorf("the worker tried its batch %d times in %v, want a few retries with backoff", attempts, outage)
	}

	db.up(t)
	back := time.Now()
	settled(t, r, app, answered, 15*time.Second)
	t.Logf("drained %v after MySQL came back", time.Since(back).Round(time.Millisecond))
	waitLag(t, r, 0)
	if a, err := r.client.FindApplication(ctx, app); err != nil || a.ChatsCount != faultChats+1 {
		t.Errorf("application after the outage: %+v %v, want chats_count %d", a, err, faultChats+1)
	}
	noInternalErrors(t, r)
}

// TestProductionKafkaOutage cuts the broker off for 7 s. Creates answer 503
// with the JSON error within the publish timeout and reads go on. Once the
// broker is back and the worker drained, every create answered is stored
// once, counts are exact, and numbering continues above every number
// taken, refused creates' included. A refused create is never half
// written, but it may be stored whole: the idempotent producer never gives
// up a batch it wrote to a connection that then died (it cannot know
// whether the broker took it), and delivers it when the broker is back —
// the ambiguity of instachat.Publish. The test counts those.
func TestProductionKafkaOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps Kafka unreachable for 7 s: not run with -short")
	}
	t.Parallel()
	const outage = 7 * time.Second // past the 5 s publish and delivery timeouts
	var broker *switchable
	cfg := productionConfig(t, kfake.ListenFn(func(_, address string) (net.Listener, error) {
		var err error
		broker, err = listenSwitchable(address)
		return broker, err
	}))
	r := startProduction(t, cfg)
	ctx := t.Context()
	app, answered := loadedChats(t, r, "kafka outage")
	_, highest := lowestHighest(answered)
	waitLag(t, r, 0)

	broker.down()
	cut := time.Now()
	refused := map[string]bool{}
	var creates []request
	for i := range 8 {
		body := fmt.Sprintf("refused %d", i)
		refused[body] = true
		creates = append(creates, request{"POST", fmt.Sprintf("/api/v1/applications/%s/chats/%d/messages", app, i%faultChats+1), `{"body":"` + body + `"}`})
	}
	creates = append(creates, request{"POST", "/api/v1/applications/" + app + "/chats", ""}, request{"GET", "/healthz", ""})
	// The publish timeout is 5 s; a create must not wait much longer.
	unavailable(t, r, 6*time.Second, creates)
	if st, v := r.do(t, "GET", "/api/v1/applications/"+app+"/chats/1/messages/1", "", ""); st != http.StatusOK {
		t.Errorf("a read without Kafka: %d %v, want 200", st, v)
	}
	time.Sleep(time.Until(cut.Add(outage)))

	broker.up(t)
	back := time.Now()
	// The producer retries a broker with backoff growing to 5 s, as long
	// as the publish timeout: the first creates after the outage may still
	// be refused.
	for i := 0; ; i++ {
		body := fmt.Sprintf("probe %d", i)
		m, status, err := apitest.PostMessage(ctx, r.client, app, 1, body)
		if err == nil {
			if err := answered[1].add(m.Number, body); err != nil {
				t.Fatal(err)
			}
			break
		}
		if status != http.StatusServiceUnavailable || time.Since(back) > 15*time.Second {
			t.Fatalf("create %v after the broker came back: %d %v", time.Since(back).Round(time.Millisecond), status, err)
		}
		refused[body] = true
	}
	t.Logf("creates answered again %v after the broker came back", time.Since(back).Round(time.Millisecond))
	answered, lowest, _ := createWithin(t, r, app, "after the broker came back: ", answered)
	for c := 1; c <= faultChats; c++ {
		if lowest[c] <= highest[c] {
			t.Errorf("chat %d: number %d answered again after the outage, at or below %d", c, lowest[c], highest[c])
		}
	}
	if c, status, err := apitest.PostChat(ctx, r.client, app, ""); err != nil || status != http.StatusAccepted || c.Number <= faultChats+1 {
		t.Errorf("create a chat after the outage: %+v %d %v, want 202 above %d, the refused chat's", c, status, err, faultChats+1)
	}
	// Everything the topic holds is applied: a refused create that reached
	// it is stored by now.
	waitLag(t, r, 0)
	landed := 0
	for c := int64(1); c <= faultChats; c++ {
		rows, err := r.client.AllMessages(ctx, app, c)
		if err != nil {
			t.Fatal(err)
		}
		var acked []*instachat.Message
		numbers := map[int64]bool{}
		for _, m := range rows {
			if numbers[m.Number] {
				t.Errorf("chat %d: number %d stored twice", c, m.Number)
			}
			numbers[m.Number] = true
			if !refused[m.Body] {
				acked = append(acked, m)
				continue
			}
			// Stored whole, with the number it took: no other create's.
			if _, ok := answered[c][m.Number]; ok || m.Number <= highest[c] {
				t.Errorf("chat %d: refused create %q stored as number %d, answered or taken before the outage", c, m.Body, m.Number)
			}
			landed++
		}
		if err := answered[c].storedOnce(acked); err != nil {
			t.Errorf("chat %d: %v", c, err)
		}
		if ch, err := r.client.FindChat(ctx, app, c); err != nil || ch.MessagesCount != int64(len(rows)) {
			t.Errorf("chat %d: %+v %v, want messages_count %d, its rows", c, ch, err, len(rows))
		}
	}
	stored, err := r.client.ListChats(ctx, app, 0, 100)
	if a, err2 := r.client.FindApplication(ctx, app); err != nil || err2 != nil || a.ChatsCount != int64(len(stored)) {
		t.Errorf("application: %+v %v %v, want chats_count %d, its rows", a, err, err2, len(stored))
	}
	t.Logf("refused message creates stored once the broker came back: %d of %d; refused chat: %d of 1", landed, len(refused), len(stored)-faultChats-1)
	noInternalErrors(t, r)
}

// TestProductionElasticsearchOutage cuts Elasticsearch off. Search answers
// 503 with the JSON error; creates are still stored (an index consumer
// group of its own holds the index up, not the store) and edits accepted;
// when Elasticsearch is back, every message created meanwhile reaches it.
func TestProductionElasticsearchOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("keeps Elasticsearch unreachable for 3 s: not run with -short")
	}
	t.Parallel()
	es := replayElasticsearch(t)
	cfg := productionConfig(t)
	cfg.ElasticsearchURL = es.url
	r := startProduction(t, cfg)
	app, answered := loadedChats(t, r, "search outage")
	// The index and the store are fed by consumer groups of their own: the
	// index may hold every message before the worker stored the chat, and
	// a search of a chat not yet stored answers 404. Wait for both.
	testenv.Eventually(t, 20*time.Second, func() error { return es.holds(app, answered) })
	settled(t, r, app, answered, 15*time.Second)
	search := "/api/v1/applications/" + app + "/chats/1/messages/search?q=says"
	if st, v := r.do(t, "GET", search, "", ""); st != http.StatusOK {
		t.Fatalf("search: %d %v, want 200", st, v)
	}

	es.net.down()
	cut := time.Now()
	unavailable(t, r, 2*time.Second, []request{{"GET", search, ""}, {"GET", "/healthz", ""}})
	answered, _, _ = createWithin(t, r, app, "without search: ", answered)
	// Stored and counted while the index cannot take them.
	settled(t, r, app, answered, 15*time.Second)
	if st, v := r.do(t, "PATCH", "/api/v1/applications/"+app+"/chats/1/messages/1", jsonType, `{"body":"edited without search"}`); st != http.StatusOK {
		t.Errorf("an edit without search: %d %v, want 200", st, v)
	}
	answered[1][1] = "edited without search"
	if err := es.holds(app, answered); err == nil {
		t.Fatal("the index holds what was created while it was unreachable")
	}
	t.Logf("creates stored and counted %v into the outage", time.Since(cut).Round(time.Millisecond))
	time.Sleep(time.Until(cut.Add(3 * time.Second)))

	es.net.up(t)
	back := time.Now()
	// The edit, indexed by the API alone, stays stale until a reindex.
	answered[1][1] = ""
	// The index consumer retries with a backoff that reaches seconds during
	// the outage; the bound is for a loaded machine.
	testenv.Eventually(t, 20*time.Second, func() error { return es.holds(app, answered) })
	t.Logf("the index caught up %v after Elasticsearch came back", time.Since(back).Round(time.Millisecond))
	if st, v := r.do(t, "GET", search, "", ""); st != http.StatusOK {
		t.Errorf("search after the outage: %d %v, want 200", st, v)
	}
	noInternalErrors(t, r)
}

// TestProductionRedisLossImpatientClients loses Redis's data while the
// workers keep up, then has clients that give up after 5 s, as `curl -m 5`
// does, retry creates. Rebuilding a message's numbering waits the 5 s grace
// twice, for the application's key and then the chat's, so no one request
// of a 5 s client outlives it: the rebuild must outlive the requests, and
// creates succeed again within 15 s of the loss. Numbering continues above
// every number answered before, and nothing is stored twice.
func TestProductionRedisLossImpatientClients(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the sequencer's 5 s grace twice: not run with -short")
	}
	t.Parallel()
	const timeout, within = 5 * time.Second, 15 * time.Second
	cfg := productionConfig(t)
	direct := cfg.RedisURL
	restart := proxyRedis(t, &cfg)
	r := startProduction(t, cfg)
	ctx := t.Context()
	app, answered := loadedChats(t, r, "redis loss")
	_, highest := lowestHighest(answered)
	waitLag(t, r, 0)

	// FLUSHDB, as far as this test's keys go (the Redis is shared): every
	// connection cut, every key gone.
	restart.down()
	testenv.DeleteRedisKeys(t, direct, cfg.RedisPrefix+"*")
	restart.up(t)
	lost := time.Now()

	impatient := instachathttp.NewClient(r.URL(), &http.Client{Timeout: timeout})
	var mu sync.Mutex
	tried := map[string]bool{} // bodies of creates that timed out
	var wg sync.WaitGroup
	for c := range 2 * faultChats {
		chat := int64(c%faultChats + 1)
		wg.Go(func() {
			for i := 0; ; i++ {
				body := fmt.Sprintf("impatient %d try %d", c, i)
				m, status, err := apitest.PostMessage(ctx, impatient, app, chat, body)
				mu.Lock()
				if err == nil {
					err = answered[chat].add(m.Number, body)
					if m.Number <= highest[chat] {
						t.Errorf("chat %d: number %d answered after the loss, at or below %d answered before", chat, m.Number, highest[chat])
					}
				} else if status == 0 || status == http.StatusServiceUnavailable {
					tried[body], err = true, nil
				}
				mu.Unlock()
				if err != nil {
					t.Errorf("client %d: %d %v", c, status, err)
					return
				}
				if m != nil {
					t.Logf("client %d: created message %d of chat %d %v after the loss, try %d", c, m.Number, chat, time.Since(lost).Round(time.Millisecond), i+1)
					return
				}
				if time.Since(lost) > within {
					t.Errorf("client %d: no create succeeded within %v of the loss (%d tries with a %v timeout)", c, within, i+1, timeout)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	if c, _, err := impatient.CreateChat(ctx, app, "", ""); err != nil || c.Number != faultChats+1 {
		t.Errorf("first chat after the loss: %+v %v, want number %d", c, err, faultChats+1)
	}

	// A create that timed out may still have been numbered and stored; any
	// other stored message is one answered, with its number.
	waitLag(t, r, 0)
	for c := int64(1); c <= faultChats; c++ {
		rows, err := r.client.AllMessages(ctx, app, c)
		if err != nil {
			t.Fatal(err)
		}
		var acked []*instachat.Message
		for _, m := range rows {
			if !tried[m.Body] {
				acked = append(acked, m)
			}
		}
		if err := answered[c].storedOnce(acked); err != nil {
			t.Errorf("chat %d: %v", c, err)
		}
	}
	noInternalErrors(t, r)
}

// The fault tests load faultChats chats with faultLoad creates at a time.
const (
	faultChats = 2
	faultLoad  = 20
)

// loadedChats creates an application with its chats and a first load of
// messages, and returns its token and the answers.
func loadedChats(t *testing.T, r *running, name string) (string, []answers) {
	t.Helper()
	app, err := r.client.CreateApplication(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	for range faultChats {
		if _, _, err := r.client.CreateChat(t.Context(), app.Token, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	answered, _, _ := createWithin(t, r, app.Token, "before: ", nil)
	return app.Token, answered
}

// createWithin is a load of createConcurrently, 4 clients creating faultLoad
// messages in all, bounded to 20 s; any create not answered 2xx fails t.
func createWithin(t *testing.T, r *running, token, tag string, answered []answers) ([]answers, []int64, []int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	answered, lowest, highest := createConcurrently(ctx, t, r, token, 4, faultLoad/4, faultChats, tag, answered)
	if t.Failed() {
		t.FailNow()
	}
	return answered, lowest, highest
}

// lowestHighest returns the lowest and highest number answered by chat.
func lowestHighest(answered []answers) (lowest, highest []int64) {
	lowest, highest = make([]int64, len(answered)), make([]int64, len(answered))
	for c, a := range answered {
		for n := range a {
			if lowest[c] == 0 || n < lowest[c] {
				lowest[c] = n
			}
			highest[c] = max(highest[c], n)
		}
	}
	return lowest, highest
}

// request is a raw API request.
type request struct{ method, path, body string }

// unavailable sends every request at once and checks that each answers,
// within the bound, 503 with Retry-After and the JSON error (for /healthz,
// its report with the failing check, saying only "unavailable").
func unavailable(t *testing.T, r *running, within time.Duration, reqs []request) {
	t.Helper()
	var wg sync.WaitGroup
	for _, q := range reqs {
		wg.Go(func() {
			ct := ""
			if q.body != "" {
				ct = jsonType
			}
			start := time.Now()
			st, h, v := r.send(t, q.method, q.path, ct, q.body)
			took := time.Since(start)
			e, _ := v["error"].(map[string]any)
			ok := e != nil && e["code"] == instachat.EUNAVAILABLE && e["message"] != "" && h.Get("Retry-After") != ""
			if q.path == "/healthz" {
				ok = v["status"] == "unavailable" && onlyStates(v)
			}
			if st != http.StatusServiceUnavailable || !ok || took > within {
				t.Errorf("%s %s: %d %v after %v, want 503 with the JSON error within %v", q.method, q.path, st, v, took.Round(time.Millisecond), within)
			}
		})
	}
	wg.Wait()
}

// onlyStates reports whether every check of a /healthz answer says "ok" or
// "unavailable", and one the latter: /healthz is open to anyone, and the
// checks' errors, which name addresses and internals, go to the log only.
func onlyStates(health map[string]any) bool {
	checks, _ := health["checks"].(map[string]any)
	down := 0
	for _, state := range checks {
		switch state {
		case "unavailable":
			down++
		case "ok":
		default:
			return false
		}
	}
	return down > 0
}

// scrape returns r's /metrics.
func scrape(r *running) (string, error) {
	req, err := http.NewRequest("GET", r.URL()+"/metrics", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+r.Config.AdminToken)
	res, err := r.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %d %v", res.StatusCode, err)
	}
	return string(raw), nil
}

// sample reads the unlabelled sample name from r's /metrics.
func sample(t *testing.T, r *running, name string) float64 {
	t.Helper()
	text, err := scrape(r)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitLag waits until the consumer lag is want.
func waitLag(t *testing.T, r *running, want float64) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, func() error {
		if lag := sample(t, r, "instachat_queue_consumer_lag"); lag != want {
			return fmt.Errorf("consumer lag %v, want %v", lag, want)
		}
		return nil
	})
}

// noInternalErrors fails if any request was answered 500.
func noInternalErrors(t *testing.T, r *running) {
	t.Helper()
	text, err := scrape(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "instachat_http_request_duration_seconds_count") && strings.Contains(line, `status="500"`) {
			t.Errorf("answered 500: %s", line)
		}
	}
}

// switchable is a TCP listener that a test takes down — new connections
// are refused, open ones cut — and brings back up on the same address.
type switchable struct {
	addr net.Addr

	mu      sync.Mutex
	ln      net.Listener // nil while down
	conns   map[*switchedConn]bool
	changed chan struct{} // closed when ln changes
	closed  bool
}

func listenSwitchable(address string) (*switchable, error) {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	return &switchable{addr: ln.Addr(), ln: ln, conns: map[*switchedConn]bool{}, changed: make(chan struct{})}, nil
}

// Accept waits while the listener is down.
func (s *switchable) Accept() (net.Conn, error) {
	for {
		s.mu.Lock()
		ln, changed, closed := s.ln, s.changed, s.closed
		s.mu.Unlock()
		switch {
		case closed:
			return nil, net.ErrClosed
		case ln == nil:
			<-changed
			continue
		}
		c, err := ln.Accept()
		s.mu.Lock()
		if s.ln != ln { // taken down meanwhile
			s.mu.Unlock()
			if c != nil {
				c.Close()
			}
			continue
		}
		if err != nil {
			s.mu.Unlock()
			return nil, err
		}
		sc := &switchedConn{Conn: c, s: s}
		s.conns[sc] = true
		s.mu.Unlock()
		return sc, nil
	}
}

func (s *switchable) Addr() net.Addr { return s.addr }

func (s *switchable) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.cut()
	return nil
}

// down refuses new connections and cuts the open ones.
func (s *switchable) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut()
}

func (s *switchable) cut() {
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Conn.Close()
	}
	clear(s.conns)
	close(s.changed)
	s.changed = make(chan struct{})
}

// up listens again on the same address.
func (s *switchable) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", s.addr.String())
	if err != nil {
		t.Fatalf("listening again on %s: %v", s.addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ln = ln
	close(s.changed)
	s.changed = make(chan struct{})
}

type switchedConn struct {
	net.Conn
	s *switchable
}

func (c *switchedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}

// proxyMySQL puts a switchable proxy between cfg's processes and MySQL.
func proxyMySQL(t *testing.T, cfg *server.Config) *switchable {
	t.Helper()
	dsn, err := mysqldrv.ParseDSN(cfg.MySQLDSN)
	if err != nil {
		t.Fatal(err)
	}
	p := proxy(t, dsn.Addr)
	dsn.Addr = p.Addr().String()
	cfg.MySQLDSN = dsn.FormatDSN()
	return p
}

// proxyRedis puts a switchable proxy between cfg's processes and Redis.
func proxyRedis(t *testing.T, cfg *server.Config) *switchable {
	t.Helper()
	u, err := url.Parse(cfg.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	p := proxy(t, u.Host)
	u.Host = p.Addr().String()
	cfg.RedisURL = u.String()
	return p
}

// proxy forwards the connections of a switchable listener to target.
func proxy(t *testing.T, target string) *switchable {
	t.Helper()
	p, err := listenSwitchable("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	go func() {
		for {
			c, err := p.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, c); up.Close() }()
				io.Copy(c, up)
			}()
		}
	}()
	return p
}

// fakeElasticsearch answers as Elasticsearch 8 does, with the recorded
// answers of elasticsearch/testdata and testdata/bulk_indexed.http, behind
// a switchable listener, and keeps the documents of every bulk request.
type fakeElasticsearch struct {
	t   *testing.T
	url string
	net *switchable

	mu      sync.Mutex
	created bool
	bulks   []int             // documents per bulk request
	indexed map[string]string // body by document id
}

func replayElasticsearch(t *testing.T) *fakeElasticsearch {
	t.Helper()
	ln, err := listenSwitchable("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	es := &fakeElasticsearch{t: t, net: ln, indexed: map[string]string{}}
	srv := httptest.NewUnstartedServer(es)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	es.url = srv.URL
	return es
}

const esIndex = "/instachat-messages"

func (es *fakeElasticsearch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	es.mu.Lock()
	defer es.mu.Unlock()
	var answer string
	switch route := r.Method + " " + r.URL.Path; route {
	case "HEAD /":
		answer = "../elasticsearch/testdata/ping.http"
	case "HEAD " + esIndex:
		answer = "../elasticsearch/testdata/index_missing.http"
		if es.created {
			answer = "../elasticsearch/testdata/index_exists.http"
		}
	case "PUT " + esIndex:
		es.created, answer = true, "../elasticsearch/testdata/index_created.http"
	case "GET " + esIndex + "/_mapping":
		answer = "../elasticsearch/testdata/mapping.http"
	case "POST " + esIndex + "/_search", "GET " + esIndex + "/_search":
		answer = "../elasticsearch/testdata/search.http"
	case "POST " + esIndex + "/_bulk":
		if err := es.record(r.Body); err != nil {
			es.t.Errorf("bulk request: %v", err)
		}
		answer = "testdata/bulk_indexed.http"
	default:
		es.t.Errorf("unexpected request %s", route)
		http.Error(w, "no recorded answer", http.StatusNotImplemented)
		return
	}
	raw, err := os.ReadFile(filepath.FromSlash(answer))
	if err != nil {
		es.t.Error(err)
		return
	}
	res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), r)
	if err != nil {
		es.t.Errorf("%s: %v", answer, err)
		return
	}
	defer res.Body.Close()
	maps.Copy(w.Header(), res.Header)
	w.WriteHeader(res.StatusCode)
	io.Copy(w, res.Body)
}

// record keeps the documents of a bulk body: lines of action, then source.
func (es *fakeElasticsearch) record(body io.Reader) error {
	dec := json.NewDecoder(body)
	docs := 0
	for {
		var action struct {
			Index struct {
				ID string `json:"_id"`
			} `json:"index"`
		}
		var source struct {
			Body string `json:"body"`
		}
		if err := dec.Decode(&action); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if err := dec.Decode(&source); err != nil {
			return err
		}
		if action.Index.ID == "" {
			return fmt.Errorf("an action without an index _id")
		}
		es.indexed[action.Index.ID] = source.Body
		docs++
	}
	es.bulks = append(es.bulks, docs)
	return nil
}

// holds reports the first message of answered (chat by chat, body by
// number) that the index does not hold with its body; an empty body
// accepts any.
func (es *fakeElasticsearch) holds(token string, answered []answers) error {
	es.mu.Lock()
	defer es.mu.Unlock()
	for c, a := range answered {
		for n, body := range a {
			got, ok := es.indexed[fmt.Sprintf("%s/%d/%d", token, c, n)]
			if !ok || body != "" && got != body {
				return fmt.Errorf("the index lacks message %d of chat %d (%q): %d bulk requests so far", n, c, body, len(es.bulks))
			}
		}
	}
	return nil
}
