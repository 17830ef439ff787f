package http

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/feed"
	"github.com/instachat/instachat/internal/jsonenc"
)

// streamWriteTimeout bounds one write of a stream (an event, a heartbeat):
// a client that takes longer to read it is gone or hopelessly behind. Each
// write sets its own deadline, so the server's WriteTimeout, which would
// otherwise end every stream after 30 s, never applies to a stream.
const streamWriteTimeout = 10 * time.Second

// events streams the feed of the chat (…/chats/{chat}/events) or of the
// application (…/events): Server-Sent Events by default, WebSocket when the
// request asks to upgrade. Everything that can refuse the stream — an
// unknown chat, a bad resume point, a limit, a shutdown — is answered as a
// JSON error before the stream starts.
func (s *Server) events(w http.ResponseWriter, r *http.Request, res resource) error {
	ws := isWebSocket(r)
	after, resume, err := resumePoint(r, !ws)
	if err != nil {
		return err
	}
	st, err := s.Streams.Open(r.Context(), instachat.Topic{Token: res.token, Chat: res.chat}, after, resume)
	if err != nil && r.Context().Err() != nil {
		return nil // the client left before its stream started
	}
	if err != nil {
		if instachat.ErrorCode(err) == instachat.EINVALID { // after above the current revision
			return instachat.Errorf(instachat.EBADREQUEST, "%s", instachat.ErrorMessage(err))
		}
		return err
	}
	defer st.Close()
	transport := "sse"
	if ws {
		transport = "websocket"
	}
	var done func(reason string)
	if s.ObserveStream != nil {
		done = s.ObserveStream(transport)
	}
	if ws {
		err = s.serveWebSocket(w, r, st)
	} else {
		err = s.serveSSE(w, r, st)
	}
	reason := endReason(r.Context(), err)
	if done != nil {
		done(reason)
	}
	if reason == "error" {
		s.Logger.WarnContext(r.Context(), "stream ended", "route", r.Pattern, "err", err)
	}
	return nil // the stream started: there is no answer left to give
}

// endReason names why a stream ended, for metrics and logs.
func endReason(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, instachat.ErrSlowSubscriber):
		return "slow"
	case errors.Is(err, feed.ErrShutdown):
		return "shutdown"
	case errors.Is(err, feed.ErrResume):
		return "resume"
	case errors.Is(err, feed.ErrDeleted):
		return "deleted"
	case ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, errClientLeft):
		return "client"
	case instachat.ErrorCode(err) == instachat.EUNAVAILABLE:
		return "unavailable"
	}
	return "error"
}

var errClientLeft = errors.New("the client left")

// isWebSocket reports whether r asks for a WebSocket upgrade.
func isWebSocket(r *http.Request) bool {
	return headerHasToken(r.Header, "Connection", "upgrade") && headerHasToken(r.Header, "Upgrade", "websocket")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// resumePoint reads ?after=R, or for Server-Sent Events the Last-Event-ID
// header that EventSource sends when it reconnects (it wins over after:
// the query string is the one the page first opened, the header where it
// got to). Neither means no resume point.
func resumePoint(r *http.Request, lastEventID bool) (int64, bool, error) {
	if lastEventID {
		if v := r.Header.Get("Last-Event-ID"); v != "" {
			n, err := parseRevision(v)
			if err != nil {
				return 0, false, instachat.Errorf(instachat.EBADREQUEST, "Last-Event-ID must be a revision, 0 or a positive integer")
			}
			return n, true, nil
		}
	}
	q := r.URL.Query()
	if !q.Has("after") {
		return 0, false, nil
	}
	n, err := parseRevision(q.Get("after"))
	return n, err == nil, err
}

// serveSSE writes the stream as Server-Sent Events: each event as
// "event: <name>", "id: <revision>", "data: <JSON>", and a comment line as
// heartbeat. It ends the response when the stream ends; EventSource then
// reconnects by itself with Last-Event-ID.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, st *feed.Stream) error {
	rc := http.NewResponseController(w)
	// The read deadline of the server would end the request's context
	// mid-stream; the connection's own end still does.
	rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: rc}
	if err := sw.flush(); err != nil {
		return err
	}
	err := st.Run(r.Context(), sw)
	if !errors.Is(err, context.Canceled) && !errors.Is(err, errClientLeft) {
		// Say why before closing, as a comment EventSource ignores;
		// curl shows it.
		sw.buf.Reset()
		sw.buf.WriteString(": end: " + strings.ReplaceAll(instachat.ErrorMessage(err), "\n", " ") + "\n\n")
		sw.flush()
	}
	return err
}

type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf bytes.Buffer
}

func (sw *sseWriter) Event(e instachat.Event) error {
	sw.buf.Reset()
	sw.buf.WriteString("event: ")
	sw.buf.WriteString(e.Event)
	sw.buf.WriteString("\nid: ")
	sw.buf.WriteString(strconv.FormatInt(e.Revision, 10))
	sw.buf.WriteString("\ndata: ")
	sw.buf.Write(encodings.json(e)) // JSON holds no raw newline
	sw.buf.WriteString("\n\n")
	return sw.flush()
}

