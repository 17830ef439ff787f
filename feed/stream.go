package feed

import (
	"context"
	"sync"
	"time"

	"github.com/instachat/instachat"
)

// Defaults of a Streamer.
const (
	DefaultPageSize           = 500
	DefaultHeartbeat          = 10 * time.Second // the issue asks for at most 15 s
	DefaultIdleCheck          = 30 * time.Second
	DefaultMaxStreams         = 10000
	DefaultMaxStreamsPerToken = 100
)

// Errors that end a stream; each is EUNAVAILABLE, so a client knows to
// resume from the last revision it received.
var (
	// ErrResume ends a stream whose gap could not be filled exactly: a
	// revision it missed was superseded by a later change of the same item
	// and cannot be reproduced. Resuming replays the item's latest state.
	ErrResume = instachat.Errorf(instachat.EUNAVAILABLE, "the stream missed a change it cannot reproduce; resume from the last revision received")
	// ErrShutdown ends streams when the server shuts down.
	ErrShutdown = instachat.Errorf(instachat.EUNAVAILABLE, "the server is shutting down; resume from the last revision received, on another server")
	// ErrTooManyStreams refuses a stream over a limit, before it starts.
	ErrTooManyStreams = instachat.Errorf(instachat.EUNAVAILABLE, "too many streams on this server; retry later")
	// ErrTooManyTokenStreams refuses a stream over the per-application limit.
	ErrTooManyTokenStreams = instachat.Errorf(instachat.EUNAVAILABLE, "too many streams for this application on this server; retry later")
	// ErrDeleted ends the stream of a deleted chat or application, after
	// its last event (chat.deleted, application.deleted) when the broker
	// brought it.
	ErrDeleted = instachat.Errorf(instachat.ENOTFOUND, "the chat or application of this stream was deleted")
)

// Observer is told what streams do, for metrics. Nil fields are skipped.
type Observer struct {
	// Delivered is called for each live event written (not for replayed
	// ones), with how long after its change's timestamp it was written.
	Delivered func(lag time.Duration)
	// GapFilled is called for each gap a stream filled from the store.
	GapFilled func()
}

// Streamer opens the streams of one process. Set its fields before the
// first Open.
type Streamer struct {
	Feeds  instachat.Feeds
	Broker instachat.Broker

	// PageSize is how many changes a replay or a gap fill reads at once;
	// at most this many are held in memory. Zero means DefaultPageSize.
	PageSize int
	// Heartbeat is how long a stream may stay silent before it writes a
	// heartbeat. Zero means DefaultHeartbeat.
	Heartbeat time.Duration
	// IdleCheck is how long a stream may go without an event before it
	// asks the store whether it missed one: a publish lost with no change
	// after it (a worker killed between its commit and its publish, whose
	// batch the next worker finds stored) would otherwise wait for the
	// next change. The check is one indexed read of at most a page. Zero
	// means DefaultIdleCheck.
	IdleCheck time.Duration
	// MaxStreams and MaxStreamsPerToken bound the streams open at once in
	// this process, in all and per application. Zero means the default.
	MaxStreams, MaxStreamsPerToken int
	Observer                       Observer

	mu       sync.Mutex
	open     int
	perToken map[string]int
	stopping chan struct{} // closed by Shutdown
	wg       sync.WaitGroup
}

func (s *Streamer) init() {
	if s.stopping == nil {
		s.stopping = make(chan struct{})
		s.perToken = map[string]int{}
	}
}

// Writer writes a stream's events in one transport. Each call may block
// while the client is slow to read; events pile up in the subscription's
// buffer meanwhile, and the stream ends once it overflows.
type Writer interface {
	// Event writes one event: replayed, synced, or live.
	Event(e instachat.Event) error
	// Heartbeat writes something that keeps the connection's proxies from
	// timing it out, when no event was written for a while.
	Heartbeat() error
}

// Stream is one subscriber's stream, opened and checked but not yet run.
type Stream struct {
	s      *Streamer
	topic  instachat.Topic
	sub    instachat.Subscription
	resume bool
	after  int64 // the resume point
	first  *instachat.ChangesPage
	last   int64 // the last revision written
	once   sync.Once
}

// Open starts a stream of topic: it subscribes first, so that nothing
// committed from then on is missed, then reads the first page of the
// replay (resume) or the current revision. Errors come before anything is
// written: ENOTFOUND for an unknown chat or application, EBADREQUEST for
// an after above the current revision, EUNAVAILABLE over a limit or during
// shutdown. The caller must Close the stream, run or not.
func (s *Streamer) Open(ctx context.Context, topic instachat.Topic, after int64, resume bool) (*Stream, error) {
	if err := s.admit(topic.Token); err != nil {
		return nil, err
	}
	st := &Stream{s: s, topic: topic, resume: resume, after: after, last: after}
	ok := false
	defer func() {
		if !ok {
			st.Close()
		}
	}()
	sub, err := s.Broker.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	st.sub = sub
	q := instachat.ChangesQuery{Topic: topic, After: after, Limit: s.pageSize()}
	if !resume {
		// Only the current revision is wanted; one item is the least a
		// page can hold.
		q.After, q.Limit = 0, 1
	}
	if st.first, err = s.list(ctx, q); err != nil {
		return nil, err
	}
	ok = true
	return st, nil
}

