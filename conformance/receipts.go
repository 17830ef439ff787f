package conformance

import (
	"errors"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// OpenReceiptStore opens a store under test and the ReceiptStore that keeps
// the receipts of its ApplyCreates: the same value for sqlite.
type OpenReceiptStore func(t *testing.T) (instachat.Store, instachat.ReceiptStore)

// TestReceiptStore checks a ReceiptStore against the contract written on
// instachat.ReceiptStore: what ApplyCreates keeps, and what PruneReceipts
// deletes. Each subtest reads only the receipts of applications of its own.
func TestReceiptStore(t *testing.T, open OpenReceiptStore) {
	opened := func(test func(*testing.T, instachat.Store, instachat.ReceiptStore)) func(*testing.T) {
		return func(t *testing.T) { s, rs := open(t); test(t, s, rs) }
	}
	t.Run("keeps the receipt of each keyed create with its row, once", opened(testReceiptsKept))
	t.Run("keeps no receipt of a refused batch", opened(testReceiptsNotKeptOnRefusal))
	t.Run("keys belong to their application", opened(testReceiptsPerApplication))
	t.Run("a key reused after its receipt expired keeps the later receipt", opened(testReceiptsKeyReused))
	t.Run("PruneReceipts deletes the receipts created before the cutoff", opened(testReceiptsPrune))
	t.Run("Receipts stops with fn's error", opened(testReceiptsStop))
}

func testReceiptsKept(t *testing.T, s instachat.Store, rs instachat.ReceiptStore) {
	app := storeNewApp(t, s, 0)
	chat, msg, plain := storeChat(app.Token, 1), storeMessage(app.Token, 1, 1), storeMessage(app.Token, 1, 2)
	chat.IdempotencyKey, msg.IdempotencyKey = "chat-key", "msg-key"
	for range 2 { // the second time is a redelivery
		storeApply(t, s, chat, msg, plain)
	}
	receiptsWant(t, rs, app.Token, map[string]instachat.Receipt{
		"chat-key": {Number: 1, Fingerprint: instachat.Fingerprint(chat), CreatedAt: chat.Chat.CreatedAt},
		"msg-key":  {Number: 1, Fingerprint: instachat.Fingerprint(msg), CreatedAt: msg.Message.CreatedAt},
	})
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 2})
}

func testReceiptsNotKeptOnRefusal(t *testing.T, s instachat.Store, rs instachat.ReceiptStore) {
	app := storeNewApp(t, s, 0)
	chat := storeChat(app.Token, 1)
	chat.IdempotencyKey = "k"
	err := s.ApplyCreates(t.Context(), []instachat.Create{chat, {}})
	wantCode(t, err, instachat.EINVALID, "ApplyCreates of a batch with an invalid create")
	receiptsWant(t, rs, app.Token, map[string]instachat.Receipt{})
}

func testReceiptsPerApplication(t *testing.T, s instachat.Store, rs instachat.ReceiptStore) {
	a, b := storeNewApp(t, s, 0), storeNewApp(t, s, 1)
	ca, cb := storeChat(a.Token, 1), storeChat(b.Token, 2)
	ca.IdempotencyKey, cb.IdempotencyKey = "same-key", "same-key"
	storeApply(t, s, ca, cb)
	receiptsWant(t, rs, a.Token, map[string]instachat.Receipt{
		"same-key": {Number: 1, Fingerprint: instachat.Fingerprint(ca), CreatedAt: ca.Chat.CreatedAt},
	})
	receiptsWant(t, rs, b.Token, map[string]instachat.Receipt{
		"same-key": {Number: 2, Fingerprint: instachat.Fingerprint(cb), CreatedAt: cb.Chat.CreatedAt},
	})
}

func testReceiptsKeyReused(t *testing.T, s instachat.Store, rs instachat.ReceiptStore) {
	app := storeNewApp(t, s, 0)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(25 * time.Hour)
	chat := func(n int64, at time.Time) instachat.Create {
		return instachat.Create{Chat: &instachat.Chat{Token: app.Token, Number: n, Name: "c", CreatedAt: at, UpdatedAt: at}, IdempotencyKey: "k"}
	}
	// The key's first create, its reuse, then a late redelivery of the first.
	for _, c := range []instachat.Create{chat(1, t0), chat(2, t1), chat(1, t0)} {
		storeApply(t, s, c)
	}
	receiptsWant(t, rs, app.Token, map[string]instachat.Receipt{
		"k": {Number: 2, Fingerprint: instachat.Fingerprint(chat(2, t1)), CreatedAt: t1},
	})
}

func testReceiptsPrune(t *testing.T, s instachat.Store, rs instachat.ReceiptStore) {
	app := storeNewApp(t, s, 0)
	// Long past, so that no receipt of another subtest sharing the store
	// is as old.
	t0 := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	var creates []instachat.Create
	for i, key := range []string{"oldest", "old", "recent"} {
		at := t0.Add(time.Duration(i) * time.Hour)
		creates = append(creates, instachat.Create{IdempotencyKey: key,
			Chat: &instachat.Chat{Token: app.Token, Number: int64(i + 1), Name: key, CreatedAt: at, UpdatedAt: at}})
	}
	storeApply(t, s, creates...)
	cutoff := t0.Add(90 * time.Minute)
	if n, err := rs.PruneReceipts(t.Context(), cutoff); err != nil || n != 2 {
		t.Fatalf("PruneReceipts(%v) = %d, %v; want the 2 receipts before it", cutoff, n, err)
	}
	if n, err := rs.PruneReceipts(t.Context(), cutoff); err != nil || n != 0 {
		t.Fatalf("PruneReceipts again = %d, %v; want 0", n, err)
	}
	receiptsWant(t, rs, app.Token, map[string]instachat.Receipt{
		"recent": {Number: 3, Fingerprint: instachat.Fingerprint(creates[2]), CreatedAt: creates[2].Chat.CreatedAt},
	})
	// Pruning keeps the rows: only receipts go.
	storeWantCounts(t, s, app.Token, map[int64]int64{1: 0, 2: 0, 3: 0})
}

func testReceiptsStop(t *testing.T, s instachat.Store, rs instachat.ReceiptStore) {
	app := storeNewApp(t, s, 0)
	a, b := storeChat(app.Token, 1), storeChat(app.Token, 2)
	a.IdempotencyKey, b.IdempotencyKey = "a", "b"
	storeApply(t, s, a, b)
	stop, calls := errors.New("stop"), 0
	err := rs.Receipts(t.Context(), func(string, string, instachat.Receipt) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Receipts with fn failing = %v after %d calls; want fn's error after 1", err, calls)
	}
}

// receiptsWant checks the receipts kept for token, by key, every instant
// compared with time.Equal.
func receiptsWant(t *testing.T, rs instachat.ReceiptStore, token string, want map[string]instachat.Receipt) {
	t.Helper()
	got := map[string]instachat.Receipt{}
	err := rs.Receipts(t.Context(), func(tok, key string, r instachat.Receipt) error {
		if tok == token {
			if _, twice := got[key]; twice {
				t.Errorf("Receipts gave key %q twice", key)
			}
			got[key] = r
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Receipts: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("receipts kept = %+v\nwant %+v", got, want)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g.Number != w.Number || g.Fingerprint != w.Fingerprint || !g.CreatedAt.Equal(w.CreatedAt) {
			t.Errorf("receipt %q = %+v (kept: %t); want %+v", k, g, ok, w)
		}
	}
}
