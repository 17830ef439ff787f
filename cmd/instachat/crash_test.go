package main

// The tests of this file run the real binary as a child process on a data
// directory of their own, load it with concurrent writers, then kill it
// (SIGKILL) or stop it (SIGTERM) mid-load, and check after a restart on the
// same directory that every create answered 2xx is stored exactly once, that
// numbering has no gap and continues above it, and that the counts agree
// with the rows.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/instachat/instachat/internal/apitest"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/instachat/instachat"
	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/internal/testenv"
)

const (
	writers = 32 // concurrent clients creating messages
	chats   = 4  // chats of the application they write to
)

func TestCrashLosesNoAcknowledgedCreate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and SIGKILLs the instachat binary under load (about 10 s): not run with -short")
	}
	dir := t.TempDir()
	p := startChild(t, dir)
	l := newLedger(t, p.client)
	// Each round kills a process that recovered from the previous kill.
	for round := 1; round <= 3; round++ {
		run := startLoad(p.client, l.token, round)
		time.Sleep(time.Second + rand.N(time.Second))
		// However slow the machine, the kill lands after a create was
		// answered, or the round proves nothing about them.
		if err := run.waitAnswered(20 * time.Second); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// SIGSTOP first: the process never runs again, as if the SIGKILL
		// landed now, but creates sent from now on are surely in flight at
		// the kill, however loaded the machine. A bare SIGKILL once landed
		// when every writer was between two creates ("11170 answered, 0 in
		// flight"), and the round proved nothing about creates in flight.
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatalf("SIGSTOP: %v", err)
		}
		// Every writer, not one: the first create seen in flight may have
		// been answered just before the freeze, its answer not yet read.
		if err := run.waitInFlight(writers, 10*time.Second); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		p.kill(t)
		acked, cut := l.record(t, run.stop())
		t.Logf("round %d: SIGKILL after %d creates answered 2xx, with %d in flight", round, acked, cut)
		if acked == 0 || cut == 0 {
			t.Fatalf("round %d: the kill did not land mid-load (%d answered, %d in flight)", round, acked, cut)
		}
		p = startChild(t, dir)
		l.verify(t, p.client)
		if t.Failed() {
			t.FailNow()
		}
	}
}

func TestShutdownDrainsAndLosesNoAcknowledgedCreate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the instachat binary and stops it with SIGTERM under load (about 5 s): not run with -short")
	}
	const timeout = 5 * time.Second
	dir := t.TempDir()
	p := startChild(t, dir, "INSTACHAT_SHUTDOWN_TIMEOUT="+timeout.String())
	l := newLedger(t, p.client)
	// A create in flight when the signal comes: headers and half its body
	// sent, the rest only once the shutdown has begun.
	inflight := sendHalf(t, p, l.token, 1, "in-flight-at-sigterm")
	l.sent([]sentCreate{{1, "in-flight-at-sigterm"}})
	run := startLoad(p.client, l.token, 1)
	time.Sleep(time.Second)

	term := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := waitFor(p.stderr, drainingLine, p.exited, timeout); err != nil {
		t.Errorf("the log does not say it is draining: %v", err)
	}
	// New connections are refused while the request in flight holds the
	// process; one accepted before must be answered, and then stored.
	probe := instachathttp.NewClient(p.url, &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 3 * time.Second})
	for i := 0; ; i++ {
		if time.Since(term) > timeout {
			t.Fatal("new connections still accepted after SIGTERM")
		}
		body := fmt.Sprintf("after-sigterm-%d", i)
		l.sent([]sentCreate{{1, body}})
		m, status, err := apitest.PostMessage(context.Background(), probe, l.token, 1, body)
		if err == nil {
			l.ack(t, m)
			continue
		}
		if !refusedCleanly(status, err) {
			t.Errorf("a create sent after SIGTERM failed uncleanly: %d %v", status, err)
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
	}
	if !p.running() {
		t.Fatal("exited while a request was in flight")
	}
	m, err := inflight.finish()
	if err != nil {
		t.Fatalf("the create in flight at SIGTERM: %v", err)
	}
	l.ack(t, m)

	select {
	case <-p.exited:
	case <-time.After(timeout + 2*time.Second):
		t.Fatalf("still running %v after SIGTERM, with a shutdown timeout of %v", time.Since(term).Round(time.Millisecond), timeout)
	}
	took := time.Since(term)
	if p.err != nil {
		t.Errorf("exited after SIGTERM with %v, want status 0", p.err)
	}
	if took >= timeout {
		t.Errorf("exited %v after SIGTERM: the drain ran into the shutdown timeout of %v", took, timeout)
	}
	acked, cut := l.record(t, run.stop())
	t.Logf("SIGTERM after %d creates answered 2xx, %d sent on connections it closed; exited %v after it", acked, cut, took.Round(time.Millisecond))

	p = startChild(t, dir)
	l.verify(t, p.client)
}

