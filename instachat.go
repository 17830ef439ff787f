// Package instachat holds the domain of the Instachat chat backend — applications,
// chats and messages, their validation and errors — and the interfaces of the
// moving parts that carry them:
//
//	client ─HTTP─▶ Dispatcher ─▶ Sequencer (next number, existence)
//	                   │
//	                   ▼
//	                 Queue ─▶ Worker ─▶ Store (rows, counts)
//	                   └────▶ worker.Index ─▶ Indexer (search, when separate)
//
// Every interface has one conformance suite (package conformance) that each
// backend must pass: the embedded default (sqlite, inmem) and the production
// engines (mysql, redis, kafka, elasticsearch).
//
// Clients never see internal ids: an application is its token, a chat is
// (token, number), a message is (token, chat number, number).
package instachat

import (
	"context"
	"time"
)

// Create is one accepted creation travelling from a dispatcher to a worker:
// exactly one of Chat and Message is set, with its number already issued by
// the Sequencer. Applying the same Create twice has the effect of applying it
// once, because the store's unique keys reject the second insert.
type Create struct {
	Chat    *Chat
	Message *Message
	// IdempotencyKey is the client's Idempotency-Key, if it sent one. A
	// store that is also a ReceiptStore (sqlite) keeps the create's receipt
	// under it, in the transaction of the row; any other store ignores it,
	// the sequencer keeping receipts itself (redis).
	IdempotencyKey string
}

// Timestamp is t as the domain keeps a creation or edit time: in UTC,
// truncated to the microsecond every store keeps, so what an answer shows
// equals what a later read returns.
func Timestamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Token is the application the create belongs to.
func (c Create) Token() string {
	if c.Chat != nil {
		return c.Chat.Token
	}
	if c.Message != nil {
		return c.Message.Token
	}
	return ""
}

