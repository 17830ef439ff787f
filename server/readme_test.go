package server

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's configuration table from Options")

// optionsTable renders Options as the README's markdown table.
func optionsTable() string {
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	for _, o := range Options {
		fmt.Fprintf(&b, "| `%s` | `-%s` | `%s` | %s |\n", o.Env, o.Flag, o.Default, o.Usage)
	}
	return b.String()
}

// TestREADMEConfigTable fails when a setting is added, renamed or
// re-defaulted without the README following; -update rewrites the table.
func TestREADMEConfigTable(t *testing.T) {
	const path, begin, end = "../README.md", "<!-- options:begin -->\n", "<!-- options:end -->"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q … %q markers", begin, end)
	}
	want := optionsTable()
	if got := readme[i+len(begin) : j]; got != want {
		if *update {
			if err := os.WriteFile(path, []byte(readme[:i+len(begin)]+want+readme[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("README.md's configuration table is out of date; run: go test ./server -run TestREADMEConfigTable -update\nwant:\n%s", want)
	}
}
