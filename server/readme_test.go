package server

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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

// TestREADMEWalkthrough runs the README's shell sessions (the sh blocks of
// "$ " prompts, in order, in one bash, so a variable set in one is there in
// the next; streams, curl -N, aside) against a real embedded server, with localhost:8080 and
// instachat-data pointing at the test's own, and holds each command's
// output to the lines the README shows after it: each must match an output
// line, in order, once tokens and times are set aside and "…" stands for
// anything. A literal token copied from the page, a key the server
// refuses or an answer that changed shape fails it.
func TestREADMEWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("the README walkthrough needs %s", tool)
			}
			t.Skipf("the README walkthrough needs %s, not installed", tool)
		}
	}
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := walkthrough(string(raw))
	if len(steps) < 10 {
		t.Fatalf("found %d commands in the README's sessions; the walkthrough is missing", len(steps))
	}

	cfg := DefaultConfig()
	dir := t.TempDir()
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", filepath.Join(dir, "instachat-data")
	s := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := s.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	host := strings.TrimPrefix(s.URL(), "http://")

	// One script: each command, then a marker line with its status. A curl
	// that hangs fails its step instead of stalling the test.
	var script strings.Builder
	script.WriteString("curl() { command curl --max-time 10 \"$@\"; }\n")
	for i, st := range steps {
		fmt.Fprintf(&script, "%s\necho; echo '@@step %d' $?\n", strings.ReplaceAll(st.command, "localhost:8080", host), i)
	}
	cmd := exec.CommandContext(t.Context(), "bash", "--noprofile", "--norc")
	cmd.Dir = dir // so instachat-data/ is the server's
	cmd.Stdin = strings.NewReader(script.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	outputs := map[int][]string{}
	var current []string
	for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r", ""), "\n") {
		var step, status int
		if n, _ := fmt.Sscanf(line, "@@step %d %d", &step, &status); n == 2 {
			if status != 0 {
				t.Errorf("$ %s\nexited %d:\n%s", steps[step].command, status, strings.Join(current, "\n"))
			}
			outputs[step], current = current, nil
			continue
		}
		current = append(current, line)
	}
	for i, st := range steps {
		if problem := matchOutput(st.output, outputs[i]); problem != "" {
			t.Errorf("$ %s\n%s\nthe README shows:\n%s\nthe server answered:\n%s", st.command, problem,
				strings.Join(st.output, "\n"), strings.Join(outputs[i], "\n"))
		}
	}
}

type step struct {
	command string
	output  []string
}

// walkthrough returns the commands of the README's sh blocks written as
// "$ " sessions, each with the lines shown after it.
func walkthrough(readme string) []step {
	var steps []step
	in, prompted := false, false // in an sh block; after a prompt in it
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case line == "```sh":
			in, prompted = true, false
		case line == "```":
			in = false
		case !in:
		case strings.HasPrefix(line, "$ curl -N "):
			// A stream shows events that other clients cause, and does
			// not end: its own tests cover it.
			prompted = false
		case strings.HasPrefix(line, "$ "):
			steps, prompted = append(steps, step{command: strings.TrimPrefix(line, "$ ")}), true
		case prompted:
			last := &steps[len(steps)-1]
			last.output = append(last.output, line)
		}
	}
	return steps
}

var (
	tokenPattern = regexp.MustCompile(`[A-Za-z0-9_-]{22}`)
	timePattern  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
)

// normal sets aside what differs from run to run: tokens and times.
func normal(s string) string {
	return tokenPattern.ReplaceAllString(timePattern.ReplaceAllString(s, "<time>"), "<token>")
}

// matchOutput reports how got fails to show want's lines in order, "" if
// it shows them.
func matchOutput(want, got []string) string {
	// Blank lines at the ends are the script's own.
	for len(want) > 0 && want[len(want)-1] == "" {
		want = want[:len(want)-1]
	}
	next := 0
	for _, w := range want {
		parts := strings.Split(normal(w), "…")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		for next < len(got) && !re.MatchString(normal(got[next])) {
			next++
		}
		if next == len(got) {
			return fmt.Sprintf("no line of the answer, in order, matches %q", w)
		}
		next++
	}
	return ""
}

// TestREADMELinksStayInTheRepository: a relative link of the README or of
// docs/ must name a file of the repository, so a clone has what it points
// to.
func TestREADMELinksStayInTheRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob("../docs/*.md")
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, doc := range append([]string{"../README.md"}, docs...) {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(raw), -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, err := filepath.Abs(filepath.Join(filepath.Dir(doc), target))
			if err != nil {
				t.Fatal(err)
			}
			if rel, err := filepath.Rel(root, path); err != nil || strings.HasPrefix(rel, "..") {
				t.Errorf("%s links to %s, outside the repository", filepath.Base(doc), m[1])
			} else if _, err := os.Stat(path); err != nil {
				t.Errorf("%s links to %s, which does not exist", filepath.Base(doc), m[1])
			}
		}
	}
}
