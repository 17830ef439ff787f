// Package dispatch is the creation hot path: validate, check existence and
// take the next number from the Sequencer, hand the create to the Queue, and
// answer. No store write happens here; workers persist.
package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/instachat/instachat"
)

// Dispatcher accepts chat and message creations.
type Dispatcher struct {
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
	stripes [stripes]sync.Mutex
}

// New returns a Dispatcher with default limits and the wall clock.
func New(seq instachat.Sequencer, q instachat.Queue) *Dispatcher {
	return &Dispatcher{Sequencer: seq, Queue: q, Limits: instachat.DefaultLimits, Now: time.Now}
}

// CreateChat numbers a new chat of the application and queues it. Returns
// ENOTFOUND if the application is unknown, EINVALID for a bad name. With an
// idempotency key (see instachat.Receipt), a retry answers the chat its key
// created first, and replayed is true.
func (d *Dispatcher) CreateChat(ctx context.Context, token, name, key string) (c *instachat.Chat, replayed bool, err error) {
	if err := d.Limits.ValidateName(name, false); err != nil {
		return nil, false, err
	}
	if !instachat.ValidToken(token) {
		return nil, false, instachat.ErrApplicationNotFound
	}
	replayed, err = d.publish(ctx, instachat.ChatsOf(token), key, func(n int64, at time.Time) instachat.Create {
		c = &instachat.Chat{Token: token, Number: n, Name: name, CreatedAt: at, UpdatedAt: at}
		return instachat.Create{Chat: c}
	})
	return c, replayed, err
}

// CreateMessage numbers a new message of the chat and queues it. Returns
// ENOTFOUND if the application or chat is unknown, EINVALID for a bad body.
// A key works as in CreateChat.
func (d *Dispatcher) CreateMessage(ctx context.Context, token string, chat int64, body, key string) (m *instachat.Message, replayed bool, err error) {
	if err := d.Limits.ValidateBody(body); err != nil {
		return nil, false, err
	}
	if !instachat.ValidToken(token) || chat < 1 {
		return nil, false, instachat.ErrChatNotFound
	}
	replayed, err = d.publish(ctx, instachat.MessagesOf(token, chat), key, func(n int64, at time.Time) instachat.Create {
		m = &instachat.Message{Token: token, Chat: chat, Number: n, Body: body, CreatedAt: at, UpdatedAt: at}
		return instachat.Create{Message: m}
	})
	return m, replayed, err
}

// publish takes the next number of the scope — the application's next chat
// number, or the chat's next message number — and enqueues the create that
// build makes of it, both under the scope's stripe, then waits until the
// create is durable. Because batches are applied in queue order, a crash
// can then lose only numbers above every acknowledged one — never leave a
// gap below an acknowledged number.
//
// With a key, the number comes from Sequencer.NextNumberOnce instead. A
// replay enqueues the original create again, with its number and time:
// stored already, it is skipped by the store; lost, it is stored now. Either
// way the number answered exists once the wait returns.
func (d *Dispatcher) publish(ctx context.Context, scope instachat.Scope, key string,
	build func(n int64, at time.Time) instachat.Create) (replayed bool, err error) {
	var want instachat.Receipt
	if key != "" {
		if !instachat.ValidIdempotencyKey(key) {
			return false, instachat.Errorf(instachat.EBADREQUEST,
				"Idempotency-Key must be 1 to %d printable ASCII characters", instachat.MaxIdempotencyKeyBytes)
		}
		// Hashed before the lock: the fingerprint depends on the request
		// alone, not on the number.
		want.Fingerprint = instachat.Fingerprint(build(0, time.Time{}))
	}
	mu := &d.stripes[stripe(scope.Token, scope.Chat)]
	mu.Lock()
	var c instachat.Create
	at := d.now()
	if key == "" {
		var n int64
		if scope.ChatNumbers() {
			n, err = d.Sequencer.NextChatNumber(ctx, scope.Token)
		} else {
			n, err = d.Sequencer.NextMessageNumber(ctx, scope.Token, scope.Chat)
		}
		if err == nil {
			c = build(n, at)
		}
	} else {
		want.CreatedAt = at
		var r instachat.Receipt
		r, replayed, err = d.Sequencer.NextNumberOnce(ctx, scope, key, want)
		if err == nil && r.Fingerprint != want.Fingerprint {
			err = instachat.ErrKeyReused
		}
		if err == nil {
			c = build(r.Number, r.CreatedAt)
			c.IdempotencyKey = key
		}
	}
	var wait func(context.Context) error
	if err == nil {
		wait, err = d.Queue.Enqueue(ctx, c)
	}
	mu.Unlock()
	if err != nil {
		return false, err
	}
	return replayed, wait(ctx)
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
