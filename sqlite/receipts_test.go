package sqlite

import (
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// TestReceiptsKeptWithRows shows ApplyCreates keeps a keyed create's
// receipt in its transaction, a redelivery changes nothing, and pruning
// drops only the old ones.
func TestReceiptsKeptWithRows(t *testing.T) {
	db, token, old := receiptDB(t)
	ctx := t.Context()
	now := old.Add(48 * time.Hour)
	chat := instachat.Create{Chat: &instachat.Chat{Token: token, Number: 1, Name: "c", CreatedAt: old, UpdatedAt: old}, IdempotencyKey: "chat-key"}
	msg := instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: 1, Body: "hi", CreatedAt: now, UpdatedAt: now}, IdempotencyKey: "msg-key"}
	plain := instachat.Create{Message: &instachat.Message{Token: token, Chat: 1, Number: 2, Body: "no key", CreatedAt: now, UpdatedAt: now}}
	for range 2 { // the second time is a redelivery
		if err := db.ApplyCreates(ctx, []instachat.Create{chat, msg, plain}); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]instachat.Receipt{}
	if err := db.Receipts(ctx, func(tok, key string, r instachat.Receipt) error {
		if tok != token {
			t.Errorf("receipt of token %s", tok)
		}
		got[key] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]instachat.Receipt{
		"chat-key": {Number: 1, Fingerprint: instachat.Fingerprint(chat), CreatedAt: old},
		"msg-key":  {Number: 1, Fingerprint: instachat.Fingerprint(msg), CreatedAt: now},
	}
	if len(got) != len(want) {
		t.Fatalf("receipts = %+v; want %+v", got, want)
	}
	for k, w := range want {
		if g := got[k]; g.Number != w.Number || g.Fingerprint != w.Fingerprint || !g.CreatedAt.Equal(w.CreatedAt) {
			t.Errorf("receipt %s = %+v; want %+v", k, g, w)
		}
	}
	c, err := db.FindChat(ctx, token, 1)
	if err != nil || c.MessagesCount != 2 {
		t.Fatalf("chat after a redelivered batch = %+v, %v; want 2 messages", c, err)
	}
	n, err := db.PruneReceipts(ctx, now.Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PruneReceipts = %d, %v; want the one old receipt", n, err)
	}
	var left []string
	db.Receipts(ctx, func(_, key string, _ instachat.Receipt) error { left = append(left, key); return nil })
	if len(left) != 1 || left[0] != "msg-key" {
		t.Fatalf("receipts after pruning = %v; want [msg-key]", left)
	}
}

// TestReceiptOfAReusedKeyReplacesTheExpiredOne: a key used again after its
// receipt expired, before the prune deleted it, keeps the newer receipt,
// and a late redelivery of the older create does not bring the old one back.
func TestReceiptOfAReusedKeyReplacesTheExpiredOne(t *testing.T) {
	db, token, t0 := receiptDB(t)
	ctx := t.Context()
	t1 := t0.Add(25 * time.Hour)
	chat := func(n int64, at time.Time) instachat.Create {
		return instachat.Create{Chat: &instachat.Chat{Token: token, Number: n, Name: "c", CreatedAt: at, UpdatedAt: at}, IdempotencyKey: "k"}
	}
	for _, batch := range [][]instachat.Create{{chat(1, t0)}, {chat(2, t1)}, {chat(1, t0)}} {
		if err := db.ApplyCreates(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	var got []instachat.Receipt
	db.Receipts(ctx, func(_, _ string, r instachat.Receipt) error { got = append(got, r); return nil })
	if len(got) != 1 || got[0].Number != 2 || !got[0].CreatedAt.Equal(t1) {
		t.Fatalf("receipts of key k = %+v; want only chat 2's", got)
	}
}

// receiptDB returns a database holding one application, its token and the
// time it was created.
func receiptDB(t *testing.T) (*DB, string, time.Time) {
	t.Helper()
	db, token := openTest(t), instachat.NewToken()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := db.CreateApplication(t.Context(), &instachat.Application{Token: token, Name: "a", CreatedAt: at, UpdatedAt: at}); err != nil {
		t.Fatal(err)
	}
	return db, token, at
}
