package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestServerBinaryLinksNoLoadTools keeps the load tools' dependencies out
// of the production binary: charts, their LaTeX and PDF back ends and
// fonts, and the progress bar belong to cmd/instachat-bench.
func TestServerBinaryLinksNoLoadTools(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, banned := range []string{"gonum.org/", "latex", "pdf", "font", "progressbar", "/bench"} {
			if strings.Contains(pkg, banned) {
				t.Errorf("cmd/instachat depends on %s", pkg)
			}
		}
	}
}
