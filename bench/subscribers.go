package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// pool holds the subscribers of one attach: S streams across the chats,
// each read by one goroutine, SSE over a bare TCP connection with a small
// buffer, so that one bench process holds tens of thousands of them.
type pool struct {
	base    *url.URL
	token   string
	first   int // the chat of the first subscriber; the others follow round robin
	chats   int
	answers *answerTable // nil: deliveries are counted, not timed
	hc      *http.Client // WebSocket handshakes

	subs    []*subscriber
	perChat []int // connected subscribers by chat (index chat-first)
	wg      sync.WaitGroup
	closing atomic.Bool

	delivered  atomic.Int64 // live events received, all
	measured   atomic.Int64 // of them, creates the answer table times
	gaps       atomic.Int64 // a revision after synced that skipped one
	duplicates atomic.Int64 // a revision received again or going back

	mu      sync.Mutex
	refused map[string]int64 // subscribers that never got to synced, by why
	ended   map[string]int64 // streams that ended while the pool held them, by why
	shards  [latencyShards]latencyShard
}

// latencyShards spreads the delivery histograms over locks, so that a
// thousand subscribers recording at once rarely wait for each other.
const latencyShards = 64

type latencyShard struct {
	mu       sync.Mutex
	h        histogram // from the create's answer
	fromSent histogram // from the create's request
	early    []earlyReceipt
}

// earlyReceipt is an event received before the bench had read its
// create's answer: it is timed once the run is over.
type earlyReceipt struct {
	chat   int
	number int64
	at     int64 // UnixNano
}

// answerTable holds when each create of the open loop was sent and
// answered, by chat and message number (UnixNano; 0 while not answered).
type answerTable struct {
	at [][]answerTimes // [chat-1][number]
	ok []atomic.Int64  // 2xx answers by chat
}

type answerTimes struct{ sent, at atomic.Int64 }

func newAnswerTable(sizes []int) *answerTable {
	t := &answerTable{at: make([][]answerTimes, len(sizes)), ok: make([]atomic.Int64, len(sizes))}
	for i, n := range sizes {
		t.at[i] = make([]answerTimes, n+1)
	}
	return t
}

// answered records a create's answer from its Location header
// (…/chats/{chat}/messages/{number}); answers of other requests, or
// numbers beyond the table, are ignored.
func (t *answerTable) answered(status int, h http.Header, sent, at time.Time) {
	if status < 200 || status > 299 {
		return
	}
	chat, number, ok := parseMessageLocation(h.Get("Location"))
	if !ok || chat < 1 || chat > len(t.at) || number < 1 || number >= int64(len(t.at[chat-1])) {
		return
	}
	a := &t.at[chat-1][number]
	a.sent.Store(sent.UnixNano())
	a.at.Store(at.UnixNano()) // last: lookup reads it first
	t.ok[chat-1].Add(1)
}

// lookup returns when the create of number in chat was sent and answered:
// ok is false beyond the table, both 0 while not answered yet.
func (t *answerTable) lookup(chat int, number int64) (sent, at int64, ok bool) {
	if t == nil || chat < 1 || chat > len(t.at) || number < 1 || number >= int64(len(t.at[chat-1])) {
		return 0, 0, false
	}
	a := &t.at[chat-1][number]
	if at = a.at.Load(); at == 0 {
		return 0, 0, true
	}
	return a.sent.Load(), at, true
}

// parseMessageLocation reads chat and number off …/chats/C/messages/N.
func parseMessageLocation(loc string) (chat int, number int64, ok bool) {
	const messages, chats = "/messages/", "/chats/"
	i := lastIndex(loc, messages)
	if i < 0 {
		return 0, 0, false
	}
	n, err := strconv.ParseInt(loc[i+len(messages):], 10, 64)
	if err != nil {
		return 0, 0, false
	}
	j := lastIndex(loc[:i], chats)
	if j < 0 {
		return 0, 0, false
	}
	c, err := strconv.Atoi(loc[j+len(chats) : i])
	if err != nil {
		return 0, 0, false
	}
	return c, n, true
}

func lastIndex(s, sub string) int {
	return bytes.LastIndex([]byte(s), []byte(sub))
}

// subscriber is one stream.
type subscriber struct {
	p     *pool
	chat  int
	shard int
	ws    bool

	mu   sync.Mutex // guards the connection's closing against its opening
	conn io.Closer

	last   int64 // the last revision received; only its goroutine touches it
	synced bool
}

