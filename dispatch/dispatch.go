// Package dispatch is where things are created. Chats and messages are the
// hot path: validate, check existence and take the next number from the
// Sequencer, hand the create to the Queue, and answer; no store write
// happens for them here, workers persist. Applications are rare and need
// their row before anything can be numbered in them, so they are stored
// here, then registered with the Sequencer.
package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/instachat/instachat"
)

// Dispatcher accepts creations: it implements instachat.Creator. Store is
// needed by CreateApplication only, Queue by CreateChat and CreateMessage,
// so a process that serves one kind of create may leave the other's unset.
type Dispatcher struct {
	Store     instachat.Store
	Sequencer instachat.Sequencer
	Queue     instachat.Queue
	Limits    instachat.Limits
	Now       func() time.Time // injected so tests control timestamps

	// stripes serialise taking a number and enqueueing its create per chat
	// (per application for chat numbers), so each chat's creates enter the
	// queue in number order. Only those two quick steps hold the lock; the
	// wait for durability does not. A sequencer recovering lost state
	// (Redis) holds its stripe for the recovery, so chats sharing it wait
	// too: many stripes make that rare event touch few other chats.
	stripes [stripes]stripeLock
}

// stripeLock is one stripe: mu is the numbering lock, and waiting holds,
// per chat of the stripe, the group of message creates without an
// idempotency key that wait for mu together: the first to come leads it,
// and once it holds mu takes the group's numbers in one NextMessageNumbers
// call and enqueues its creates in one Enqueue (see coalesce).
type stripeLock struct {
	mu      sync.Mutex
	waitMu  sync.Mutex
	waiting map[instachat.Scope]*group
}

// group is message creates of one chat numbered and enqueued together.
type group struct {
	creates []instachat.Create // unnumbered until the leader numbers them
	done    chan struct{}      // closed once the creates are numbered and err is set
	err     error
}

var _ instachat.Creator = (*Dispatcher)(nil)

// New returns a Dispatcher with default limits and the wall clock; set
// Store for it to create applications.
func New(seq instachat.Sequencer, q instachat.Queue) *Dispatcher {
	return &Dispatcher{Sequencer: seq, Queue: q, Limits: instachat.DefaultLimits, Now: time.Now}
}

// CreateApplication stores a new application under a fresh token, then
// registers it with the Sequencer. Returns EINVALID for a bad name. The row
// comes first because a sequencer recovering lost state trusts the store
// for which applications exist.
func (d *Dispatcher) CreateApplication(ctx context.Context, name string) (*instachat.Application, error) {
	if err := d.Limits.ValidateName(name, true); err != nil {
		return nil, err
	}
	now := d.now()
	app := &instachat.Application{Token: instachat.NewToken(), Name: name, CreatedAt: now, UpdatedAt: now}
	err := d.Store.CreateApplication(ctx, app)
	if instachat.ErrorCode(err) == instachat.ECONFLICT {
		// 128 random bits repeat only by freak chance or a broken random
		// source; one fresh token settles the first and exposes the second.
		app.Token = instachat.NewToken()
		err = d.Store.CreateApplication(ctx, app)
	}
	if err != nil {
		return nil, err
	}
	if err := d.Sequencer.AddApplication(ctx, app.Token); err != nil {
		return nil, err
	}
	return app, nil
}

// CreateChat numbers a new chat of the application and queues it, as
// instachat.Creator says.
func (d *Dispatcher) CreateChat(ctx context.Context, token, name, key string) (c *instachat.Chat, replayed bool, err error) {
	if err := d.Limits.ValidateName(name, false); err != nil {
		return nil, false, err
	}
	if !instachat.ValidToken(token) {
		return nil, false, instachat.ErrApplicationNotFound
	}
	cr, replayed, err := d.publish(ctx, instachat.ChatsOf(token), key, instachat.Create{Chat: &instachat.Chat{Token: token, Name: name}})
	if err == nil {
		err = dropped(cr, replayed, instachat.ChatsOf(token))
	}
	if err != nil {
		return nil, false, err
	}
	return cr.Chat, replayed, nil
}

// CreateMessage numbers a new message of the chat and queues it, as
// instachat.Creator says.
func (d *Dispatcher) CreateMessage(ctx context.Context, token string, chat int64, body, key string) (m *instachat.Message, replayed bool, err error) {
	if err := d.Limits.ValidateBody(body); err != nil {
		return nil, false, err
	}
	if !instachat.ValidToken(token) || chat < 1 {
		return nil, false, instachat.ErrChatNotFound
	}
	cr, replayed, err := d.publish(ctx, instachat.MessagesOf(token, chat), key,
		instachat.Create{Message: &instachat.Message{Token: token, Chat: chat, Body: body}})
	if err == nil {
		err = dropped(cr, replayed, instachat.MessagesOf(token, chat))
	}
	if err != nil {
		return nil, false, err
	}
	return cr.Message, replayed, nil
}

