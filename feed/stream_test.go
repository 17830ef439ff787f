package feed_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/feed"
	"github.com/instachat/instachat/inmem"
	"github.com/instachat/instachat/internal/feedtest"
)

// recorder is a Writer that applies what it is written to a client, and
// stops the stream (cancelling it) after a number of events if asked.
type recorder struct {
	client    *feedtest.Client
	events    []instachat.Event
	beats     int
	stopAfter int   // 0: never
	stopAt    int64 // 0: never; else once the client reached this revision
	cancel    context.CancelFunc
	block     chan struct{} // when set, each event waits for it
	onEvent   func(instachat.Event)
	synced    chan int64 // told each synced revision
}

func newRecorder() *recorder {
	return &recorder{client: feedtest.NewClient(), synced: make(chan int64, 100)}
}

func (r *recorder) Event(e instachat.Event) error {
	if r.block != nil {
		<-r.block
	}
	if err := r.client.Apply(e); err != nil {
		return fmt.Errorf("guarantee broken: %w", err)
	}
	r.events = append(r.events, e)
	if r.onEvent != nil {
		r.onEvent(e)
	}
	if e.Event == instachat.EventSynced {
		r.synced <- e.Revision
	}
	if r.stopAfter > 0 && len(r.events) >= r.stopAfter || r.stopAt > 0 && r.client.Last >= r.stopAt {
		r.cancel()
	}
	return nil
}

func (r *recorder) Heartbeat() error { r.beats++; return nil }

// setup is a chat feed with n messages, its broker and a streamer.
func setup(t *testing.T, n int) (*feedtest.Chat, *inmem.Broker, *feed.Streamer) {
	topic := instachat.Topic{Token: instachat.NewToken(), Chat: 1}
	chat := feedtest.NewChat(topic)
	for i := 1; i <= n; i++ {
		chat.Create(int64(i), fmt.Sprintf("m%d", i))
	}
	b := inmem.NewBroker(inmem.BrokerOptions{})
	return chat, b, &feed.Streamer{Feeds: chat, Broker: b, PageSize: 3}
}

// run opens and runs a stream in the background; wait returns Run's error.
func run(t *testing.T, s *feed.Streamer, topic instachat.Topic, after int64, resume bool, r *recorder) (wait func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	st, err := s.Open(ctx, topic, after, resume)
	if err != nil {
		cancel()
		t.Fatalf("open after %d: %v", after, err)
	}
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx, r); st.Close() }()
	return func() error {
		select {
		case err := <-done:
			cancel()
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("the stream did not end")
			return nil
		}
	}
}

func waitSynced(t *testing.T, r *recorder) int64 {
	t.Helper()
	select {
	case s := <-r.synced:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no synced")
		return 0
	}
}

func publish(t *testing.T, b instachat.Broker, topic instachat.Topic, es ...instachat.Event) {
	t.Helper()
	if err := b.Publish(t.Context(), topic, es...); err != nil {
		t.Fatal(err)
	}
}