// attach opens n streams, ws of them WebSocket, subscriber i on chat
// first+i%chats, at most dials at a time, and returns once each got to
// synced or was refused.
func attach(ctx context.Context, base *url.URL, token string, first, chats, n, ws, dials int, answers *answerTable, hc *http.Client) *pool {
	p := &pool{base: base, token: token, first: first, chats: chats, answers: answers, hc: hc,
		perChat: make([]int, chats), refused: map[string]int64{}, ended: map[string]int64{}}
	sem := make(chan struct{}, max(dials, 1))
	var ready sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		s := &subscriber{p: p, chat: first + i%chats, shard: i % latencyShards, ws: i < ws}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		ready.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			once := sync.OnceFunc(func() { <-sem; ready.Done() })
			err := s.run(ctx, func() {
				mu.Lock()
				p.subs = append(p.subs, s)
				p.perChat[s.chat-first]++
				mu.Unlock()
				once()
			})
			once()
			if err != nil {
				p.record(s, err)
			}
		}()
	}
	ready.Wait()
	return p
}

// streamEnded is a stream that ended after synced, and why.
type streamEnded struct{ why string }

func (e streamEnded) Error() string { return e.why }

// record counts a subscriber that ended: refused before synced, or ended
// after it unless the pool was closing it.
func (p *pool) record(s *subscriber, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ended streamEnded
	switch {
	case errors.As(err, &ended):
		if !p.closing.Load() {
			p.ended[ended.why]++
		}
	case !p.closing.Load():
		p.refused[err.Error()]++
	}
}

// on is how many subscribers of chat got to synced.
func (p *pool) on(chat int) int {
	if chat < p.first || chat >= p.first+p.chats {
		return 0
	}
	return p.perChat[chat-p.first]
}

// connected is how many subscribers got to synced.
func (p *pool) connected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.subs)
}

// endedCount is how many streams ended under the pool.
func (p *pool) endedCount() (n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.ended {
		n += c
	}
	return n
}

func (p *pool) snapshot(m map[string]int64) map[string]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// close ends every stream and waits for their goroutines.
func (p *pool) close() {
	if p == nil {
		return
	}
	p.closing.Store(true)
	p.mu.Lock()
	subs := p.subs
	p.mu.Unlock()
	for _, s := range subs {
		s.close()
	}
	p.wg.Wait()
}

func (s *subscriber) setConn(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p.closing.Load() {
		c.Close()
		return false
	}
	s.conn = c
	return true
}

func (s *subscriber) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		s.conn.Close()
	}
}

// deliver accounts for one live event: its revision against the last, and
// its delivery latency if the answer table times it.
func (s *subscriber) deliver(revision, number int64) {
	now := time.Now().UnixNano()
	p := s.p
	switch {
	case revision == s.last+1:
	case revision <= s.last:
		p.duplicates.Add(1)
	default:
		p.gaps.Add(1)
	}
	s.last = max(s.last, revision)
	p.delivered.Add(1)
	sent, at, ok := p.answers.lookup(s.chat, number)
	if !ok {
		return
	}
	p.measured.Add(1)
	sh := &p.shards[s.shard]
	sh.mu.Lock()
	if at == 0 {
		sh.early = append(sh.early, earlyReceipt{chat: s.chat, number: number, at: now})
	} else {
		sh.h.record(time.Duration(now - at))
		sh.fromSent.record(time.Duration(now - sent))
	}
	sh.mu.Unlock()
}

// latency merges the shards, from the answer and from the request;
// receipts that came before their create's answer count as 0 from it
// (early), those whose create was never answered not at all (unanswered).
func (p *pool) latency() (h, fromSent histogram, early, unanswered int64) {
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		h.merge(&sh.h)
		fromSent.merge(&sh.fromSent)
		for _, e := range sh.early {
			sent, at, _ := p.answers.lookup(e.chat, e.number)
			if at == 0 {
				unanswered++
				continue
			}
			early++
			h.record(time.Duration(max(e.at-at, 0)))
			fromSent.record(time.Duration(e.at - sent))
		}
		sh.mu.Unlock()
	}
	return h, fromSent, early, unanswered
}

// run opens the stream, calls synced once it got there, and reads it until
// it ends: an error before synced is a refusal, a streamEnded after it.
func (s *subscriber) run(ctx context.Context, synced func()) error {
	if s.ws {
		return s.runWebSocket(ctx, synced)
	}
	return s.runSSE(ctx, synced)
}

