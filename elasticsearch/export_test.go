package elasticsearch

import "testing"

// SetForgetBatch sets the most documents one delete by query deletes, for
// the test.
func SetForgetBatch(t testing.TB, n int) {
	old := forgetBatch
	forgetBatch = n
	t.Cleanup(func() { forgetBatch = old })
}
