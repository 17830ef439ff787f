package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/instachat/instachat/server"
)

// runBinary runs the built binary with args and the environment env (and
// nothing of the test's own), returning its output and exit code.
func runBinary(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	cmd.Env = append([]string{"HOME=" + t.TempDir()}, env...)
	cmd.Dir = t.TempDir()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// TestHelpListsEverySubcommand: `instachat help` and `instachat -help` print
// the top-level usage, one line per subcommand, and succeed.
func TestHelpListsEverySubcommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-help"}, {"-h"}, {"--help"}} {
		stdout, stderr, code := runBinary(t, nil, args...)
		if code != 0 {
			t.Errorf("instachat %v: exit %d, stderr %q", args, code, stderr)
		}
		for _, c := range commands {
			if n := strings.Count(stdout, "\n  "+c.name+" "); n != 1 {
				t.Errorf("instachat %v: %d lines for %s in:\n%s", args, n, c.name, stdout)
			}
		}
	}
}

// TestHelpCommandShowsFlagTypesAndDefaults: `instachat help CMD` prints the
// command's flags with the kind of value each takes, its variable and its
// default, on stdout; so does `instachat CMD -help`, on stderr.
func TestHelpCommandShowsFlagTypesAndDefaults(t *testing.T) {
	want := []string{
		"Usage: instachat serve [flags]",
		"  -addr host:port\n",
		"(env INSTACHAT_ADDR, default \":8080\")",
		"  -shutdown-timeout duration\n",
		"(env INSTACHAT_SHUTDOWN_TIMEOUT, default 30s)",
		"  -kafka-partitions int\n",
		"  -admin-token token\n",
	}
	stdout, stderr, code := runBinary(t, nil, "help", "serve")
	if code != 0 {
		t.Fatalf("instachat help serve: exit %d, stderr %q", code, stderr)
	}
	_, flagHelp, code := runBinary(t, nil, "serve", "-help")
	if code != 0 {
		t.Fatalf("instachat serve -help: exit %d", code)
	}
	for _, w := range want {
		if !strings.Contains(stdout, w) {
			t.Errorf("instachat help serve lacks %q:\n%s", w, stdout)
		}
		if !strings.Contains(flagHelp, w) {
			t.Errorf("instachat serve -help lacks %q:\n%s", w, flagHelp)
		}
	}
	if strings.Contains(stdout, " value\n") {
		t.Errorf("a flag shown as taking a bare value:\n%s", stdout)
	}
	for _, c := range commands {
		if stdout, _, code := runBinary(t, nil, "help", c.name); code != 0 || !strings.Contains(stdout, "Usage: instachat "+c.name) {
			t.Errorf("instachat help %s: exit %d:\n%s", c.name, code, stdout)
		}
	}
}

// TestUnknownCommandIsAUsageError exits 2 with the usage, for a command and
// for help about one.
func TestUnknownCommandIsAUsageError(t *testing.T) {
	for _, args := range [][]string{{"nope"}, {"help", "nope"}, {"bench"}} {
		_, stderr, code := runBinary(t, nil, args...)
		if code != 2 || !strings.Contains(stderr, `unknown command "`+args[len(args)-1]+`"`) || !strings.Contains(stderr, "\n  config ") {
			t.Errorf("instachat %v: exit %d, stderr:\n%s", args, code, stderr)
		}
	}
}

// TestConfigPrintsEffectiveValuesThenWhatIsMissing: with a half-configured
// topology and bad values, `instachat config` still prints every setting,
// passwords hidden and refused values at the value kept, then names each
// problem and exits non-zero; a complete configuration exits 0.
func TestConfigPrintsEffectiveValuesThenWhatIsMissing(t *testing.T) {
	env := []string{"INSTACHAT_KAFKA_BROKERS=k:9092", "INSTACHAT_MYSQL_DSN=app:s3cret@tcp(db:3306)/instachat", "INSTACHAT_SYNC=sometimes"}
	stdout, stderr, code := runBinary(t, env, "config", "-log-level", "loud", "-addr", ":9999")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, w := range []string{"INSTACHAT_ADDR=:9999\n", "INSTACHAT_KAFKA_BROKERS=k:9092\n",
		"INSTACHAT_MYSQL_DSN=app:xxxxx@tcp(db:3306)/instachat\n", "INSTACHAT_SYNC=normal\n", "INSTACHAT_LOG_LEVEL=info\n"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("stdout lacks %q:\n%s", w, stdout)
		}
	}
	if lines := strings.Count(stdout, "\n"); lines != len(server.Options) {
		t.Errorf("%d lines printed, want one per setting (%d):\n%s", lines, len(server.Options), stdout)
	}
	if strings.Contains(stdout+stderr, "s3cret") {
		t.Errorf("the password was printed")
	}
	for _, w := range []string{"INSTACHAT_REDIS_URL not set", `INSTACHAT_SYNC="sometimes": must be normal or full`, `-log-level "loud"`} {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, stderr)
		}
	}

	stdout, stderr, code = runBinary(t, nil, "config")
	if code != 0 || !strings.Contains(stdout, "INSTACHAT_DATA_DIR=./instachat-data\n") || stderr != "" {
		t.Errorf("the default configuration: exit %d, stdout:\n%s\nstderr: %s", code, stdout, stderr)
	}
}
