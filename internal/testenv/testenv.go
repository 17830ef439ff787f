// Package testenv finds the external services that integration tests run
// against, such as MySQL, Redis or Elasticsearch, and waits, with Eventually,
// on what those tests see happen outside their goroutine.
package testenv

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Lookup returns the value of the environment variable name, which points
// the test at a service. When it is unset the test is skipped, except under
// CI=true, where it fails: a suite that skips for want of its service would
// pass a build without having run. The one way out under CI is to name the
// variable in INSTACHAT_TEST_UNAVAILABLE (comma-separated), which .ci/run
// does for a service that cannot run on its machine, saying why; the skip
// message then says so too.
func Lookup(t testing.TB, name string) string {
	t.Helper()
	if v := os.Getenv(name); v != "" {
		return v
	}
	if slices.Contains(strings.Split(os.Getenv("INSTACHAT_TEST_UNAVAILABLE"), ","), name) {
		t.Skipf("%s is declared unavailable on this machine (INSTACHAT_TEST_UNAVAILABLE): not run here", name)
	}
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatalf("%s is not set: CI=true requires the service it names", name)
	}
	t.Skipf("%s is not set: set it to run this test against a real service", name)
	return ""
}