// Store keeps applications, chats and messages. It is the source of truth;
// everything else (sequencer state, search index) can be rebuilt from it.
//
// Lists are ascending and keyset-paginated: After is the last key of the
// previous page (0 or "" for the first page) and at most Limit rows return.
type Store interface {
	// CreateApplication inserts app. The caller sets Token, Name and the
	// timestamps. Returns ECONFLICT if the token exists.
	CreateApplication(ctx context.Context, app *Application) error
	// FindApplication returns ENOTFOUND if no application has the token.
	FindApplication(ctx context.Context, token string) (*Application, error)
	// ListApplications lists in creation order, after the application whose
	// token is after.
	ListApplications(ctx context.Context, after string, limit int) ([]*Application, error)
	// UpdateApplication renames; returns ENOTFOUND if the token is unknown.
	UpdateApplication(ctx context.Context, token, name string, at time.Time) (*Application, error)

	// FindChat returns ENOTFOUND if the chat is not stored.
	FindChat(ctx context.Context, token string, number int64) (*Chat, error)
	// ListChats returns ENOTFOUND if the application is unknown.
	ListChats(ctx context.Context, token string, after int64, limit int) ([]*Chat, error)
	// UpdateChat renames; returns ENOTFOUND if the chat is not stored.
	UpdateChat(ctx context.Context, token string, number int64, name string, at time.Time) (*Chat, error)

	// FindMessage returns ENOTFOUND if the message is not stored.
	FindMessage(ctx context.Context, token string, chat, number int64) (*Message, error)
	// ListMessages returns ENOTFOUND if the chat is not stored.
	ListMessages(ctx context.Context, token string, chat int64, after int64, limit int) ([]*Message, error)
	// FindMessages returns the messages of the chat stored under numbers,
	// in no particular order; a number not stored is left out, and an
	// unknown chat has none. Search loads its hits with it.
	FindMessages(ctx context.Context, token string, chat int64, numbers []int64) ([]*Message, error)
	// UpdateMessage replaces the body; returns ENOTFOUND if not stored.
	UpdateMessage(ctx context.Context, token string, chat, number int64, body string, at time.Time) (*Message, error)

	// ApplyCreates persists a batch in one transaction: chats before
	// messages, a create whose row already exists is skipped (so a
	// redelivered batch changes nothing), and chats_count and messages_count
	// grow by exactly the rows inserted. A chat row inserted after some of
	// its messages (possible when a client posts to a chat number the moment
	// it is issued) starts with the count of those messages. It returns
	// EINVALID when a create can never be stored, and EUNAVAILABLE or another
	// error when the store cannot take the batch now.
	//
	// A create whose chat or application is deleted is dropped, and so is
	// one whose message is stored deleted (a retry of it): once the
	// transaction committed, each dropped create's Chat or Message has
	// DeletedAt set (see Dropped), so that the worker counts it and a
	// dispatcher waiting for it answers not found.
	ApplyCreates(ctx context.Context, creates []Create) error

	// DeleteMessage erases a stored message: in one transaction its body
	// goes (the row stays as a tombstone keeping its number, its
	// revisions and deleted_at, so the number is never issued again and
	// the feed can tell resuming clients), so do its search index entry
	// and what its idempotency receipt held of it, messages_count drops
	// by one and the deletion takes the chat's next revision. It returns
	// the tombstone (Number, Revision, CreatedRevision, DeletedAt). It
	// returns ENOTFOUND if the message is not stored, is deleted already,
	// or its chat or application is deleted. Every read skips tombstones;
	// UpdateMessage of one is ENOTFOUND.
	DeleteMessage(ctx context.Context, token string, chat, number int64, at time.Time) (*Message, error)
	// DeleteChat hides a stored chat and its messages from every read at
	// once: its row becomes a tombstone (deleted_at, so its number is
	// never issued again), chats_count drops by one and the deletion takes
	// the application's next revision. Its messages are erased later, in
	// bounded steps, by Reclaim; until then no read returns them, and
	// ApplyCreates drops creates for the chat. It returns the tombstone
	// (Number, AppRevision, CreatedAppRevision, DeletedAt), or ENOTFOUND if
	// the chat is not stored or is deleted already, or its application is.
	DeleteChat(ctx context.Context, token string, number int64, at time.Time) (*Chat, error)
	// DeleteApplication hides the application and everything under it
	// from every read at once; its token is never valid again, and
	// Reclaim erases its chats and messages later. It returns ENOTFOUND if
	// the application is unknown or deleted already.
	DeleteApplication(ctx context.Context, token string, at time.Time) error
	// Reclaim erases up to about limit rows left by DeleteChat and
	// DeleteApplication, each call one short transaction, and returns how
	// many it erased: 0 once nothing is left. What remains to reclaim is
	// durable (it is written with the deletion), so a crash in the middle
	// resumes at the next call, in any process.
	//
	// Once a deletion's rows are all erased, and before its record goes,
	// Reclaim calls done, when not nil, with the deleted scope
	// (MessagesOf for a chat, ChatsOf for an application), outside any
	// transaction: it is how what lives apart from the store (a search
	// engine's documents, see SearchEngine.ForgetScope) is erased too. If
	// done fails, the record stays and Reclaim returns done's error, so a
	// later call, in any process, calls done again: done must bear
	// repeating. A call that removes a record counts it as one row.
	Reclaim(ctx context.Context, limit int, done func(context.Context, Scope) error) (int64, error)

	// Recount recomputes every chats_count and messages_count from the
	// rows, counting only those not deleted.
	Recount(ctx context.Context) error

	// HighestNumber returns the highest number stored in the scope: the
	// highest chat number of the application, or the highest message
	// number of the chat; 0 when there are none. It returns ENOTFOUND when
	// the application is unknown. Sequencers use it to resume after losing
	// state.
	HighestNumber(ctx context.Context, s Scope) (int64, error)
	// Watermarks calls fn for the chat numbers of every application and the
	// message numbers of every chat, so an in-memory sequencer can load
	// what exists at start.
	Watermarks(ctx context.Context, fn func(Watermark) error) error

	// Feeds lists the chats' and applications' changes. It is part of the
	// Store, not an interface beside it, because the revisions it lists
	// are taken in the transactions above (ApplyCreates, UpdateMessage,
	// UpdateChat): only the store that keeps the rows can keep them, and
	// each of these fills them into what it returns.
	Feeds
}

// Scope is one sequence of numbers the Sequencer issues: the chat numbers
// of an application (ChatsOf) or the message numbers of one of its chats
// (MessagesOf). Chat is 0 for the first; no chat has number 0.
type Scope struct {
	Token string
	Chat  int64
}

// ChatsOf is the scope of the application's chat numbers.
func ChatsOf(token string) Scope { return Scope{Token: token} }

// MessagesOf is the scope of the chat's message numbers.
func MessagesOf(token string, chat int64) Scope { return Scope{Token: token, Chat: chat} }

// ChatNumbers reports whether the scope numbers the application's chats
// rather than a chat's messages.
func (s Scope) ChatNumbers() bool { return s.Chat == 0 }

// Watermark is the highest number stored in a scope. Deleted says the
// scope's application (ChatsOf) or chat (MessagesOf) is deleted: no number
// is issued in it again.
type Watermark struct {
	Scope
	Highest int64
	Deleted bool
}

// Dropped reports whether ApplyCreates dropped c because what it creates,
// or the chat or application it belongs to, is deleted.
func (c Create) Dropped() bool {
	return c.Chat != nil && c.Chat.DeletedAt != nil || c.Message != nil && c.Message.DeletedAt != nil
}