func TestReplayThenSyncedThenLive(t *testing.T) {
	chat, b, s := setup(t, 10)
	chat.Edit(2, "m2 edited") // 11
	chat.Edit(5, "m5 edited") // 12
	chat.Edit(2, "m2 again")  // 13: supersedes 11
	want, _ := chat.ListChanges(t.Context(), instachat.ChangesQuery{Topic: chat.Topic, After: 4, Limit: 100})
	r := newRecorder()
	r.stopAt = 16
	// The client holds the chat as it was at 4.
	for n := int64(1); n <= 4; n++ {
		r.client.Messages[n], r.client.Created[n] = fmt.Sprintf("m%d", n), true
	}
	r.client.Last = 4
	wait := run(t, s, chat.Topic, 4, true, r)
	if got := waitSynced(t, r); got != 13 {
		t.Fatalf("synced at %d, want 13", got)
	}
	// The replay is exactly the listing, read three at a time.
	if len(r.events) != len(want.Events)+1 {
		t.Fatalf("replayed %d events, want %d", len(r.events)-1, len(want.Events))
	}
	for i, e := range want.Events {
		if g := r.events[i]; g.Event != e.Event || g.Revision != e.Revision || g.Message.Number != e.Message.Number || g.Message.Body != e.Message.Body {
			t.Errorf("replayed %d: %s@%d #%d, want %s@%d #%d", i, g.Event, g.Revision, g.Message.Number, e.Event, e.Revision, e.Message.Number)
		}
	}
	// Message 2 was created before 4: it replays as updated.
	if e := r.events[len(r.events)-2]; e.Event != instachat.EventMessageUpdated || e.Message.Number != 2 || e.Revision != 13 {
		t.Errorf("last replayed %s@%d #%d, want message.updated@13 #2", e.Event, e.Revision, e.Message.Number)
	}
	reads := chat.Reads
	publish(t, b, chat.Topic, chat.Create(11, "m11"), chat.Edit(11, "m11 edited"))
	publish(t, b, chat.Topic, chat.Create(12, "m12"))
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run ended with %v, want context.Canceled", err)
	}
	live := r.events[len(want.Events)+1:]
	if len(live) != 3 || live[0].Event != instachat.EventMessageCreated ||
		live[1].Event != instachat.EventMessageUpdated || live[1].Message.Body != "m11 edited" {
		t.Fatalf("live events %+v, want created, updated of 11, created of 12", live)
	}
	if chat.Reads != reads {
		t.Errorf("the store was read %d times for consecutive live events", chat.Reads-reads)
	}
	if d := feedtest.Diff(r.client.Messages, chat.Messages()); d != "" {
		t.Fatal(d)
	}
}

// TestChangedBetweenPagesComesAsUpdated edits a message the replay listed
// as created on its first page before the second page is read: it comes
// again in its new state, as updated, never created twice.
func TestChangedBetweenPagesComesAsUpdated(t *testing.T) {
	chat, _, s := setup(t, 4)
	s.PageSize = 2
	r := newRecorder()
	r.stopAt = 5
	r.onEvent = func(e instachat.Event) {
		if e.Revision == 1 {
			chat.Edit(1, "m1 edited") // 5, while page one is written
		}
	}
	wait := run(t, s, chat.Topic, 0, true, r)
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run ended with %v: ", err)
	}
	var got []string
	for _, e := range r.events {
		got = append(got, fmt.Sprintf("%s@%d", e.Event, e.Revision))
	}
	want := "[message.created@1 message.created@2 message.created@3 message.created@4 message.updated@5 synced@5]"
	if fmt.Sprint(got) != want {
		t.Fatalf("replay %v, want %s", got, want)
	}
}

func TestWithoutResumePointStartsAtCurrent(t *testing.T) {
	chat, b, s := setup(t, 5)
	r := newRecorder()
	r.stopAfter = 2
	wait := run(t, s, chat.Topic, 0, false, r)
	if got := waitSynced(t, r); got != 5 {
		t.Fatalf("synced at %d, want 5", got)
	}
	publish(t, b, chat.Topic, chat.Create(6, "m6"))

	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if len(r.events) != 2 || r.events[0].Event != instachat.EventSynced || r.events[1].Revision != 6 {
		t.Fatalf("events %+v, want synced@5 then 6", r.events)
	}
}

func TestGapFilledFromStore(t *testing.T) {
	chat, b, s := setup(t, 3)
	var fills atomic.Int32
	s.Observer.GapFilled = func() { fills.Add(1) }
	r := newRecorder()
	r.stopAfter = 4 // synced, 4, 5, 6
	wait := run(t, s, chat.Topic, 0, false, r)
	waitSynced(t, r)
	e4, e5, e6 := chat.Create(4, "m4"), chat.Create(5, "m5"), chat.Create(6, "m6")
	publish(t, b, chat.Topic, e4)
	_ = e5 // lost between commit and publish
	publish(t, b, chat.Topic, e6)
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for i, want := range []int64{3, 4, 5, 6} {
		if r.events[i].Revision != want {
			t.Fatalf("event %d at %d, want %d", i, r.events[i].Revision, want)
		}
	}
	if fills.Load() != 1 {
		t.Errorf("%d gap fills, want 1", fills.Load())
	}
}

