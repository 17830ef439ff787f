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
	stripes [stripes]sync.Mutex
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
	replayed, err = d.publish(ctx, instachat.ChatsOf(token), key, func(n int64, at time.Time) instachat.Create {
		c = &instachat.Chat{Token: token, Number: n, Name: name, CreatedAt: at, UpdatedAt: at}
		return instachat.Create{Chat: c}
	})
	return c, replayed, err
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