// TestCrashCheckCatchesEveryDifference shows that the ledger's check refuses
// each way the stored messages of a chat can be wrong.
func TestCrashCheckCatchesEveryDifference(t *testing.T) {
	l := &ledger{acked: map[int64]map[int64]string{1: {1: "a", 2: "b"}}, chats: map[string]int64{}}
	for _, body := range []string{"a", "b", "c", "d"} {
		l.chats[body] = 1
	}
	l.chats["elsewhere"] = 2
	msg := func(n int64, body string) *instachat.Message { return &instachat.Message{Number: n, Body: body} }
	good := []*instachat.Message{msg(1, "a"), msg(2, "b"), msg(3, "c")} // 3 was in flight: stored or not, both fine
	if err := l.check(1, 3, good); err != nil {
		t.Fatalf("correct rows refused: %v", err)
	}
	if err := l.check(1, 2, good[:2]); err != nil {
		t.Fatalf("correct rows refused: %v", err)
	}
	for name, rows := range map[string][]*instachat.Message{
		"lost":             {msg(1, "a")},
		"other body":       {msg(1, "a"), msg(2, "x")},
		"other number":     {msg(1, "b"), msg(2, "a")},
		"gap":              {msg(1, "a"), msg(2, "b"), msg(4, "c")},
		"duplicate number": {msg(1, "a"), msg(2, "b"), msg(2, "c")},
		"duplicate body":   {msg(1, "a"), msg(2, "b"), msg(3, "b")},
		"never sent":       {msg(1, "a"), msg(2, "b"), msg(3, "z")},
		"other chat's":     {msg(1, "a"), msg(2, "b"), msg(3, "elsewhere")},
	} {
		if err := l.check(1, int64(len(rows)), rows); err == nil {
			t.Errorf("%s: not caught", name)
		}
	}
	if err := l.check(1, 2, good); err == nil {
		t.Error("a messages_count below the rows: not caught")
	}
}

// child is one instachat process started by a test.
type child struct {
	cmd    *exec.Cmd
	stderr *testenv.Buffer
	url    string
	client *instachathttp.Client
	exited chan struct{} // closed once the process exited
	err    error         // what Wait returned, once exited is closed
}

var (
	servingLine  = regexp.MustCompile(`msg="instachat serving" addr=(\S+)`)
	drainingLine = regexp.MustCompile(`msg="shutting down: draining`)
)

// startChild starts the binary on a free port of 127.0.0.1 with its data in
// dir and the settings of env (VAR=value), and returns once it serves. The
// test kills it at the end if it still runs, and prints its stderr if the
// test failed.
func startChild(t *testing.T, dir string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(buildBinary(t), "serve")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "INSTACHAT_") { // no production topology from the environment
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "INSTACHAT_ADDR=127.0.0.1:0", "INSTACHAT_DATA_DIR="+dir)
	cmd.Env = append(cmd.Env, env...)
	p := &child{cmd: cmd, stderr: &testenv.Buffer{}, exited: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: writers}, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		cmd.Process.Kill() // an error only says it exited already
		<-p.exited
		hc.CloseIdleConnections()
		if t.Failed() {
			t.Logf("stderr of instachat (pid %d, %v):\n%s", cmd.Process.Pid, p.err, p.stderr)
		}
	})
	m, err := waitFor(p.stderr, servingLine, p.exited, 15*time.Second)
	if err != nil {
		t.Fatalf("instachat does not serve: %v", err)
	}
	p.url = "http://" + m[1]
	p.client = instachathttp.NewClient(p.url, hc)
	return p
}

func (p *child) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *child) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	<-p.exited
}

// halfSent is a create in flight: its headers and half its body are sent.
type halfSent struct {
	conn  net.Conn
	rest  []byte
	token string
	chat  int64
}

func sendHalf(t *testing.T, p *child, token string, chat int64, body string) *halfSent {
	t.Helper()
	payload, err := json.Marshal(map[string]string{"body": body})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(p.url, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	half := len(payload) / 2
	if _, err := fmt.Fprintf(conn,
		"POST /api/v1/applications/%s/chats/%d/messages HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		token, chat, host, len(payload), payload[:half]); err != nil {
		t.Fatal(err)
	}
	return &halfSent{conn: conn, rest: payload[half:], token: token, chat: chat}
}

// finish sends the rest of the body and returns the message answered 201.
func (h *halfSent) finish() (*instachat.Message, error) {
	h.conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := h.conn.Write(h.rest); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(h.conn), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("answered %s %s", resp.Status, b)
	}
	m := &instachat.Message{Token: h.token, Chat: h.chat}
	return m, json.NewDecoder(resp.Body).Decode(m)
}