// Sequencer issues chat and message numbers — 1, 2, 3… per application and
// per chat, each exactly once, across every process that shares it — and is
// the dispatcher's fast knowledge of what exists. A chat exists for the
// sequencer as soon as its number is issued, before its row is stored.
type Sequencer interface {
	// AddApplication records that the application exists. Calling it again
	// for a known application changes nothing: numbering never resets.
	AddApplication(ctx context.Context, token string) error
	// NextChatNumber returns ENOTFOUND if the application is unknown.
	NextChatNumber(ctx context.Context, token string) (int64, error)
	// NextMessageNumber returns ENOTFOUND if the application or the chat is
	// unknown.
	NextMessageNumber(ctx context.Context, token string, chat int64) (int64, error)
	// NextMessageNumbers issues the chat's next n message numbers (n ≥ 1)
	// at once, first to first+n-1, as n NextMessageNumber calls in a row
	// would; no other call gets a number between them. The dispatcher takes
	// a block when several creates of one chat wait, so that they cost one
	// round trip to a remote sequencer. Errors are NextMessageNumber's.
	NextMessageNumbers(ctx context.Context, token string, chat int64, n int) (first int64, err error)
	// NextNumberOnce is NextChatNumber or NextMessageNumber, as s says,
	// made safe to retry. The first call with (token, key) issues a number
	// and keeps want, with Number set to it, as the key's receipt for the
	// sequencer's retention (DefaultReceiptTTL unless configured); a later
	// call with the key issues nothing and returns that receipt and true,
	// whatever its want. Issuing and keeping are one atomic step, so
	// concurrent calls with one key issue one number.
	NextNumberOnce(ctx context.Context, s Scope, key string, want Receipt) (r Receipt, replayed bool, err error)
	// Delete records that the scope's chat (MessagesOf) or application
	// (ChatsOf) was deleted from the store: from then on no number is
	// issued in it (for an application, in none of its scopes), and the
	// Next methods return ENOTFOUND for it, in every process that shares
	// the sequencer. A retry whose receipt lies in a deleted application
	// or chat answers ENOTFOUND, or its receipt erased (ErasedFingerprint),
	// where the sequencer keeps receipts apart from the store (redis); one
	// that keeps them beside the store (inmem) may return the receipt, and
	// the store drops its create. Deleting what the sequencer does not
	// know changes nothing.
	Delete(ctx context.Context, s Scope) error
}

// Creator makes applications, chats and messages: the creates the API
// serves, each one call. Package dispatch implements it over the Store, the
// Sequencer and the Queue; the HTTP client implements it over the API.
type Creator interface {
	// CreateApplication stores an application under a fresh token and
	// registers it for numbering, so it takes chats at once. Returns
	// EINVALID for a bad name.
	CreateApplication(ctx context.Context, name string) (*Application, error)
	// CreateChat numbers a new chat of the application. Returns ENOTFOUND
	// if the application is unknown, EINVALID for a bad name. With an
	// idempotency key (see Receipt), a retry answers the chat its key
	// created first, and replayed is true.
	CreateChat(ctx context.Context, token, name, key string) (c *Chat, replayed bool, err error)
	// CreateMessage numbers a new message of the chat. Returns ENOTFOUND
	// if the application or chat is unknown, EINVALID for a bad body. A
	// key works as in CreateChat.
	CreateMessage(ctx context.Context, token string, chat int64, body, key string) (m *Message, replayed bool, err error)
}

// Queue carries creates from dispatchers to workers.
type Queue interface {
	// Enqueue fixes the creates' place in the queue, after everything
	// enqueued before it returned, and returns at once; wait then returns
	// nil once they are durable (see Publish). The dispatcher numbers and
	// enqueues under one lock per chat, so a chat's creates sit in the queue
	// in number order: batches are applied in queue order, so a crash can
	// lose only a tail of numbers nobody was told, never one in the middle.
	// The lock is per process: creates of one chat numbered by different
	// dispatcher processes keep no order between them. (A retry with an Idempotency-Key enqueues its original create again,
	// after newer ones; stored already, the store skips it.)
	Enqueue(ctx context.Context, creates ...Create) (wait func(context.Context) error, err error)
	// Consume delivers batches to handle until ctx ends. A batch is
	// acknowledged only when handle returns nil; otherwise it is delivered
	// again (at-least-once). The messages of one chat arrive in the order
	// they were published, and so do the chat creates of one application;
	// nothing else is ordered: a chat's messages may arrive before its own
	// create (ApplyCreates stores them), so that a queue can spread one
	// application's chats over its partitions and workers. It returns nil or ctx's error once ctx ends.
	Consume(ctx context.Context, handle func(ctx context.Context, batch []Create) error) error
	// DeadLetter sets aside a create that cannot be applied, with the reason,
	// so that a failed create is never dropped silently. Where Publish waited
	// for the handler, the publisher receives the reason; where it did not
	// (Kafka), the create is kept on a dead-letter topic for an operator.
	DeadLetter(ctx context.Context, c Create, reason error) error
}

