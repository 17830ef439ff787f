// Package conformance holds the suites that every backend of an instachat
// interface must pass — TestStore, TestSearcher, TestSequencer, TestQueue,
// TestRateLimiter, TestBroker — so the embedded and the production engines
// keep one contract. A backend's tests call a suite with a function that
// opens the backend under test. Each suite is a list of named cases, one
// function each; where backends may differ (search ranking), cases are
// tagged with the engines they hold for (see Engine).
package conformance

import (
	"testing"

	"github.com/instachat/instachat"
)

// wantCode fails the test unless err carries the instachat error code.
func wantCode(t *testing.T, err error, code, what string) {
	t.Helper()
	if got := instachat.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}