func (sw *sseWriter) Heartbeat() error {
	sw.buf.Reset()
	sw.buf.WriteString(": heartbeat\n\n")
	return sw.flush()
}

func (sw *sseWriter) flush() error {
	sw.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	if _, err := sw.w.Write(sw.buf.Bytes()); err != nil {
		return errors.Join(errClientLeft, err)
	}
	if err := sw.rc.Flush(); err != nil {
		return errors.Join(errClientLeft, err)
	}
	return nil
}

// serveWebSocket writes the stream as WebSocket text frames, one event's
// JSON each, pings as heartbeat, and closes with a status that says why the
// stream ended: 1013 (try again later) when the client fell behind or must
// resume, 1001 (going away) at shutdown, 1000 (normal) after the last event
// of a deleted chat or application, as there is nothing to resume.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, st *feed.Stream) error {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Time{})
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Applications authenticate by the token in the path, never by
		// a cookie, so a page of another origin gains nothing it could
		// not get by asking itself: any origin may connect, as any may
		// use the REST API.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return err // Accept answered the client
	}
	// Nothing is read from the client but control frames; CloseRead
	// answers pings and ends ctx when the client closes or goes away.
	ctx := c.CloseRead(r.Context())
	err = st.Run(ctx, &wsWriter{c: c, ctx: ctx})
	switch reason := endReason(ctx, err); reason {
	case "client":
		c.CloseNow()
	case "shutdown":
		c.Close(websocket.StatusGoingAway, closeReason(err))
	case "deleted":
		c.Close(websocket.StatusNormalClosure, closeReason(err))
	case "error":
		c.Close(websocket.StatusInternalError, "internal error")
	default: // slow, resume, unavailable: resume from the last revision
		c.Close(websocket.StatusTryAgainLater, closeReason(err))
	}
	return err
}

// closeReason fits the error's message in a close frame (123 bytes).
func closeReason(err error) string {
	msg := instachat.ErrorMessage(err)
	if len(msg) > 123 {
		msg = msg[:123]
	}
	return msg
}

type wsWriter struct {
	c   *websocket.Conn
	ctx context.Context
}

func (ww *wsWriter) Event(e instachat.Event) error {
	ctx, cancel := context.WithTimeout(ww.ctx, streamWriteTimeout)
	defer cancel()
	if err := ww.c.Write(ctx, websocket.MessageText, encodings.json(e)); err != nil {
		return errors.Join(errClientLeft, err)
	}
	return nil
}

func (ww *wsWriter) Heartbeat() error {
	ctx, cancel := context.WithTimeout(ww.ctx, streamWriteTimeout)
	defer cancel()
	if err := ww.c.Ping(ctx); err != nil {
		return errors.Join(errClientLeft, err)
	}
	return nil
}

// encodings holds the JSON of recent events, so that an event published to
// a thousand streams is encoded once rather than by each (the issue's
// "the cost of encoding each event once"; encoding per stream was an
// eighth of the server's CPU delivering to 1,000 streams of one chat).
var encodings eventCache

// eventCache is a table of recent encodings, one per slot, keyed by what
// identifies a published event: the brokers hand every subscriber a copy
// of the event that shares its Message (or Chat) pointer, so that pointer,
// the event's name and its revision name one encoding. Events read from
// the store (replays, gap fills) have pointers of their own and are
// encoded each time, as are those without a payload (synced).
type eventCache struct {
	seed  maphash.Seed
	slots [1024]atomic.Pointer[encodedEvent]
}

type encodedEvent struct {
	message  *instachat.Message
	chat     *instachat.Chat
	event    string
	revision int64
	json     []byte // never changed once stored: streams write it as it is
}

func init() { encodings.seed = maphash.MakeSeed() }

// json returns e's JSON, without a trailing newline.
func (c *eventCache) json(e instachat.Event) []byte {
	var h uint64
	switch {
	case e.Message != nil:
		h = maphash.Comparable(c.seed, e.Message)
	case e.Chat != nil:
		h = maphash.Comparable(c.seed, e.Chat)
	default:
		return encodeEvent(e)
	}
	slot := &c.slots[h%uint64(len(c.slots))]
	if p := slot.Load(); p != nil && p.message == e.Message && p.chat == e.Chat && p.event == e.Event && p.revision == e.Revision {
		return p.json
	}
	b := encodeEvent(e)
	slot.Store(&encodedEvent{message: e.Message, chat: e.Chat, event: e.Event, revision: e.Revision, json: b})
	return b
}

func encodeEvent(e instachat.Event) []byte {
	if b, ok := jsonenc.AppendEvent(nil, e); ok {
		return b
	}
	var buf bytes.Buffer
	newEncoder(&buf).Encode(e)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
