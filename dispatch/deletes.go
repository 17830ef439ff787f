package dispatch

import (
	"context"
	"log/slog"
	"time"

	"github.com/instachat/instachat"
)

// Deletes is a Store that tells the Sequencer of every chat and application
// the store deleted, once the deletion committed, so that every dispatcher
// sharing the sequencer refuses creates to it at once instead of numbering
// creates the store then drops.
type Deletes struct {
	instachat.Store
	Sequencer instachat.Sequencer
	Logger    *slog.Logger // nil means slog.Default()
}

// DeleteMessage deletes the message in the store, then erases the receipt
// that issued it where the sequencer keeps receipts itself
// (instachat.ReceiptEraser), so that a retry of its create answers not
// found on every dispatcher.
func (d *Deletes) DeleteMessage(ctx context.Context, token string, chat, number int64, at time.Time) (*instachat.Message, error) {
	m, err := d.Store.DeleteMessage(ctx, token, chat, number, at)
	if err != nil {
		return nil, err
	}
	if e, ok := d.Sequencer.(instachat.ReceiptEraser); ok {
		scope := instachat.MessagesOf(token, chat)
		if err := e.EraseReceipt(context.WithoutCancel(ctx), scope, number); err != nil {
			d.warn(ctx, "erasing the receipt of a deleted message; a retry of its create answers 202 and is dropped", scope, err)
		}
	}
	return m, nil
}

// DeleteChat deletes the chat in the store, then in the sequencer.
func (d *Deletes) DeleteChat(ctx context.Context, token string, number int64, at time.Time) (*instachat.Chat, error) {
	c, err := d.Store.DeleteChat(ctx, token, number, at)
	if err != nil {
		return nil, err
	}
	d.forget(ctx, instachat.MessagesOf(token, number))
	return c, nil
}

// DeleteApplication deletes the application in the store, then in the
// sequencer.
func (d *Deletes) DeleteApplication(ctx context.Context, token string, at time.Time) error {
	if err := d.Store.DeleteApplication(ctx, token, at); err != nil {
		return err
	}
	d.forget(ctx, instachat.ChatsOf(token))
	return nil
}

// forget tells the sequencer. The deletion is committed, which is what the
// caller asked for; failing here only lets dispatchers number creates the
// store then drops, so it is logged, not returned.
func (d *Deletes) forget(ctx context.Context, scope instachat.Scope) {
	if err := d.Sequencer.Delete(context.WithoutCancel(ctx), scope); err != nil {
		d.warn(ctx, "telling the sequencer of a deletion; the store drops the creates it numbers meanwhile", scope, err)
	}
}

func (d *Deletes) warn(ctx context.Context, msg string, scope instachat.Scope, err error) {
	logger := d.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.WarnContext(ctx, msg, "token", instachat.RedactToken(scope.Token), "chat", scope.Chat, "err", err)
}
