package testenv

import (
	"testing"
	"time"
)

// Eventually calls check until it returns nil, and fails the test with its
// last error if that takes longer than within: for what a test waits on
// across goroutines or processes, such as a message stored after its 202.
func Eventually(t testing.TB, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still after %v: %v", within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
