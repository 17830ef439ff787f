// Package feedtest is a change feed kept in memory, with the semantics of
// instachat.Feeds, for testing what consumes feeds (streams) apart from
// the stores that implement them (tested by conformance.TestFeeds).
package feedtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/instachat/instachat"
)

// Chat is one chat's feed: messages created and edited, each change taking
// the next revision. Changes made through it return the event a store
// would publish once committed; publishing them (or not) is the test's.
type Chat struct {
	Topic instachat.Topic

	mu       sync.Mutex
	revision int64
	messages map[int64]*instachat.Message // tombstones included
	deleted  bool                         // the chat itself
	// Reads counts ListChanges calls, so a test can tell replay and gap
	// fills happened.
	Reads int
}

var _ instachat.Feeds = (*Chat)(nil)

// NewChat returns an empty chat feed of topic.
func NewChat(topic instachat.Topic) *Chat {
	return &Chat{Topic: topic, messages: map[int64]*instachat.Message{}}
}

// Create adds message number n at the next revision.
func (c *Chat) Create(n int64, body string) instachat.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.revision++
	at := time.Now().UTC()
	m := &instachat.Message{Token: c.Topic.Token, Chat: c.Topic.Chat, Number: n, Body: body,
		Revision: c.revision, CreatedRevision: c.revision, CreatedAt: at, UpdatedAt: at}
	c.messages[n] = m
	mc := *m
	return instachat.Event{Event: instachat.EventMessageCreated, Revision: c.revision, Message: &mc}
}

// Edit replaces the body of message n at the next revision.
func (c *Chat) Edit(n int64, body string) instachat.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.messages[n]
	if m == nil {
		panic(fmt.Sprintf("feedtest: edit of message %d, never created", n))
	}
	c.revision++
	m.Body, m.Revision, m.UpdatedAt = body, c.revision, time.Now().UTC()
	mc := *m
	return instachat.Event{Event: instachat.EventMessageUpdated, Revision: c.revision, Message: &mc}
}

// Delete erases message n at the next revision, leaving its tombstone.
func (c *Chat) Delete(n int64) instachat.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.messages[n]
	if m == nil || m.DeletedAt != nil {
		panic(fmt.Sprintf("feedtest: delete of message %d, not there", n))
	}
	c.revision++
	at := time.Now().UTC()
	m.Body, m.Revision, m.DeletedAt = "", c.revision, &at
	return instachat.MessageEvent(m, 0)
}

// DeleteChat deletes the chat: its feed answers not found from now on. It
// returns the last event a store publishes on the chat's topic.
func (c *Chat) DeleteChat() instachat.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deleted = true
	at := time.Now().UTC()
	return instachat.Event{Event: instachat.EventChatDeleted, Revision: c.revision,
		Chat: &instachat.Chat{Token: c.Topic.Token, Number: c.Topic.Chat, DeletedAt: &at}}
}

// Revision is the feed's current revision.
func (c *Chat) Revision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revision
}

// Messages returns the messages by number, in their latest state.
func (c *Chat) Messages() map[int64]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int64]string, len(c.messages))
	for n, m := range c.messages {
		if m.DeletedAt == nil {
			out[n] = m.Body
		}
	}
	return out
}

// ListChanges implements instachat.Feeds for c's topic.
func (c *Chat) ListChanges(_ context.Context, q instachat.ChangesQuery) (*instachat.ChangesPage, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Reads++
	if q.Topic != c.Topic || c.deleted {
		return nil, instachat.ErrChatNotFound
	}
	if q.After < 0 || q.After > c.revision {
		return nil, instachat.Errorf(instachat.EBADREQUEST, "after is %d, above the feed's current revision %d", q.After, c.revision)
	}
	from := max(q.After, q.Cursor)
	var items []*instachat.Message
	for _, m := range c.messages {
		// A tombstone only for a client that may hold its message.
		if m.Revision > from && (m.DeletedAt == nil || m.CreatedRevision <= q.After) {
			items = append(items, m)
		}
	}
	slices.SortFunc(items, func(a, b *instachat.Message) int { return int(a.Revision - b.Revision) })
	page := &instachat.ChangesPage{Revision: c.revision}
	if len(items) > q.Limit {
		items, page.More = items[:q.Limit], true
	}
	for _, m := range items {
		mc := *m
		page.Events = append(page.Events, instachat.MessageEvent(&mc, q.After))
	}
	return page, nil
}

