package dispatch

import (
	"context"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/inmem"
)

// deletingStore deletes whatever it is told, except what missing names.
type deletingStore struct {
	instachat.Store
	missing bool
}

func (s deletingStore) DeleteChat(_ context.Context, token string, number int64, at time.Time) (*instachat.Chat, error) {
	if s.missing {
		return nil, instachat.ErrChatNotFound
	}
	return &instachat.Chat{Token: token, Number: number, DeletedAt: &at}, nil
}

func (s deletingStore) DeleteApplication(context.Context, string, time.Time) error {
	if s.missing {
		return instachat.ErrApplicationNotFound
	}
	return nil
}

// TestDeletesTellTheSequencer: a chat or application the store deleted
// gets no number any more; one the store did not find keeps its numbering.
func TestDeletesTellTheSequencer(t *testing.T) {
	ctx := t.Context()
	seq := inmem.NewSequencer()
	token := instachat.NewToken()
	if err := seq.AddApplication(ctx, token); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := seq.NextChatNumber(ctx, token); err != nil {
			t.Fatal(err)
		}
	}
	missing := &Deletes{Store: deletingStore{missing: true}, Sequencer: seq}
	if _, err := missing.DeleteChat(ctx, token, 1, time.Now()); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Fatalf("DeleteChat the store does not find: %v", err)
	}
	if _, err := seq.NextMessageNumber(ctx, token, 1); err != nil {
		t.Errorf("a chat the store did not delete lost its numbering: %v", err)
	}
	d := &Deletes{Store: deletingStore{}, Sequencer: seq}
	if _, err := d.DeleteChat(ctx, token, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := seq.NextMessageNumber(ctx, token, 1); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("a deleted chat still numbers: %v", err)
	}
	if _, err := seq.NextMessageNumber(ctx, token, 2); err != nil {
		t.Errorf("the chat beside it: %v", err)
	}
	if err := d.DeleteApplication(ctx, token, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := seq.NextChatNumber(ctx, token); instachat.ErrorCode(err) != instachat.ENOTFOUND {
		t.Errorf("a deleted application still numbers: %v", err)
	}
}
