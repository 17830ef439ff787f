package sqlite

import (
	"testing"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/conformance"
)

func TestReceiptStoreConformance(t *testing.T) {
	conformance.TestReceiptStore(t, func(t *testing.T) (instachat.Store, instachat.ReceiptStore) {
		db := openTest(t)
		return db, db
	})
}

func TestReceiptStoreConformanceShared(t *testing.T) {
	db := openTest(t)
	conformance.TestReceiptStore(t, func(*testing.T) (instachat.Store, instachat.ReceiptStore) { return db, db })
}