// Client is what a client of the feed holds: the messages by number,
// applying each event as an upsert, and what it checked on the way.
type Client struct {
	Messages map[int64]string
	Last     int64 // the last revision received, where it resumes
	Synced   bool  // a synced arrived on the current connection
	Created  map[int64]bool
	Deleted  bool // the chat.deleted or application.deleted that ends the stream arrived
}

// NewClient returns a client that holds nothing yet.
func NewClient() *Client {
	return &Client{Messages: map[int64]string{}, Created: map[int64]bool{}}
}

// Clone returns a copy of cl that changes apart from it: a second client
// that loaded the same state.
func (cl *Client) Clone() *Client {
	c := *cl
	c.Messages, c.Created = maps.Clone(cl.Messages), maps.Clone(cl.Created)
	return &c
}

// Apply takes one event of a stream and returns an error if it breaks the
// guarantee: a revision not above the last (the last event of a deleted
// chat or application included), a skipped revision after synced,
// message.created twice for a number.
func (cl *Client) Apply(e instachat.Event) error {
	if cl.Deleted {
		return fmt.Errorf("%s at %d after the chat was deleted", e.Event, e.Revision)
	}
	if e.Event == instachat.EventChatDeleted || e.Event == instachat.EventApplicationDeleted {
		// The last event: its revision is one of its own, so that a
		// client keeping the last SSE id never holds one of two events.
		if e.Revision <= cl.Last {
			return fmt.Errorf("%s at %d, not above the last revision received, %d", e.Event, e.Revision, cl.Last)
		}
		cl.Deleted, cl.Messages, cl.Last = true, map[int64]string{}, e.Revision
		return nil
	}
	if e.Event == instachat.EventSynced {
		if e.Revision < cl.Last {
			return fmt.Errorf("synced at %d after receiving %d", e.Revision, cl.Last)
		}
		cl.Synced, cl.Last = true, e.Revision
		return nil
	}
	if e.Revision <= cl.Last {
		return fmt.Errorf("revision %d received after %d", e.Revision, cl.Last)
	}
	if cl.Synced && e.Revision != cl.Last+1 {
		return fmt.Errorf("revision %d after %d: a revision skipped after synced", e.Revision, cl.Last)
	}
	if e.Message == nil {
		return fmt.Errorf("event %s at %d without a message", e.Event, e.Revision)
	}
	if e.Event == instachat.EventMessageCreated {
		if cl.Created[e.Message.Number] {
			return fmt.Errorf("message.created twice for message %d", e.Message.Number)
		}
		cl.Created[e.Message.Number] = true
	}
	if e.Event == instachat.EventMessageDeleted {
		delete(cl.Messages, e.Message.Number)
	} else {
		cl.Messages[e.Message.Number] = e.Message.Body
	}
	cl.Last = e.Revision
	return nil
}

// Disconnect is the end of one connection: the next starts unsynced.
func (cl *Client) Disconnect() { cl.Synced = false }

// Diff describes how got differs from want, "" if not at all.
func Diff(got, want map[int64]string) string {
	for _, n := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[n]; !ok {
			return fmt.Sprintf("message %d missing (want %q)", n, want[n])
		} else if g != want[n] {
			return fmt.Sprintf("message %d is %q, want %q", n, g, want[n])
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			return fmt.Sprintf("message %d held but not listed", n)
		}
	}
	return ""
}

// Names spells events "message.created 3@5": event, its message's or its
// chat's number, revision; for comparing a page of a feed with a list.
func Names(events []instachat.Event) []string {
	names := make([]string, len(events))
	for i, e := range events {
		switch {
		case e.Message != nil:
			names[i] = fmt.Sprintf("%s %d@%d", e.Event, e.Message.Number, e.Revision)
		case e.Chat != nil:
			names[i] = fmt.Sprintf("%s %d@%d", e.Event, e.Chat.Number, e.Revision)
		default:
			names[i] = e.Event
		}
	}
	return names
}