// Publish hands creates to q and returns nil once they are durable: a
// queue with a log of its own (Kafka) has them acknowledged by its brokers,
// so they reach a consumer even if this process dies right after; a queue
// without one (the embedded default) answers only after a consumer's
// handler succeeded, i.e. after the store committed them. It returns
// EUNAVAILABLE when the queue cannot take them in time; a create handed
// over before ctx ended may still be applied then, the same ambiguity as a
// lost HTTP answer.
func Publish(ctx context.Context, q Queue, creates ...Create) error {
	wait, err := q.Enqueue(ctx, creates...)
	if err != nil {
		return err
	}
	return wait(ctx)
}

// Searcher finds messages of one chat: the search the API serves. Package
// search implements it over a SearchEngine and the Store.
type Searcher interface {
	// SearchMessages returns the messages of the chat that match every term
	// of q, best match first (how "best" is judged is each engine's: see
	// its SearchMessageNumbers), as the store holds them. A term of
	// MinSubstringTerm or more characters matches any substring of the
	// body; a shorter one matches the start of a word. Matching ignores
	// case. It returns ENOTFOUND if the chat is not stored.
	SearchMessages(ctx context.Context, q SearchQuery) ([]*Message, error)
}

// SearchEngine decides which messages of a chat match a query and in what
// order, by the rules of Searcher, and answers with their numbers only: the
// rows come from the Store, so that an index lagging behind an edit can
// delay what a search finds but never serve a stale body. The store's own
// search (sqlite, the MySQL fallback) is an engine too.
type SearchEngine interface {
	// SearchMessageNumbers returns the hits of page (q.Offset, q.Limit) of
	// the chat's matches, best first. A chat without matches, or one not
	// stored, has none.
	SearchMessageNumbers(ctx context.Context, q SearchQuery) ([]SearchHit, error)
	// ForgetScope erases from the engine every message of the scope's
	// chat (MessagesOf) or of every chat of its application (ChatsOf),
	// deleted ones' tombstones included: the reclaim of a deleted chat or
	// application calls it (see Store.Reclaim) once the store erased the
	// rows. It bears repeating, and returns an error unless everything it
	// found is gone, so that the reclaim calls it again. An engine that is
	// the store's own search (sqlite, the MySQL fallback) has nothing to
	// do: Reclaim erasing the rows erases what it searches.
	ForgetScope(ctx context.Context, s Scope) error
}

// SearchHit is one message a SearchEngine found.
type SearchHit struct {
	Number int64 // the message's number in the query's chat
	// Score is the engine's measure of the match, higher being better,
	// for diagnosis: the order of the hits is the ranking, and scores of
	// different queries, or of an engine that ranks in windows, do not
	// compare. 0 where the engine does not score (the MySQL fallback).
	Score float64
}

// Indexer feeds a search engine that lives apart from the store: a consumer
// group of its own reads the queue into it (worker.Index), the API calls it
// after an edit, and instachat reindex rebuilds it from the store. A store
// that indexes in its own transactions (sqlite) needs none.
type Indexer interface {
	// IndexMessages inserts or replaces the messages in the index.
	IndexMessages(ctx context.Context, msgs []*Message) error
	// DeleteMessages removes the messages (tombstones: Token, Chat,
	// Number, Revision) from the index, so that an index request arriving
	// later with an older revision never brings one back.
	DeleteMessages(ctx context.Context, msgs []*Message) error
}

// SearchErasures is the durable list of what a search engine apart from
// the store (Elasticsearch) still has to erase of deleted messages. A
// store that keeps it records, in the transaction of each DeleteMessage,
// the message's tombstone, and keeps it until SearchErased: so a deletion
// whose erasure from the engine failed right after the commit, or whose
// process died in between, is erased later, by the worker's
// worker.SearchEraser, in any process.
type SearchErasures interface {
	// PendingSearchErasures returns up to limit tombstones (Token, Chat,
	// Number, CreatedAt, UpdatedAt and DeletedAt, the deletion's time) of
	// messages deleted at or before before whose erasure is still owed,
	// oldest deletion first.
	PendingSearchErasures(ctx context.Context, before time.Time, limit int) ([]*Message, error)
	// SearchErased forgets the erasures of msgs (by Token, Chat and
	// Number): the engine holds their tombstones. An erasure not pending
	// is ignored.
	SearchErased(ctx context.Context, msgs []*Message) error
}
