package instachat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// A client that did not get an answer to a create cannot tell whether it
// happened. Sending the create again with the same Idempotency-Key makes it
// safe to retry: the sequencer that issues the number keeps a Receipt under
// (token, key), and a retry is answered from the receipt — the same number,
// the same timestamps — instead of creating another chat or message.
//
// Receipts live where numbers are issued, because issuing a number and
// keeping its receipt must be one atomic step: two retries racing each other
// must not both issue. The embedded sequencer keeps them in memory and the
// store keeps them durable with the row (see Create.IdempotencyKey), so they
// outlive a restart; Redis keeps them with an expiry, shared by every
// dispatcher process.
//
// Where the sequencer holds receipts only in memory (inmem), a ReceiptStore
// keeps them durable beside the rows; where it keeps them itself, shared and
// expiring (redis: a key per receipt, written by the Lua script that issues
// the number, with the retention as its expiry), none is needed and the
// store ignores Create.IdempotencyKey.
//
// A retry re-publishes the original create. If the first attempt's create
// was stored, the store's unique keys skip the second; if it was lost — the
// first attempt failed after its number was issued — the retry stores it, so
// the number it answers always exists.

// DefaultReceiptTTL is how long a sequencer keeps a receipt by default.
const DefaultReceiptTTL = 24 * time.Hour

// ReceiptRetention is d, or DefaultReceiptTTL when d is not positive: how
// long a backend configured with d keeps receipts.
func ReceiptRetention(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return DefaultReceiptTTL
}

// MaxIdempotencyKeyBytes bounds an Idempotency-Key.
const MaxIdempotencyKeyBytes = 255

// Receipt is what a sequencer keeps of a create made with an idempotency key.
type Receipt struct {
	Number      int64     // the chat number or message number issued
	Fingerprint string    // Fingerprint of the create, to refuse a reused key
	CreatedAt   time.Time // the create's timestamps, so a retry answers the same
}

// ValidIdempotencyKey reports whether key may be used: 1 to 255 printable
// ASCII characters (UUIDs and the like), which every backend can store as is.
func ValidIdempotencyKey(key string) bool {
	if key == "" || len(key) > MaxIdempotencyKeyBytes {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < ' ' || key[i] > '~' {
			return false
		}
	}
	return true
}

// Fingerprint identifies what a create asks for — a chat with its name, or a
// message in its chat with its body — but not the number or time it got, so
// that a retry can be told from a different request reusing the key.
func Fingerprint(c Create) string {
	h := sha256.New()
	switch {
	case c.Chat != nil:
		h.Write([]byte("chat\x00"))
		h.Write([]byte(c.Chat.Name))
	case c.Message != nil:
		h.Write([]byte("message\x00"))
		h.Write(strconv.AppendInt(nil, c.Message.Chat, 10))
		h.Write([]byte{0})
		h.Write([]byte(c.Message.Body))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// ReceiptStore keeps receipts durable for a sequencer that holds them in
// memory (inmem.LoadSequencer loads them at start). It is implemented by a
// Store (sqlite), whose ApplyCreates keeps them:
//
//   - What is kept: for each create of a batch that carries an
//     IdempotencyKey, under (its token, the key), a Receipt of the number
//     the create was issued, Fingerprint of the create and the create's
//     CreatedAt — in the transaction that stores the row, so a receipt is
//     kept exactly when its batch commits. Keys are per application; a
//     chat's and a message's share one key space. A redelivered create
//     changes nothing. When a key's receipt is replaced by a create of a
//     later CreatedAt (the key reused once the first receipt expired), the
//     later one is kept, and a late redelivery of the earlier create does
//     not bring the earlier one back.
//   - Retention: the store keeps a receipt until it is pruned. Its reader
//     decides how long a receipt answers retries (ReceiptRetention of its
//     configured TTL, from the receipt's CreatedAt) and ignores older ones.
//   - Prune: a chore calls PruneReceipts with now less the retention, at
//     start and then periodically, so the store holds at most the retention
//     plus one period of keyed creates.
type ReceiptStore interface {
	// Receipts calls fn with every receipt kept, in no particular order,
	// and stops with fn's error.
	Receipts(ctx context.Context, fn func(token, key string, r Receipt) error) error
	// PruneReceipts deletes the receipts whose CreatedAt is before before,
	// and reports how many it deleted.
	PruneReceipts(ctx context.Context, before time.Time) (int64, error)
}

// ErasedFingerprint replaces the Fingerprint of a receipt whose chat or
// message was deleted: the receipt keeps the number, so a retry with its key
// issues nothing, and nothing of what the create held. A dispatcher answers
// such a retry not found.
const ErasedFingerprint = "erased"

// ReceiptEraser is implemented by a Sequencer that keeps its receipts
// apart from the store (redis), where the store's deletion cannot erase
// them: EraseReceipt overwrites the fingerprint of the receipt, if one is
// kept, that issued number in the scope (a chat of ChatsOf, a message of
// MessagesOf) with ErasedFingerprint, so that a retry of the create answers
// not found at once instead of being queued for the store to drop. The
// dispatcher's Deletes calls it once the store committed a deletion.
type ReceiptEraser interface {
	EraseReceipt(ctx context.Context, s Scope, number int64) error
}

// ErrKeyReused answers a request whose Idempotency-Key was first used for a
// different create.
var ErrKeyReused = Errorf(EINVALID, "this Idempotency-Key was already used for a different request")