// publish takes the next number of the scope — the application's next chat
// number, or the chat's next message number — and enqueues c, a create of
// the scope numbered and dated in place (see stamp), both under the scope's stripe, then waits until the
// create is durable, and returns it. Because batches are applied in queue order, a crash
// can then lose only numbers above every acknowledged one — never leave a
// gap below an acknowledged number.
//
// With a key, the number comes from Sequencer.NextNumberOnce instead. A
// replay enqueues the original create again, with its number and time:
// stored already, it is skipped by the store; lost, it is stored now. Either
// way the number answered exists once the wait returns.
func (d *Dispatcher) publish(ctx context.Context, scope instachat.Scope, key string,
	c instachat.Create) (_ instachat.Create, replayed bool, err error) {
	var want instachat.Receipt
	if key != "" {
		if !instachat.ValidIdempotencyKey(key) {
			return c, false, instachat.Errorf(instachat.EBADREQUEST,
				"Idempotency-Key must be 1 to %d printable ASCII characters", instachat.MaxIdempotencyKeyBytes)
		}
		// Hashed before the lock: the fingerprint depends on the request
		// alone, not on the number.
		want.Fingerprint = instachat.Fingerprint(stamp(c, 0, time.Time{}))
	}
	if key == "" && !scope.ChatNumbers() {
		c, err = d.coalesce(ctx, scope, c)
		return c, false, err
	}
	mu := &d.stripes[stripe(scope.Token, scope.Chat)].mu
	mu.Lock()
	at := d.now()
	if key == "" {
		var n int64
		if scope.ChatNumbers() {
			n, err = d.Sequencer.NextChatNumber(ctx, scope.Token)
		} else {
			n, err = d.Sequencer.NextMessageNumber(ctx, scope.Token, scope.Chat)
		}
		if err == nil {
			stamp(c, n, at)
		}
	} else {
		want.CreatedAt = at
		var r instachat.Receipt
		r, replayed, err = d.Sequencer.NextNumberOnce(ctx, scope, key, want)
		switch {
		case err != nil:
		case r.Fingerprint == instachat.ErasedFingerprint:
			// What the key created was deleted: a retry answers so
			// rather than create it again.
			err = deletedError(scope)
		case r.Fingerprint != want.Fingerprint:
			err = instachat.ErrKeyReused
		}
		if err == nil {
			stamp(c, r.Number, r.CreatedAt)
			c.IdempotencyKey = key
		}
	}
	var wait func(context.Context) error
	if err == nil {
		wait, err = d.Queue.Enqueue(ctx, c)
	}
	mu.Unlock()
	if err != nil {
		return c, false, err
	}
	return c, replayed, wait(ctx)
}

// coalesce is publish for a message create without an idempotency key. It
// joins the chat's waiting group, or starts one and leads it: the leader
// takes the chat's stripe, closes the group to newcomers (who start the
// next), takes as many numbers as the group holds in one round trip,
// numbers the creates in the order they joined and enqueues them in one
// call, releases the stripe and waits until they are durable, for all of
// them. A create that finds the stripe free takes it at once, as before
// grouping, and a leader left alone uses its own ctx; under load, the creates of a chat that arrive while the one
// before them is being numbered share a round trip to the sequencer and a
// call to the queue.
//
// A leader with followers numbers and waits for all of them, so it does
// so with its ctx detached: a client that hangs up does not fail the
// others. The sequencer and the queue bound those calls (Redis's timeouts
// and RecoverTimeout; Kafka's PublishTimeout), and groupTimeout bounds the
// whole. A follower waits for its group as long as its own ctx lasts.
func (d *Dispatcher) coalesce(ctx context.Context, scope instachat.Scope, c instachat.Create) (instachat.Create, error) {
	st := &d.stripes[stripe(scope.Token, scope.Chat)]
	if st.mu.TryLock() {
		// Nobody holds the stripe: no group to wait with, and none of
		// its allocations. A group whose leader waits for the stripe
		// then numbers after this create, as it would after any.
		return d.numberAlone(ctx, st, scope, c)
	}
	st.waitMu.Lock()
	g := st.waiting[scope]
	lead := g == nil
	if lead {
		if st.waiting == nil {
			st.waiting = map[instachat.Scope]*group{}
		}
		g = &group{done: make(chan struct{})}
		st.waiting[scope] = g
	}
	i := len(g.creates)
	g.creates = append(g.creates, c)
	st.waitMu.Unlock()
	if lead {
		g.err = d.number(ctx, st, scope, g)
		close(g.done)
		if g.err != nil {
			return instachat.Create{}, g.err
		}
		return g.creates[0], nil
	}
	select {
	case <-g.done:
		if g.err != nil {
			return instachat.Create{}, g.err
		}
		return g.creates[i], nil
	case <-ctx.Done():
		return instachat.Create{}, instachat.Errorf(instachat.EUNAVAILABLE, "create not confirmed before the request ended: %v", ctx.Err())
	}
}