// TestIdleStreamFindsALostLastPublish loses the publish of the last change:
// no later event shows the gap, and the idle check finds it in the store.
func TestIdleStreamFindsALostLastPublish(t *testing.T) {
	chat, _, s := setup(t, 2)
	s.IdleCheck = 20 * time.Millisecond
	r := newRecorder()
	r.stopAt = 4
	wait := run(t, s, chat.Topic, 0, false, r)
	waitSynced(t, r)
	chat.Create(3, "m3") // committed, never published
	chat.Edit(1, "m1 edited")
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run ended with %v; the stream never found revisions 3 and 4", err)
	}
	if got := r.events[1:]; len(got) != 2 || got[0].Revision != 3 || got[1].Event != instachat.EventMessageUpdated {
		t.Fatalf("events after synced %+v, want created@3 and updated@4", got)
	}
}

func TestSupersededGapEndsStreamAndResumeConverges(t *testing.T) {
	chat, b, s := setup(t, 3)
	r := newRecorder()
	wait := run(t, s, chat.Topic, 0, false, r)
	waitSynced(t, r)
	chat.Create(4, "m4")                                 // 4: lost
	publish(t, b, chat.Topic, chat.Edit(4, "m4 edited")) // 5: supersedes 4
	if err := wait(); !errors.Is(err, feed.ErrResume) {
		t.Fatalf("Run ended with %v, want ErrResume", err)
	}
	if r.client.Last != 3 {
		t.Fatalf("last revision %d, want 3: nothing of the gap", r.client.Last)
	}
	r.client.Disconnect()
	r.events = nil
	wait = run(t, s, chat.Topic, r.client.Last, true, r)
	if got := waitSynced(t, r); got != 5 {
		t.Fatalf("synced at %d after resuming, want 5", got)
	}
	r.cancel()
	wait()
	// Message 4 arrives once, as created, in its latest state.
	if len(r.events) != 2 || r.events[0].Event != instachat.EventMessageCreated || r.events[0].Message.Body != "m4 edited" {
		t.Fatalf("resumed with %+v", r.events)
	}
}

func TestSlowStreamEndsOthersGoOn(t *testing.T) {
	chat, _, s := setup(t, 0)
	b := inmem.NewBroker(inmem.BrokerOptions{Buffer: 4})
	s.Broker = b
	slow, fast := newRecorder(), newRecorder()
	slow.block = make(chan struct{})
	go func() { slow.block <- struct{}{} }() // lets synced through
	fast.stopAfter = 21
	waitSlow := run(t, s, chat.Topic, 0, false, slow)
	waitFast := run(t, s, chat.Topic, 0, false, fast)
	waitSynced(t, slow)
	waitSynced(t, fast)
	for i := int64(1); i <= 20; i++ {
		publish(t, b, chat.Topic, chat.Create(i, "m"))
		// Give fast the chance to keep up, as a live client does.
		time.Sleep(time.Millisecond)
	}
	if err := waitFast(); !errors.Is(err, context.Canceled) {
		t.Fatalf("fast stream ended with %v", err)
	}
	close(slow.block)
	if err := waitSlow(); !errors.Is(err, instachat.ErrSlowSubscriber) {
		t.Fatalf("slow stream ended with %v, want ErrSlowSubscriber", err)
	}
	if fast.client.Last != 20 {
		t.Fatalf("fast received up to %d, want 20", fast.client.Last)
	}
	if s.Streams() != 0 {
		t.Fatalf("%d streams still counted", s.Streams())
	}
}

func TestOpenErrorsBeforeAnything(t *testing.T) {
	chat, _, s := setup(t, 2)
	_, err := s.Open(t.Context(), instachat.Topic{Token: chat.Topic.Token, Chat: 9}, 0, true)
	if instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("unknown chat: %v, want ENOTFOUND", err)
	}
	_, err = s.Open(t.Context(), chat.Topic, 3, true)
	if instachat.ErrorCode(err) != instachat.EBADREQUEST {
		t.Errorf("after above the current revision: %v, want EBADREQUEST", err)
	}
	if s.Streams() != 0 {
		t.Errorf("%d streams counted after failed opens", s.Streams())
	}
}

