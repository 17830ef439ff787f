package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestUsageListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-help"}} {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), args, &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, c := range commands {
			if !strings.Contains(stdout.String(), "\n  "+c.name+" ") {
				t.Errorf("%v: usage lacks %s:\n%s", args, c.name, stdout.String())
			}
		}
	}
}

func TestHelpCommandPrintsItsFlags(t *testing.T) {
	for cmd, flag := range map[string]string{"load": "-scenario", "populate": "-messages", "growth": "-steps", "streams": "-ratio-d"} {
		var stdout, stderr bytes.Buffer
		run(t.Context(), []string{"help", cmd}, &stdout, &stderr)
		if !strings.Contains(stdout.String(), flag) {
			t.Errorf("help %s: stdout lacks %s:\n%s", cmd, flag, stdout.String())
		}
	}
}

func TestUnknownOrMissingCommandIsAUsageError(t *testing.T) {
	for _, args := range [][]string{{}, {"seed"}, {"bench"}} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), args, &stdout, &stderr)
		if !errors.Is(err, errUsage) || !strings.Contains(stderr.String(), "populate") {
			t.Errorf("%v: %v, stderr %q; want a usage error with the usage", args, err, stderr.String())
		}
	}
}