// numberAlone numbers and enqueues one create under the stripe,
// which the caller holds, releases it and waits until the create is
// durable.
func (d *Dispatcher) numberAlone(ctx context.Context, st *stripeLock, scope instachat.Scope, c instachat.Create) (instachat.Create, error) {
	var wait func(context.Context) error
	n, err := d.Sequencer.NextMessageNumber(ctx, scope.Token, scope.Chat)
	if err == nil {
		stamp(c, n, d.now())
		wait, err = d.Queue.Enqueue(ctx, c)
	}
	st.mu.Unlock()
	if err != nil {
		return instachat.Create{}, err
	}
	return c, wait(ctx)
}

// groupTimeout bounds a group's numbering, enqueueing and wait, past what
// the sequencer and the queue bound themselves.
const groupTimeout = time.Minute

// number takes the chat's stripe and numbers and enqueues the group's
// creates, then waits until they are durable.
func (d *Dispatcher) number(ctx context.Context, st *stripeLock, scope instachat.Scope, g *group) error {
	st.mu.Lock()
	st.waitMu.Lock()
	delete(st.waiting, scope) // newcomers start the next group
	creates := g.creates
	st.waitMu.Unlock()
	var (
		first int64
		err   error
	)
	if len(creates) == 1 {
		first, err = d.Sequencer.NextMessageNumber(ctx, scope.Token, scope.Chat)
	} else {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), groupTimeout)
		defer cancel()
		first, err = d.Sequencer.NextMessageNumbers(ctx, scope.Token, scope.Chat, len(creates))
	}
	var wait func(context.Context) error
	if err == nil {
		at := d.now()
		for i, c := range creates {
			stamp(c, first+int64(i), at)
		}
		wait, err = d.Queue.Enqueue(ctx, creates...)
	}
	st.mu.Unlock()
	if err != nil {
		return err
	}
	return wait(ctx)
}

// stamp gives c, a chat or message create, its number and creation time,
// in place, and returns it. Each create is its own request's, built
// unnumbered before its number is known: numbering it in place spares the
// hot path a closure and a copy per create.
func stamp(c instachat.Create, n int64, at time.Time) instachat.Create {
	if c.Chat != nil {
		c.Chat.Number, c.Chat.CreatedAt, c.Chat.UpdatedAt = n, at, at
	} else {
		c.Message.Number, c.Message.CreatedAt, c.Message.UpdatedAt = n, at, at
	}
	return c
}

// dropped is not found for a create the store dropped, nil otherwise. A
// queue that answers once the store committed (the embedded default) tells
// of a create the store dropped: its chat or application was deleted, or,
// retried, its message. A queue that answers sooner cannot; the store
// drops the create all the same.
func dropped(c instachat.Create, replayed bool, scope instachat.Scope) error {
	switch {
	case !c.Dropped():
		return nil
	case replayed:
		return deletedError(scope)
	case scope.ChatNumbers():
		return instachat.ErrApplicationNotFound
	}
	return instachat.ErrChatNotFound
}

// deletedError answers a retried create of the scope whose chat or
// message was deleted.
func deletedError(scope instachat.Scope) error {
	if scope.ChatNumbers() {
		return instachat.ErrChatNotFound
	}
	return instachat.ErrMessageNotFound
}

// stripe hashes (token, chat) with FNV-1a onto one of the stripes.
func stripe(token string, chat int64) int {
	h := uint32(2166136261)
	for i := 0; i < len(token); i++ {
		h = (h ^ uint32(token[i])) * 16777619
	}
	h = (h ^ uint32(chat)) * 16777619
	return int(h % stripes)
}

const stripes = 4096

// now is the creation time.
func (d *Dispatcher) now() time.Time { return instachat.Timestamp(d.Now()) }
