package inmem

import (
	"context"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// receiptStore holds kept receipts.
type receiptStore map[[2]string]instachat.Receipt

func (s receiptStore) Receipts(_ context.Context, fn func(token, key string, r instachat.Receipt) error) error {
	for k, r := range s {
		if err := fn(k[0], k[1], r); err != nil {
			return err
		}
	}
	return nil
}

func (s receiptStore) PruneReceipts(context.Context, time.Time) (int64, error) {
	panic("LoadSequencer prunes nothing")
}

// TestLoadSequencerReceipts shows that a restarted sequencer answers a
// retry from the receipt the store kept, and forgets those past the TTL.
func TestLoadSequencerReceipts(t *testing.T) {
	token := instachat.NewToken()
	now := time.Now().UTC()
	store := watermarks{{Scope: instachat.ChatsOf(token), Highest: 2}, {Scope: instachat.MessagesOf(token, 1), Highest: 5}}
	receipts := receiptStore{
		{token, "fresh"}: {Number: 5, Fingerprint: "f", CreatedAt: now.Add(-time.Hour)},
		{token, "stale"}: {Number: 4, Fingerprint: "s", CreatedAt: now.Add(-3 * time.Hour)},
	}
	s, err := LoadSequencer(t.Context(), store, receipts, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r, replayed, err := s.NextNumberOnce(t.Context(), instachat.MessagesOf(token, 1), "fresh", instachat.Receipt{Fingerprint: "f"})
	if err != nil || !replayed || r.Number != 5 || !r.CreatedAt.Equal(now.Add(-time.Hour)) {
		t.Fatalf("retry after restart = %+v, %v, %v; want the kept receipt of message 5", r, replayed, err)
	}
	r, replayed, err = s.NextNumberOnce(t.Context(), instachat.MessagesOf(token, 1), "stale", instachat.Receipt{Fingerprint: "s2"})
	if err != nil || replayed || r.Number != 6 {
		t.Fatalf("key past the TTL = %+v, %v, %v; want a new message 6", r, replayed, err)
	}
}

// TestReceiptsExpireAndAreSwept drives the clock past the TTL: the key
// issues anew, and the sweep drops what expired.
func TestReceiptsExpireAndAreSwept(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := NewSequencer()
	s.ReceiptTTL = time.Hour
	s.Now = func() time.Time { return now }
	token := instachat.NewToken()
	s.AddApplication(t.Context(), token)
	for i, key := range []string{"a", "b", "c"} {
		r, replayed, err := s.NextNumberOnce(t.Context(), instachat.ChatsOf(token), key, instachat.Receipt{Fingerprint: key})
		if err != nil || replayed || r.Number != int64(i+1) {
			t.Fatalf("%s = %+v, %v, %v", key, r, replayed, err)
		}
	}
	now = now.Add(59 * time.Minute)
	if _, replayed, _ := s.NextNumberOnce(t.Context(), instachat.ChatsOf(token), "a", instachat.Receipt{Fingerprint: "a"}); !replayed {
		t.Fatal("a receipt within its TTL did not replay")
	}
	now = now.Add(2 * time.Minute)
	r, replayed, err := s.NextNumberOnce(t.Context(), instachat.ChatsOf(token), "a", instachat.Receipt{Fingerprint: "a"})
	if err != nil || replayed || r.Number != 4 {
		t.Fatalf("after the TTL = %+v, %v, %v; want a new chat 4", r, replayed, err)
	}
	s.receiptsMu.Lock()
	defer s.receiptsMu.Unlock()
	if len(s.receipts) != 1 {
		t.Fatalf("%d receipts kept after the sweep; want only the new one", len(s.receipts))
	}
}
