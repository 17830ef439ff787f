package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// built is the instachat binary the tests of this package run as a child
// process, built once per test binary and removed by TestMain.
var built struct {
	once      sync.Once
	dir, path string
	err       error
}

// buildBinary returns the path of the instachat binary built from this
// package, building it on the first call.
func buildBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "instachat-test-binary-"); built.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		path := filepath.Join(built.dir, "instachat")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", path, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		built.path = path
	})
	if built.err != nil {
		t.Fatalf("building the instachat binary: %v", built.err)
	}
	return built.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}