// waitFor returns the submatches of re in the log b once it matches, or an
// error once the process exited or within passed without a match.
func waitFor(b *testenv.Buffer, re *regexp.Regexp, exited <-chan struct{}, within time.Duration) ([]string, error) {
	deadline := time.After(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m, nil
		}
		select {
		case <-exited:
			if m := re.FindStringSubmatch(b.String()); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("exited without logging %q", re)
		case <-deadline:
			return nil, fmt.Errorf("%q not logged within %v", re, within)
		case <-tick.C:
		}
	}
}

// ledger is what the clients of one application know across restarts: the
// messages answered 2xx, and the chat each body was ever sent to.
type ledger struct {
	token  string
	acked  map[int64]map[int64]string // chat → number → body answered
	chats  map[string]int64           // body → chat it was sent to
	probes int                        // messages verify created, for unique bodies
}

// newLedger creates an application and its chats.
func newLedger(t *testing.T, c *instachathttp.Client) *ledger {
	t.Helper()
	ctx := context.Background()
	app, err := c.CreateApplication(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{token: app.Token, acked: map[int64]map[int64]string{}, chats: map[string]int64{}}
	for n := int64(1); n <= chats; n++ {
		ch, status, err := apitest.PostChat(ctx, c, app.Token, "")
		if err != nil || status != http.StatusCreated || ch.Number != n {
			t.Fatalf("creating chat %d: %+v %d %v", n, ch, status, err)
		}
		l.acked[n] = map[int64]string{}
	}
	return l
}

type sentCreate struct {
	chat int64
	body string
}

func (l *ledger) sent(creates []sentCreate) {
	for _, c := range creates {
		l.chats[c.body] = c.chat
	}
}

// ack records a message answered 2xx; a number answered twice fails t.
func (l *ledger) ack(t *testing.T, m *instachat.Message) {
	t.Helper()
	if prev, ok := l.acked[m.Chat][m.Number]; ok {
		t.Errorf("chat %d: number %d answered twice, to %q and %q", m.Chat, m.Number, prev, m.Body)
	}
	l.acked[m.Chat][m.Number] = m.Body
}

// record adds what the writers sent and were answered, and returns how many
// creates were answered 2xx and how many were cut without an answer. Any
// answer other than 2xx fails t: neither a crash nor a shutdown excuses one.
func (l *ledger) record(t *testing.T, results []writerResult) (acked, cut int) {
	t.Helper()
	for _, r := range results {
		l.sent(r.sent)
		for _, m := range r.acked {
			l.ack(t, m)
		}
		for _, err := range r.refused {
			t.Errorf("answered other than 2xx: %v", err)
		}
		acked += len(r.acked)
		cut += r.cut
	}
	return acked, cut
}

// verify checks what the server at c stores against the ledger, then that a
// new message of each chat takes the next number.
func (l *ledger) verify(t *testing.T, c *instachathttp.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	app, err := c.FindApplication(ctx, l.token)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListChats(ctx, l.token, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if app.ChatsCount != chats || len(list) != chats {
		t.Fatalf("chats_count %d and %d chats listed, want %d", app.ChatsCount, len(list), chats)
	}
	stored := 0
	for i, ch := range list {
		if ch.Number != int64(i+1) {
			t.Fatalf("chat #%d of the list is number %d", i+1, ch.Number)
		}
		rows, err := c.AllMessages(ctx, l.token, ch.Number)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.check(ch.Number, ch.MessagesCount, rows); err != nil {
			t.Errorf("chat %d: %v", ch.Number, err)
		}
		stored += len(rows)

		l.probes++
		body := fmt.Sprintf("probe-%d", l.probes)
		l.sent([]sentCreate{{ch.Number, body}})
		m, _, err := c.CreateMessage(ctx, l.token, ch.Number, body, "")
		if err != nil {
			t.Fatalf("chat %d: creating a message after the restart: %v", ch.Number, err)
		}
		if want := int64(len(rows)) + 1; m.Number != want {
			t.Errorf("chat %d: the first message after the restart is number %d, want %d (%d acknowledged, %d stored)",
				ch.Number, m.Number, want, len(l.acked[ch.Number]), len(rows))
		}
		l.ack(t, m)
	}
	t.Logf("after the restart: %d messages stored", stored)
}

// check reports how the stored messages of a chat, rows in the order the API
// lists them, and its messages_count differ from the ledger. Every message
// answered 2xx must be stored with its number and body, and nothing else but
// messages sent to this chat; the numbers must be exactly 1..len(rows) and
// each body stored once.
func (l *ledger) check(chat, count int64, rows []*instachat.Message) error {
	var errs []error
	for i, m := range rows {
		if m.Number != int64(i+1) {
			errs = append(errs, fmt.Errorf("stored numbers are not exactly 1..%d: #%d of the list is number %d", len(rows), i+1, m.Number))
			break
		}
	}
	stored := map[int64]string{}
	bodies := map[string]int64{}
	for _, m := range rows {
		if to, ok := l.chats[m.Body]; !ok || to != chat {
			errs = append(errs, fmt.Errorf("message %d is %q, which no client sent to this chat", m.Number, m.Body))
		}
		if n, ok := bodies[m.Body]; ok {
			errs = append(errs, fmt.Errorf("%q stored twice, as %d and %d", m.Body, n, m.Number))
		}
		if _, ok := stored[m.Number]; ok {
			errs = append(errs, fmt.Errorf("number %d stored twice", m.Number))
		}
		bodies[m.Body], stored[m.Number] = m.Number, m.Body
	}
	acked := l.acked[chat]
	for _, n := range slices.Sorted(maps.Keys(acked)) {
		if body, ok := stored[n]; !ok {
			errs = append(errs, fmt.Errorf("message %d (%q) was answered 2xx but is not stored", n, acked[n]))
		} else if body != acked[n] {
			errs = append(errs, fmt.Errorf("message %d was answered 2xx as %q but is stored as %q", n, acked[n], body))
		}
	}
	if count != int64(len(rows)) {
		errs = append(errs, fmt.Errorf("messages_count is %d, %d messages stored", count, len(rows)))
	}
	if len(errs) > 5 {
		errs = append(errs[:5], fmt.Errorf("and %d more differences", len(errs)-5))
	}
	return errors.Join(errs...)
}

// load is a run of writers, each creating messages one after the other,
// round-robin over the chats, with bodies unique across rounds.
type load struct {
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	results  []writerResult
	inFlight atomic.Int64 // creates sent and not yet answered
	answered atomic.Int64 // creates answered 2xx
}

// waitAnswered waits, at most within, until a create is answered 2xx.
func (l *load) waitAnswered(within time.Duration) error {
	for start := time.Now(); l.answered.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Since(start) > within {
			return fmt.Errorf("no create answered 2xx %v into the load", within)
		}
	}
	return nil
}

// waitInFlight waits, at most within, until n creates are sent and not
// answered.
func (l *load) waitInFlight(n int64, within time.Duration) error {
	for start := time.Now(); l.inFlight.Load() < n; time.Sleep(time.Millisecond) {
		if time.Since(start) > within {
			return fmt.Errorf("%d creates in flight %v into the load, want %d", l.inFlight.Load(), within, n)
		}
	}
	return nil
}

// writerResult is what one writer sent and was answered.
type writerResult struct {
	sent    []sentCreate
	acked   []*instachat.Message
	refused []error // answers other than 2xx
	// cut counts the creates that got no answer on a connection the server
	// had accepted: in flight when it died, or sent as it closed the
	// connection. They may or may not be stored.
	cut int
}

func startLoad(c *instachathttp.Client, token string, round int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, results: make([]writerResult, writers)}
	for w := range writers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			r := &l.results[w]
			for seq := 0; ctx.Err() == nil; seq++ {
				chat := int64((w+seq)%chats + 1)
				body := fmt.Sprintf("r%d-w%d-%d", round, w, seq)
				r.sent = append(r.sent, sentCreate{chat, body})
				l.inFlight.Add(1)
				m, status, err := apitest.PostMessage(ctx, c, token, chat, body)
				l.inFlight.Add(-1)
				switch {
				case err == nil:
					r.acked = append(r.acked, m)
					l.answered.Add(1)
				case errors.Is(err, context.Canceled): // stopped
				case status != 0 && (status < 200 || status > 299):
					r.refused = append(r.refused, fmt.Errorf("%s: %d %w", body, status, err))
				default: // the outcome is unknown: the create may or may not be stored
					if !errors.Is(err, syscall.ECONNREFUSED) {
						r.cut++
					}
					select { // no spinning on a server that is gone
					case <-ctx.Done():
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
		}()
	}
	return l
}

// stop ends the writers and returns what each sent and was answered.
func (l *load) stop() []writerResult {
	l.cancel()
	l.wg.Wait()
	return l.results
}

// refusedCleanly reports whether a create that failed was refused in a way
// a client can act on: an error answer of the API saying the service is
// unavailable, or a connection refused or closed before any answer.
func refusedCleanly(status int, err error) bool {
	var apiErr *instachat.Error
	if errors.As(err, &apiErr) {
		return status == http.StatusServiceUnavailable && apiErr.Code == instachat.EUNAVAILABLE
	}
	return status == 0 && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF))
}
