// Package dispatch is the creation hot path: validate, check existence and
// take the next number from the Sequencer, hand the create to the Queue, and
// answer. No store write happens here; workers persist.
package dispatch

import (
	"context"
	"time"

	"github.com/instachat/instachat"
)

// Dispatcher accepts chat and message creations.
type Dispatcher struct {
	Sequencer instachat.Sequencer
	Queue     instachat.Queue
	Limits    instachat.Limits
	Now       func() time.Time // injected so tests control timestamps
}

// New returns a Dispatcher with default limits and the wall clock.
func New(seq instachat.Sequencer, q instachat.Queue) *Dispatcher {
	return &Dispatcher{Sequencer: seq, Queue: q, Limits: instachat.DefaultLimits, Now: time.Now}
}

// CreateChat numbers a new chat of the application and queues it. Returns
// ENOTFOUND if the application is unknown, EINVALID for a bad name.
func (d *Dispatcher) CreateChat(ctx context.Context, token, name string) (*instachat.Chat, error) {
	if err := d.Limits.ValidateName(name, false); err != nil {
		return nil, err
	}
	if !instachat.ValidToken(token) {
		return nil, instachat.Errorf(instachat.ENOTFOUND, "application not found")
	}
	n, err := d.Sequencer.NextChatNumber(ctx, token)
	if err != nil {
		return nil, err
	}
	now := d.now()
	c := &instachat.Chat{Token: token, Number: n, Name: name, CreatedAt: now, UpdatedAt: now}
	if err := d.Queue.Publish(ctx, instachat.Create{Chat: c}); err != nil {
		return nil, err
	}
	return c, nil
}

// CreateMessage numbers a new message of the chat and queues it. Returns
// ENOTFOUND if the application or chat is unknown, EINVALID for a bad body.
func (d *Dispatcher) CreateMessage(ctx context.Context, token string, chat int64, body string) (*instachat.Message, error) {
	if err := d.Limits.ValidateBody(body); err != nil {
		return nil, err
	}
	if !instachat.ValidToken(token) || chat < 1 {
		return nil, instachat.Errorf(instachat.ENOTFOUND, "chat not found")
	}
	n, err := d.Sequencer.NextMessageNumber(ctx, token, chat)
	if err != nil {
		return nil, err
	}
	now := d.now()
	m := &instachat.Message{Token: token, Chat: chat, Number: n, Body: body, CreatedAt: now, UpdatedAt: now}
	if err := d.Queue.Publish(ctx, instachat.Create{Message: m}); err != nil {
		return nil, err
	}
	return m, nil
}

// now is the creation time, truncated to the microsecond every store keeps,
// so what a create answers equals what a later read returns.
func (d *Dispatcher) now() time.Time { return d.Now().UTC().Truncate(time.Microsecond) }