func TestLimits(t *testing.T) {
	chat, _, s := setup(t, 0)
	s.MaxStreams, s.MaxStreamsPerToken = 3, 2
	other := instachat.Topic{Token: instachat.NewToken(), Chat: 1}
	s.Feeds = multiFeeds{chat.Topic: chat, other: feedtest.NewChat(other)}
	a, err := s.Open(t.Context(), chat.Topic, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Open(t.Context(), chat.Topic, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(t.Context(), chat.Topic, 0, false); !errors.Is(err, feed.ErrTooManyTokenStreams) {
		t.Fatalf("third stream of one token: %v, want ErrTooManyTokenStreams", err)
	}
	c, err := s.Open(t.Context(), other, 0, false)
	if err != nil {
		t.Fatalf("another token under the process limit: %v", err)
	}
	if _, err := s.Open(t.Context(), other, 0, false); !errors.Is(err, feed.ErrTooManyStreams) {
		t.Fatalf("fourth stream: %v, want ErrTooManyStreams", err)
	}
	a.Close()
	a.Close()
	if _, err := s.Open(t.Context(), chat.Topic, 0, false); err != nil {
		t.Fatalf("after one closed: %v", err)
	}
	b.Close()
	c.Close()
}

type multiFeeds map[instachat.Topic]*feedtest.Chat

func (m multiFeeds) ListChanges(ctx context.Context, q instachat.ChangesQuery) (*instachat.ChangesPage, error) {
	return m[q.Topic].ListChanges(ctx, q)
}

func TestShutdownEndsStreamsAndRefusesNew(t *testing.T) {
	chat, b, s := setup(t, 1)
	r := newRecorder()
	wait := run(t, s, chat.Topic, 0, false, r)
	waitSynced(t, r)
	publish(t, b, chat.Topic, chat.Create(2, "m2"))
	if err := s.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := wait(); !errors.Is(err, feed.ErrShutdown) {
		t.Fatalf("Run ended with %v, want ErrShutdown", err)
	}
	if _, err := s.Open(t.Context(), chat.Topic, 0, false); !errors.Is(err, feed.ErrShutdown) {
		t.Fatalf("open after shutdown: %v", err)
	}
}

func TestHeartbeatWhenIdle(t *testing.T) {
	chat, _, s := setup(t, 0)
	s.Heartbeat = 5 * time.Millisecond
	r := newRecorder()
	wait := run(t, s, chat.Topic, 0, false, r)
	waitSynced(t, r)
	time.Sleep(60 * time.Millisecond)
	r.cancel()
	wait()
	if r.beats < 2 {
		t.Fatalf("%d heartbeats in 60 ms at one per 5 ms", r.beats)
	}
}

// TestRandomDisconnectsConverge runs writers that create and edit while
// publishing most changes, some out of order, some never; clients stop at
// random moments and resume from their last revision. At the end each
// holds exactly the feed's messages, and Apply checked on the way that no
// revision came twice and none was skipped after synced.
func TestRandomDisconnectsConverge(t *testing.T) {
	chat, b, s := setup(t, 0)
	s.PageSize = 7
	const writes = 600
	var mu sync.Mutex // orders commit and publish decisions
	done := make(chan struct{})
	go func() {
		defer close(done)
		rng := rand.New(rand.NewPCG(1, 2))
		var held []instachat.Event // published late, after the next
		for i := range writes {
			mu.Lock()
			var e instachat.Event
			n := int64(len(chat.Messages()))
			if n == 0 || rng.IntN(3) > 0 {
				e = chat.Create(n+1, fmt.Sprintf("m%d", n+1))
			} else {
				e = chat.Edit(1+rng.Int64N(n), fmt.Sprintf("edit %d", i))
			}
			mu.Unlock()
			switch rng.IntN(10) {
			case 0: // lost
			case 1:
				held = append(held, e)
			default:
				b.Publish(context.Background(), chat.Topic, e)
				b.Publish(context.Background(), chat.Topic, held...)
				held = nil
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		// A last change, surely published, shows every stream the end.
		mu.Lock()
		e := chat.Create(int64(len(chat.Messages())+1), "last")
		mu.Unlock()
		b.Publish(context.Background(), chat.Topic, e)
	}()
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 9))
			client := feedtest.NewClient()
			for {
				r := &recorder{client: client, synced: make(chan int64, 1000), stopAfter: 1 + rng.IntN(80)}
				finished := false
				select {
				case <-done:
					// The feed is final: stay until caught up.
					finished, r.stopAfter, r.stopAt = true, 0, writes+1
				default:
				}
				// A stream that outlives the writers stops at its
				// deadline if not at its count.
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				if finished {
					ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
				}
				r.cancel = cancel
				st, err := s.Open(ctx, chat.Topic, client.Last, true)
				if err != nil {
					t.Errorf("client %d: open after %d: %v", c, client.Last, err)
					cancel()
					return
				}
				err = st.Run(ctx, r)
				st.Close()
				cancel()
				if !errors.Is(err, context.Canceled) && !errors.Is(err, feed.ErrResume) && !(errors.Is(err, context.DeadlineExceeded) && !finished) {
					t.Errorf("client %d: stream ended with %v", c, err)
					return
				}
				client.Disconnect()
				if finished && client.Last == writes+1 {
					if d := feedtest.Diff(client.Messages, chat.Messages()); d != "" {
						t.Errorf("client %d at %d (feed at %d): %s", c, client.Last, chat.Revision(), d)
					}
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestDeletesStreamAndReplay: a deletion comes live as message.deleted and
// the client drops the message; a client resuming from before the
// message's creation is told nothing of it, one resuming after is told of
// the deletion; all converge.
func TestDeletesStreamAndReplay(t *testing.T) {
	chat, b, s := setup(t, 4)
	r := newRecorder()
	for n := int64(1); n <= 4; n++ { // the client loaded the chat, then subscribed
		r.client.Messages[n] = fmt.Sprintf("m%d", n)
	}
	r.stopAt = 6
	wait := run(t, s, chat.Topic, 0, false, r)
	waitSynced(t, r)
	publish(t, b, chat.Topic, chat.Delete(2))
	publish(t, b, chat.Topic, chat.Delete(4))
	if err := wait(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if got := r.events[len(r.events)-1]; got.Event != instachat.EventMessageDeleted || got.Message.Number != 4 || got.Message.Body != "" {
		t.Errorf("last live event %+v, want message.deleted of 4 without its body", got)
	}
	if d := feedtest.Diff(r.client.Messages, chat.Messages()); d != "" {
		t.Errorf("live client: %s", d)
	}
	for _, after := range []int64{0, 1, 3, 5} {
		rr := newRecorder()
		if after > 0 {
			// The client holds what it had at after.
			for n := int64(1); n <= min(after, 4); n++ {
				rr.client.Messages[n] = fmt.Sprintf("m%d", n)
			}
			if after == 5 {
				delete(rr.client.Messages, 2)
			}
		}
		rr.client.Last = after
		rr.stopAt = 6
		wait := run(t, s, chat.Topic, after, true, rr)
		waitSynced(t, rr)
		if err := wait(); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		if d := feedtest.Diff(rr.client.Messages, chat.Messages()); d != "" {
			t.Errorf("client resuming after %d: %s", after, d)
		}
		for _, e := range rr.events {
			if e.Event == instachat.EventMessageDeleted && e.Message.CreatedRevision > after {
				t.Errorf("client resuming after %d told of the deletion of %d, created after it", after, e.Message.Number)
			}
		}
	}
}

// TestDeletedChatEndsItsStreams: the chat.deleted its deletion publishes is
// the stream's last event; a deletion whose publish was lost ends the
// stream at its next idle check.
func TestDeletedChatEndsItsStreams(t *testing.T) {
	chat, b, s := setup(t, 2)
	r := newRecorder()
	wait := run(t, s, chat.Topic, 0, false, r)
	waitSynced(t, r)
	publish(t, b, chat.Topic, chat.DeleteChat())
	if err := wait(); !errors.Is(err, feed.ErrDeleted) {
		t.Fatalf("Run ended with %v, want ErrDeleted", err)
	}
	if last := r.events[len(r.events)-1]; last.Event != instachat.EventChatDeleted || !r.client.Deleted || last.Revision != 3 {
		t.Errorf("last event %+v, want chat.deleted at 3, the revision after the chat's last", last)
	}

	chat, _, s = setup(t, 2)
	s.IdleCheck = 20 * time.Millisecond
	r = newRecorder()
	wait = run(t, s, chat.Topic, 0, false, r)
	waitSynced(t, r)
	chat.DeleteChat() // committed, never published
	if err := wait(); !errors.Is(err, feed.ErrDeleted) {
		t.Fatalf("Run of a chat deleted without a publish ended with %v, want ErrDeleted", err)
	}
	if _, err := s.Open(t.Context(), chat.Topic, 0, true); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("Open of a deleted chat's stream: %v, want ENOTFOUND", err)
	}
}

// TestDeletedApplicationEndsItsChatsStreams: the application.deleted
// published on the application's DeletionTopic ends the streams of its
// chats at once, long before their idle check, with a last event at a
// revision of its own; streams of other applications go on.
func TestDeletedApplicationEndsItsChatsStreams(t *testing.T) {
	chat, b, s := setup(t, 2)
	s.IdleCheck = time.Hour
	other := feedtest.NewChat(instachat.Topic{Token: instachat.NewToken(), Chat: 1})
	r, ro := newRecorder(), newRecorder()
	ro.stopAt = 1
	wait := run(t, s, chat.Topic, 1, true, r)
	waitOther := run(t, &feed.Streamer{Feeds: other, Broker: b}, other.Topic, 0, false, ro)
	waitSynced(t, r)
	waitSynced(t, ro)
	start := time.Now()
	publish(t, b, instachat.DeletionTopic(chat.Topic.Token), instachat.Event{Event: instachat.EventApplicationDeleted})
	if err := wait(); !errors.Is(err, feed.ErrDeleted) {
		t.Fatalf("Run ended with %v, want ErrDeleted", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the stream ended %v after the deletion", d)
	}
	if last := r.events[len(r.events)-1]; last.Event != instachat.EventApplicationDeleted || last.Revision != 3 {
		t.Errorf("last event %+v, want application.deleted at 3, after synced at 2", last)
	}
	publish(t, b, other.Topic, other.Create(1, "still here"))
	if err := waitOther(); !errors.Is(err, context.Canceled) {
		t.Errorf("another application's stream ended with %v", err)
	}
}

// deepFeeds reads its changes after using deep stack, as SQLite's reads do.
type deepFeeds struct{ instachat.Feeds }

func (d deepFeeds) ListChanges(ctx context.Context, q instachat.ChangesQuery) (*instachat.ChangesPage, error) {
	return deepList(ctx, d.Feeds, q, 64)
}

//go:noinline
func deepList(ctx context.Context, f instachat.Feeds, q instachat.ChangesQuery, depth int) (*instachat.ChangesPage, error) {
	var pad [1024]byte // 64 frames of 1 KiB: a 64 KiB stack
	pad[depth%len(pad)] = byte(depth)
	if depth > 0 {
		p, err := deepList(ctx, f, q, depth-1)
		if pad[depth%len(pad)] != byte(depth) {
			panic("unreachable")
		}
		return p, err
	}
	return f.ListChanges(ctx, q)
}

// TestIdleStreamsKeepSmallStacks: the store's read at open (and likewise
// at each idle check) does not leave its stack on the stream's goroutine, which
// then waits idle with 10,000 others. Before the reads ran on goroutines
// of their own, 200 streams held at least 200 × 64 KiB of stack.
func TestIdleStreamsKeepSmallStacks(t *testing.T) {
	chat, _, s := setup(t, 1)
	s.Feeds, s.MaxStreamsPerToken = deepFeeds{chat}, 1000
	const n = 200
	stacks := func() uint64 {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	before := stacks()
	var waits []func() error
	for range n {
		r := newRecorder()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { // as a server's handler does: open, then run
			st, err := s.Open(ctx, chat.Topic, 0, false)
			if err != nil {
				r.synced <- -1
				done <- err
				return
			}
			defer st.Close()
			done <- st.Run(ctx, r)
		}()
		if <-r.synced < 0 { // else the stream waits for its next event
			t.Fatal(<-done)
		}
		waits = append(waits, func() error { cancel(); return <-done })
	}
	// Also frees the stacks of goroutines that ended, and halves those
	// using under a quarter of theirs: a 64 KiB stack stays 32 KiB.
	runtime.GC()
	grown := int64(stacks()) - int64(before)
	for _, wait := range waits {
		wait()
	}
	if limit := int64(n * 24 << 10); grown > limit {
		t.Errorf("%d idle streams grew the stacks by %d KiB, %d KiB each; want under 24 KiB each", n, grown>>10, grown/n>>10)
	}
}
