package redis

import (
	"context"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// TestReceiptExpires shows a receipt stops answering after ReceiptTTL: the
// key then issues a new number.
func TestReceiptExpires(t *testing.T) {
	s := open(t, testPrefix(t))
	s.ReceiptTTL = 200 * time.Millisecond
	token := instachat.NewToken()
	if err := s.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Microsecond)
	first, replayed, err := s.NextNumberOnce(t.Context(), instachat.ChatsOf(token), "k", instachat.Receipt{Fingerprint: "f", CreatedAt: at})
	if err != nil || replayed || first.Number != 1 {
		t.Fatalf("first = %+v, %v, %v; want chat 1", first, replayed, err)
	}
	again, replayed, err := s.NextNumberOnce(t.Context(), instachat.ChatsOf(token), "k", instachat.Receipt{Fingerprint: "g"})
	if err != nil || !replayed || again.Number != 1 || again.Fingerprint != "f" || !again.CreatedAt.Equal(at) {
		t.Fatalf("retry = %+v, %v, %v; want the first receipt %+v", again, replayed, err, first)
	}
	time.Sleep(300 * time.Millisecond)
	later, replayed, err := s.NextNumberOnce(t.Context(), instachat.ChatsOf(token), "k", instachat.Receipt{Fingerprint: "g"})
	if err != nil || replayed || later.Number != 2 {
		t.Fatalf("after the TTL = %+v, %v, %v; want a new chat 2", later, replayed, err)
	}
}

// TestReceiptSurvivesRecovery shows a keyed create recovers lost numbering
// like any other: the receipt path runs the same recovery.
func TestReceiptSurvivesRecovery(t *testing.T) {
	prefix := testPrefix(t)
	s := open(t, prefix)
	token := instachat.NewToken()
	if err := s.AddApplication(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.NextChatNumber(t.Context(), token); err != nil {
			t.Fatal(err)
		}
	}
	deleteKeys(t, s, "*")
	s.Recover = func(_ context.Context, scope instachat.Scope) (int64, error) {
		if !scope.ChatNumbers() {
			t.Errorf("recovered chat %d; want the application", scope.Chat)
		}
		return 3, nil
	}
	r, replayed, err := s.NextNumberOnce(t.Context(), instachat.ChatsOf(token), "after-loss", instachat.Receipt{Fingerprint: "f"})
	if err != nil || replayed || r.Number != 4 {
		t.Fatalf("keyed chat after a loss = %+v, %v, %v; want chat 4", r, replayed, err)
	}
}