func (s *subscriber) path() string {
	return chatPath(s.p.token, s.chat) + "/events"
}

// sseBuffer is the bytes each SSE subscriber reads the socket through; an
// event of a 100-byte message is about 300 bytes.
const sseBuffer = 1024

func (s *subscriber) runSSE(ctx context.Context, synced func()) error {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.p.base.Host)
	if err != nil {
		return fmt.Errorf("dial: %w", unwrapNet(err))
	}
	if !s.setConn(conn) {
		return nil
	}
	defer conn.Close()
	req := "GET " + s.path() + " HTTP/1.1\r\nHost: " + s.p.base.Host + "\r\nAccept: text/event-stream\r\n\r\n"
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return fmt.Errorf("send: %w", unwrapNet(err))
	}
	br := bufio.NewReaderSize(conn, sseBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return fmt.Errorf("answer: %w", unwrapNet(err))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	lines := &lineReader{r: bufio.NewReaderSize(resp.Body, 512)}
	const (
		none = iota
		syncedEvent
		otherEvent
	)
	var endWhy string
	var event int
	var id, number int64
	for {
		line, err := lines.next()
		if err != nil {
			why := "closed by the server"
			if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) {
				why = "read: " + unwrapNet(err).Error()
			}
			if endWhy != "" {
				why = endWhy
			}
			if !s.synced {
				return errors.New(why)
			}
			return streamEnded{why}
		}
		switch {
		case len(line) == 0: // the end of an event
			switch {
			case event == syncedEvent && !s.synced:
				s.synced, s.last = true, id
				conn.SetDeadline(time.Time{})
				synced()
			case event == none:
			case s.synced:
				s.deliver(id, number)
			}
			event, id, number = none, 0, 0
		case line[0] == ':':
			if rest, ok := bytes.CutPrefix(line, []byte(": end: ")); ok {
				endWhy = "ended: " + string(rest)
			}
		default:
			name, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(name) {
			case "event":
				event = otherEvent
				if string(value) == "synced" {
					event = syncedEvent
				}
			case "id":
				id, _ = strconv.ParseInt(string(value), 10, 64)
			case "data":
				number = jsonInt(value, `"number":`)
			}
		}
	}
}

// lineReader reads lines of any length through a small buffer, without
// the line ending; a line longer than the buffer is gathered in carry.
type lineReader struct {
	r     *bufio.Reader
	carry []byte
}

func (l *lineReader) next() ([]byte, error) {
	line, err := l.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		l.carry = append(l.carry[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = l.r.ReadSlice('\n')
			l.carry = append(l.carry, line...)
		}
		line = l.carry
	}
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line[:len(line)-1], []byte("\r"))
	return line, nil
}

// jsonInt is the integer after the first key (`"name":`) in a JSON text,
// 0 if it has none: enough for the events' numbers, without decoding.
func jsonInt(b []byte, key string) int64 {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0
	}
	var n int64
	for _, c := range b[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// jsonString is the string after the first key (`"name":"`), "" if none.
func jsonString(b []byte, key string) string {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return ""
	}
	rest := b[i+len(key):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		return string(rest[:j])
	}
	return ""
}

func (s *subscriber) runWebSocket(ctx context.Context, synced func()) error {
	u := *s.p.base
	u.Scheme = "ws"
	if s.p.base.Scheme == "https" {
		u.Scheme = "wss"
	}
	u.Path = s.path()
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, resp, err := websocket.Dial(dctx, u.String(), &websocket.DialOptions{HTTPClient: s.p.hc})
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return fmt.Errorf("websocket: %w", unwrapNet(err))
	}
	if !s.setConn(closerFunc(func() error { return c.CloseNow() })) {
		return nil
	}
	defer c.CloseNow()
	for {
		_, data, err := c.Read(context.Background())
		if err != nil {
			why := "read: " + unwrapNet(err).Error()
			if status := websocket.CloseStatus(err); status != -1 {
				why = fmt.Sprintf("websocket close %d", int(status))
			}
			if !s.synced {
				return errors.New(why)
			}
			return streamEnded{why}
		}
		revision := jsonInt(data, `"revision":`)
		switch event := jsonString(data, `"event":"`); {
		case event == "synced" && !s.synced:
			s.synced, s.last = true, revision
			synced()
		case s.synced:
			s.deliver(revision, jsonInt(data, `"number":`))
		}
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// unwrapNet drops the addresses of a *net.OpError, so that errors of
// thousands of connections count under one key.
func unwrapNet(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}
