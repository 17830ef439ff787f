package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/sqlrow"
)

// keepReceipts stores the receipt of each create made with an idempotency
// key, in the transaction that stores its row. A retried create finds its
// receipt there and changes nothing.
func (db *DB) keepReceipts(ctx context.Context, tx *sql.Tx, creates []instachat.Create) error {
	var insert *sql.Stmt
	for _, c := range creates {
		if c.IdempotencyKey == "" {
			continue
		}
		if insert == nil {
			insert = tx.StmtContext(ctx, db.insertReceipt)
		}
		var chat, number int64
		var at time.Time
		if ch := c.Chat; ch != nil {
			number, at = ch.Number, ch.CreatedAt
		} else {
			chat, number, at = c.Message.Chat, c.Message.Number, c.Message.CreatedAt
		}
		if _, err := insert.ExecContext(ctx, c.Token(), c.IdempotencyKey, chat, number, instachat.Fingerprint(c), at.UnixMicro()); err != nil {
			return formatError(err, "")
		}
	}
	return nil
}

// Receipts implements instachat.ReceiptStore, for inmem.LoadSequencer.
func (db *DB) Receipts(ctx context.Context, fn func(token, key string, r instachat.Receipt) error) error {
	type kept struct {
		token, key string
		instachat.Receipt
	}
	rows, err := db.read.QueryContext(ctx, `SELECT app_token, idempotency_key, number, fingerprint, created_at FROM receipts`)
	return sqlrow.Each(rows, err, func(s sqlrow.Scanner) (kept, error) {
		var k kept
		return k, s.Scan(&k.token, &k.key, &k.Number, &k.Fingerprint, unixMicro{&k.CreatedAt})
	}, func(k kept) error { return fn(k.token, k.key, k.Receipt) }, formatError)
}

// PruneReceipts implements instachat.ReceiptStore. It deletes in batches, each its own
// transaction, so the one writer is never held for long and ApplyCreates
// goes on between them.
func (db *DB) PruneReceipts(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		res, err := db.write.ExecContext(ctx, `DELETE FROM receipts WHERE (app_token, idempotency_key) IN (
			SELECT app_token, idempotency_key FROM receipts WHERE created_at < ? ORDER BY created_at LIMIT ?)`,
			before.UnixMicro(), pruneBatch)
		if err != nil {
			return total, formatError(err, "")
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, formatError(err, "")
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// pruneBatch is how many receipts one prune transaction deletes.
const pruneBatch = 5000