// admit counts a stream in, or refuses it over a limit or once shut down.
func (s *Streamer) admit(token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	select {
	case <-s.stopping:
		return ErrShutdown
	default:
	}
	if s.open >= cmpOr(s.MaxStreams, DefaultMaxStreams) {
		return ErrTooManyStreams
	}
	if s.perToken[token] >= cmpOr(s.MaxStreamsPerToken, DefaultMaxStreamsPerToken) {
		return ErrTooManyTokenStreams
	}
	s.open++
	s.perToken[token]++
	s.wg.Add(1)
	return nil
}

func (s *Streamer) release(token string) {
	s.mu.Lock()
	s.open--
	if s.perToken[token]--; s.perToken[token] == 0 {
		delete(s.perToken, token)
	}
	s.mu.Unlock()
	s.wg.Done()
}

// Streams returns how many streams are open.
func (s *Streamer) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open
}

// Shutdown refuses new streams, ends every open one after the events it
// already received, and waits until they returned or ctx ended.
func (s *Streamer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.init()
	select {
	case <-s.stopping:
	default:
		close(s.stopping)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// list reads a page of changes on a goroutine of its own. A store's read
// (SQLite's above all) grows the stack it runs on to tens of KiB, and a
// stream's goroutine, which waits idle for hours between its reads, would
// keep that stack: with 10,000 streams the idle check alone grew the
// server by about 17 KiB per stream. A short-lived goroutine's stack goes
// back to the pool as it ends.
func (s *Streamer) list(ctx context.Context, q instachat.ChangesQuery) (*instachat.ChangesPage, error) {
	type result struct {
		page *instachat.ChangesPage
		err  error
	}
	done := make(chan result, 1)
	go func() {
		page, err := s.Feeds.ListChanges(ctx, q)
		done <- result{page, err}
	}()
	r := <-done
	return r.page, r.err
}

func (s *Streamer) pageSize() int { return cmpOr(s.PageSize, DefaultPageSize) }

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// Close releases the stream's subscription and its place in the limits.
func (st *Stream) Close() {
	st.once.Do(func() {
		if st.sub != nil {
			st.sub.Close()
		}
		st.s.release(st.topic.Token)
	})
}

// Run writes the stream until it ends and returns why: ctx's error when
// the client left, ErrShutdown, ErrSlowSubscriber when the client fell
// behind, ErrResume, an EUNAVAILABLE of the broker or the store, or the
// writer's error. First the replay — what ListChanges lists after the
// resume point, each page read after the last revision written — then synced at the revision S it
// reached, then every later change as it arrives: S+1, S+2, …, filling
// any revision the broker did not bring from the store. Without a resume
// point it starts with synced at the current revision. Run releases the
// subscription when it returns; the caller then calls Close once the
// transport is closed too, which is what Shutdown waits for.
func (st *Stream) Run(ctx context.Context, w Writer) error {
	defer st.sub.Close()
	if st.resume {
		if err := st.replay(ctx, w); err != nil {
			return err
		}
	} else {
		st.last = st.first.Revision
	}
	st.first = nil
	if err := w.Event(instachat.Event{Event: instachat.EventSynced, Revision: st.last}); err != nil {
		return err
	}
	beat := time.NewTimer(st.heartbeat())
	defer beat.Stop()
	idle := time.NewTimer(st.idleCheck())
	defer idle.Stop()
	for {
		select {
		case e, ok := <-st.sub.Events():
			if !ok {
				return st.sub.Err()
			}
			if err := st.live(ctx, w, e); err != nil {
				return err
			}
			beat.Reset(st.heartbeat())
			idle.Reset(st.idleCheck())
		case <-beat.C:
			if err := w.Heartbeat(); err != nil {
				return err
			}
			beat.Reset(st.heartbeat())
		case <-idle.C:
			before := st.last
			if err := st.fill(ctx, w); instachat.ErrorCode(err) == instachat.ENOTFOUND {
				// Deleted, and its last event lost: the store says so.
				return ErrDeleted
			} else if err != nil {
				return err
			}
			if st.last != before && st.s.Observer.GapFilled != nil {
				st.s.Observer.GapFilled()
			}
			idle.Reset(st.idleCheck())
		case <-ctx.Done():
			return ctx.Err()
		case <-st.s.stopping:
			return st.drain(ctx, w)
		}
	}
}

func (st *Stream) idleCheck() time.Duration {
	if st.s.IdleCheck > 0 {
		return st.s.IdleCheck
	}
	return DefaultIdleCheck
}

func (st *Stream) heartbeat() time.Duration {
	if st.s.Heartbeat > 0 {
		return st.s.Heartbeat
	}
	return DefaultHeartbeat
}

// replay writes the pages of changes after the resume point; the revision
// of the last page is what the stream is synced to.
func (st *Stream) replay(ctx context.Context, w Writer) error {
	var created numberSet
	page := st.first
	for {
		for _, e := range page.Events {
			if err := w.Event(created.relabel(e)); err != nil {
				return err
			}
			st.last = e.Revision
		}
		if !page.More {
			st.last = max(st.last, page.Revision)
			return nil
		}
		var err error
		page, err = st.s.list(ctx, instachat.ChangesQuery{Topic: st.topic, After: st.after, Cursor: st.last, Limit: st.s.pageSize()})
		if err != nil {
			return err
		}
	}
}

// numberSet holds the numbers of the items a replay or a fill wrote as
// created. Pages are read at different moments, so an item listed created
// on one page and changed before the next is listed again, created again
// as far as the store can tell (it was created after the resume point);
// the second time it is an update. Numbers are dense from 1, so a set of
// 64-bit words holds a chat's 100,000 messages in about 12 KiB.
type numberSet map[int64]uint64

// relabel returns e, turned into an update if its item was written as
// created before, and remembers the items it writes as created.
func (s *numberSet) relabel(e instachat.Event) instachat.Event {
	var n int64
	var updated string
	switch {
	case e.Event == instachat.EventMessageCreated && e.Message != nil:
		n, updated = e.Message.Number, instachat.EventMessageUpdated
	case e.Event == instachat.EventChatCreated && e.Chat != nil:
		n, updated = e.Chat.Number, instachat.EventChatUpdated
	default:
		return e
	}
	if *s == nil {
		*s = numberSet{}
	}
	word, bit := n/64, uint64(1)<<(n%64)
	if (*s)[word]&bit != 0 {
		e.Event = updated
		return e
	}
	(*s)[word] |= bit
	return e
}

// live writes e if it is the next revision, drops it if it was written
// already, and fills the gap before it from the store if it is further.
// The last event of a deleted topic is written at once (see final), and
// ends the stream: chat.deleted on a chat's topic, application.deleted on
// any, which the broker brings from the application's DeletionTopic.
func (st *Stream) live(ctx context.Context, w Writer, e instachat.Event) error {
	if e.Event == instachat.EventApplicationDeleted || e.Event == instachat.EventChatDeleted && st.topic.Chat > 0 {
		return st.final(w, e)
	}
	if e.Revision <= st.last {
		return nil
	}
	if e.Revision > st.last+1 {
		if err := st.fill(ctx, w); err != nil {
			return err
		}
		if st.s.Observer.GapFilled != nil {
			st.s.Observer.GapFilled()
		}
		if e.Revision <= st.last {
			return nil
		}
		if e.Revision > st.last+1 {
			// The store does not show yet what the broker brought,
			// which committed changes never do; resuming settles it.
			return ErrResume
		}
	}
	return st.write(w, e)
}

// final writes the last event of a deleted chat or application and returns
// ErrDeleted. Its revision is the deletion's own, one past both the last
// revision written and the revision the event was published at (a chat's
// current revision; none for an application): so its SSE id follows every
// id before it and names no change any feed lists. A client resuming after
// it is answered 404, as any request of what was deleted.
func (st *Stream) final(w Writer, e instachat.Event) error {
	e.Revision = max(e.Revision, st.last) + 1
	if err := w.Event(e); err != nil {
		return err
	}
	st.last = e.Revision
	return ErrDeleted
}

func (st *Stream) write(w Writer, e instachat.Event) error {
	if err := w.Event(e); err != nil {
		return err
	}
	st.last = e.Revision
	if st.s.Observer.Delivered != nil {
		var at time.Time
		switch {
		case e.Message != nil:
			at = e.Message.UpdatedAt
		case e.Chat != nil:
			at = e.Chat.UpdatedAt
		}
		st.s.Observer.Delivered(time.Since(at))
	}
	return nil
}

// fill writes the changes after the last revision written, as the store
// lists them, if they follow one another exactly; a revision missing from
// the list was superseded, and the stream ends so its client resumes.
func (st *Stream) fill(ctx context.Context, w Writer) error {
	after := st.last
	var created numberSet
	for {
		page, err := st.s.list(ctx, instachat.ChangesQuery{Topic: st.topic, After: after, Cursor: st.last, Limit: st.s.pageSize()})
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			if e.Revision != st.last+1 {
				return ErrResume
			}
			if err := st.write(w, created.relabel(e)); err != nil {
				return err
			}
		}
		if !page.More {
			return nil
		}
	}
}

// drain writes, at shutdown, the next events the subscription holds
// already, then ends the stream.
func (st *Stream) drain(ctx context.Context, w Writer) error {
	for {
		select {
		case e, ok := <-st.sub.Events():
			if !ok || e.Revision > st.last+1 {
				return ErrShutdown
			}
			if e.Revision == st.last+1 {
				if err := st.write(w, e); err != nil {
					return err
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		default:
			return ErrShutdown
		}
	}
}
