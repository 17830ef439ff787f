package mysql

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// holdBatches makes the ApplyCreates transactions whose first create is
// picked wait, their rows written and their locks held, until release is
// called; held receives once per such transaction as it starts waiting.
func holdBatches(t *testing.T, db *DB, picked func(instachat.Create) bool) (held <-chan struct{}, release func()) {
	h, open := make(chan struct{}, 16), make(chan struct{})
	db.beforeCommit = func(creates []instachat.Create) {
		if picked(creates[0]) {
			h <- struct{}{}
			<-open
		}
	}
	var once sync.Once
	release = func() { once.Do(func() { close(open) }) }
	t.Cleanup(release)
	return h, release
}

// applyAsync runs ApplyCreates in the background; its error comes on the
// channel.
func applyAsync(db *DB, creates ...instachat.Create) <-chan error {
	done := make(chan error, 1)
	go func() { done <- db.ApplyCreates(context.Background(), creates) }()
	return done
}

func message(token string, chat, number int64) instachat.Create {
	at := instachat.Timestamp(time.Now())
	return instachat.Create{Message: &instachat.Message{Token: token, Chat: chat, Number: number, Body: "b", CreatedAt: at, UpdatedAt: at}}
}

func chatCreate(token string, number int64) instachat.Create {
	at := instachat.Timestamp(time.Now())
	return instachat.Create{Chat: &instachat.Chat{Token: token, Number: number, CreatedAt: at, UpdatedAt: at}}
}

// waitHeld waits until a held transaction is in its hold.
func waitHeld(t *testing.T, held <-chan struct{}) {
	t.Helper()
	select {
	case <-held:
	case <-time.After(30 * time.Second):
		t.Fatal("the held batch never reached its commit")
	}
}

// blocked reports whether nothing came on done within a while: the call
// behind it is waiting for a lock.
func blocked(done <-chan error) bool {
	select {
	case <-done:
		return false
	case <-time.After(500 * time.Millisecond):
		return true
	}
}

func wantDone(t *testing.T, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s never finished", what)
	}
}

// TestMessageBatchesOfOneApplicationRunTogether: while a batch of messages
// of chat 1 holds its transaction open, a batch of messages of chat 2 of
// the same application commits. Before, each batch locked the application
// row exclusively and the second waited for the first to commit.
func TestMessageBatchesOfOneApplicationRunTogether(t *testing.T) {
	db := openTest(t)
	app := newApp(t, db)
	if err := db.ApplyCreates(t.Context(), []instachat.Create{chatCreate(app.Token, 1), chatCreate(app.Token, 2)}); err != nil {
		t.Fatal(err)
	}
	held, release := holdBatches(t, db, func(c instachat.Create) bool { return c.Message != nil && c.Message.Chat == 1 })
	first := applyAsync(db, message(app.Token, 1, 1), message(app.Token, 1, 2))
	waitHeld(t, held)

	second := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		second <- db.ApplyCreates(ctx, []instachat.Create{message(app.Token, 2, 1)})
	}()
	wantDone(t, "the batch of chat 2 beside the open batch of chat 1", second)
	if c, err := db.FindChat(t.Context(), app.Token, 2); err != nil || c.MessagesCount != 1 || c.Revision != 1 {
		t.Errorf("chat 2 = %+v, %v; want 1 message at revision 1", c, err)
	}
	release()
	wantDone(t, "the batch of chat 1", first)
	if c, err := db.FindChat(t.Context(), app.Token, 1); err != nil || c.MessagesCount != 2 || c.Revision != 2 {
		t.Errorf("chat 1 = %+v, %v; want 2 messages at revision 2", c, err)
	}
}

// TestMessageBatchStillHoldsOffWriters: a held batch of messages only
// still holds off what writes the application's row — a chat create,
// deleting a chat, deleting the application — and a batch of messages of
// the same chat; once the application is deleted, a batch of messages gets
// no row.
func TestMessageBatchStillHoldsOffWriters(t *testing.T) {
	db := openTest(t)
	app := newApp(t, db)
	if err := db.ApplyCreates(t.Context(), []instachat.Create{chatCreate(app.Token, 1), chatCreate(app.Token, 2)}); err != nil {
		t.Fatal(err)
	}
	held, release := holdBatches(t, db, func(c instachat.Create) bool { return c.Message != nil && c.Message.Number == 1 })
	first := applyAsync(db, message(app.Token, 1, 1))
	waitHeld(t, held)

	sameChat := applyAsync(db, message(app.Token, 1, 2))
	newChat := applyAsync(db, chatCreate(app.Token, 3))
	deleteChat := make(chan error, 1)
	go func() {
		_, err := db.DeleteChat(context.Background(), app.Token, 2, instachat.Timestamp(time.Now()))
		deleteChat <- err
	}()
	for what, done := range map[string]<-chan error{
		"a batch of the same chat": sameChat, "a chat create": newChat, "DeleteChat": deleteChat,
	} {
		if !blocked(done) {
			t.Errorf("%s went through beside the open batch", what)
		}
	}
	release()
	wantDone(t, "the held batch", first)
	wantDone(t, "the batch of the same chat", sameChat)
	wantDone(t, "the chat create", newChat)
	wantDone(t, "DeleteChat", deleteChat)

	// Deleting the application waits for a held batch too, and the batch
	// after it stores nothing.
	held, release = holdBatches(t, db, func(c instachat.Create) bool { return c.Message != nil && c.Message.Number == 3 })
	third := applyAsync(db, message(app.Token, 1, 3))
	waitHeld(t, held)
	deleteApp := make(chan error, 1)
	go func() {
		deleteApp <- db.DeleteApplication(context.Background(), app.Token, instachat.Timestamp(time.Now()))
	}()
	if !blocked(deleteApp) {
		t.Error("DeleteApplication went through beside the open batch")
	}
	release()
	wantDone(t, "the batch before the delete", third)
	wantDone(t, "DeleteApplication", deleteApp)
	late := message(app.Token, 1, 4)
	if err := db.ApplyCreates(t.Context(), []instachat.Create{late}); err != nil {
		t.Fatal(err)
	}
	if late.Message.DeletedAt == nil {
		t.Error("a message of a deleted application was not dropped")
	}
	var n int
	err := db.db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM messages WHERE app_token = ? AND number = 4`, app.Token).Scan(&n)
	if err != nil || n != 0 {
		t.Errorf("messages stored after the application was deleted: %d, %v", n, err)
	}
}

// TestMessagesBeforeTheirChatLockExclusively: a batch of messages whose
// chat row is not stored yet is applied again under the exclusive lock, so
// a chat create of that chat waits for it and counts its messages.
func TestMessagesBeforeTheirChatLockExclusively(t *testing.T) {
	db := openTest(t)
	app := newApp(t, db)
	held, release := holdBatches(t, db, func(c instachat.Create) bool { return c.Message != nil })
	early := applyAsync(db, message(app.Token, 1, 1), message(app.Token, 1, 2))
	waitHeld(t, held)
	chat := chatCreate(app.Token, 1)
	created := applyAsync(db, chat)
	if !blocked(created) {
		t.Error("the chat create went through beside the open batch of its messages")
	}
	release()
	wantDone(t, "the messages", early)
	wantDone(t, "the chat", created)
	if chat.Chat.MessagesCount != 2 || chat.Chat.Revision != 2 {
		t.Errorf("chat = %+v; want 2 messages at revision 2", chat.Chat)
	}
}
