package instachat

import "context"

// ErrSlowSubscriber ends a subscription whose buffer overflowed: the client
// resumes from the last revision it received and loses nothing.
var ErrSlowSubscriber = Errorf(EUNAVAILABLE, "subscriber fell behind the feed; resume from the last revision received")

// Event names of the change feeds. A chat's feed carries message events, an
// application's feed carries chat events; Synced is sent by streams only.
const (
	EventMessageCreated = "message.created"
	EventMessageUpdated = "message.updated"
	EventMessageDeleted = "message.deleted"
	EventChatCreated    = "chat.created"
	EventChatUpdated    = "chat.updated"
	EventChatDeleted    = "chat.deleted"
	EventSynced         = "synced"
	// EventApplicationDeleted is the last event of a deleted application's
	// stream; chat.deleted, on a chat's own feed, the last of the chat's.
	// Neither is listed by changes, whose feed answers not found then.
	EventApplicationDeleted = "application.deleted"
)

// Event is one committed change, the same JSON object in every transport
// (changes pages, Server-Sent Events, WebSocket frames). Revision is the
// revision of the feed it belongs to: the chat's for message events, the
// application's for chat events. Exactly one of Message and Chat is set,
// except for Synced, which carries neither.
type Event struct {
	Event    string   `json:"event"`
	Revision int64    `json:"revision"`
	Message  *Message `json:"message,omitempty"`
	Chat     *Chat    `json:"chat,omitempty"`
}

// Topic names one feed: a chat's (Chat > 0) or an application's (Chat == 0);
// or, with Chat DeletionChat, the application's deletion (DeletionTopic).
type Topic struct {
	Token string
	Chat  int64
}

// DeletionChat is the Chat of a DeletionTopic, which no chat has.
const DeletionChat = -1

// DeletionTopic is the broker topic of the application's deletion: what is
// published on it reaches the subscribers of every topic of the
// application, its own feed's and each of its chats', on every process (see
// Broker), so that application.deleted, published once, ends every stream
// of it at once. No store feed lists it.
func DeletionTopic(token string) Topic { return Topic{Token: token, Chat: DeletionChat} }

// ChangesQuery asks a store for one page of a feed's changes after the
// revision After, in revision order, each item once in its latest state.
// Cursor is the last revision of the previous page (0 for the first page):
// the page holds items whose latest revision is above max(After, Cursor).
// An item created after After is listed as created, otherwise as updated.
// Limit is at least 1.
type ChangesQuery struct {
	Topic  Topic
	After  int64
	Cursor int64
	Limit  int
}

// Validate returns EBADREQUEST for a query no feed can answer: a negative
// revision or chat number, a limit below 1.
func (q ChangesQuery) Validate() error {
	switch {
	case q.After < 0:
		return Errorf(EBADREQUEST, "after must be a revision, 0 or more")
	case q.Cursor < 0:
		return Errorf(EBADREQUEST, "cursor is not valid")
	case q.Limit < 1:
		return Errorf(EBADREQUEST, "limit must be at least 1")
	case q.Topic.Chat < 0:
		return ErrChatNotFound
	}
	return nil
}

// CheckRevision returns EBADREQUEST when the query resumes after a revision
// the feed, now at current, has not reached: the client holds a state the
// server never had (another deployment's, or a restored backup's), and
// only a full reload mends that.
func (q ChangesQuery) CheckRevision(current int64) error {
	if q.After > current {
		return Errorf(EBADREQUEST, "after is %d, above the feed's current revision %d", q.After, current)
	}
	return nil
}

// MessageEvent is the chat feed's item for m in its latest state, listed
// after the revision after: created if m was created after it.
//
// A tombstone is message.deleted; a store lists one only when the message
// was created at or before after, since a client resuming from after a
// message's creation never held it.
func MessageEvent(m *Message, after int64) Event {
	name := EventMessageUpdated
	if m.DeletedAt != nil {
		return Event{Event: EventMessageDeleted, Revision: m.Revision, Message: m.Tombstone()}
	}
	if m.CreatedRevision > after {
		name = EventMessageCreated
	}
	return Event{Event: name, Revision: m.Revision, Message: m}
}

// ChatEvent is the application feed's item for c in its latest state,
// listed after the revision after: created if c was created after it.
// A tombstone is chat.deleted, listed as MessageEvent lists a message's.
func ChatEvent(c *Chat, after int64) Event {
	name := EventChatUpdated
	if c.DeletedAt != nil {
		name = EventChatDeleted
	} else if c.CreatedAppRevision > after {
		name = EventChatCreated
	}
	return Event{Event: name, Revision: c.AppRevision, Chat: c}
}

// ChangesPage is one page of a feed: Events in strictly increasing revision
// order, Revision the feed's current revision when the page was read, and
// More whether items above the last listed revision remain.
type ChangesPage struct {
	Events   []Event
	Revision int64
	More     bool
}

// Feeds is the store's side of the change feeds. Every committed change to a
// chat's messages takes the chat's next revision (1, 2, 3…, dense, in commit
// order) in the transaction that stores it, and every change to an
// application's chats (created, renamed) takes the application's next
// revision; message counts do not advance it. A message row keeps the
// revision of its creation and of its latest change; so does a chat row, for
// its application's feed.
type Feeds interface {
	// ListChanges returns one page of the topic's changes (see ChangesQuery).
	// It returns ENOTFOUND if the chat or application is unknown, and
	// EBADREQUEST if After is above the feed's current revision (see
	// ChangesQuery.CheckRevision) or the query is malformed (Validate).
	ListChanges(ctx context.Context, q ChangesQuery) (*ChangesPage, error)
}

// Broker fans committed events out to the subscribers of a topic, in
// process (the embedded default) or across processes (Redis). It is a
// best-effort carrier: a subscriber that sees a revision jump fills the gap
// from the store, so a lost publish delays an event, it never loses one.
type Broker interface {
	// Publish hands the events of one topic, in revision order, to every
	// current subscriber; for a DeletionTopic, to every current subscriber
	// of every topic of its application. It never blocks on a subscriber:
	// one whose buffer is full is ended with ErrSlowSubscriber instead.
	Publish(ctx context.Context, topic Topic, events ...Event) error
	// Subscribe starts delivering the topic's events published from now on.
	Subscribe(ctx context.Context, topic Topic) (Subscription, error)
}

// Subscription is one subscriber's bounded buffer of a topic's events.
type Subscription interface {
	// Events delivers the published events; it is closed when the
	// subscription ends, after which Err says why.
	Events() <-chan Event
	// Err is nil while the subscription runs; afterwards ErrSlowSubscriber if the
	// subscriber fell behind, EUNAVAILABLE if the broker lost its
	// connection, or context.Canceled after Close.
	Err() error
	// Close ends the subscription and releases its buffer.
	Close()
}
