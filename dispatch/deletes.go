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
		logger := d.Logger
		if logger == nil {
			logger = slog.Default()
		}
		logger.WarnContext(ctx, "telling the sequencer of a deletion; the store drops the creates it numbers meanwhile",
			"token", instachat.RedactToken(scope.Token), "chat", scope.Chat, "err", err)
	}
}
