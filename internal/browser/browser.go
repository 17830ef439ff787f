// Package browser starts Debian's Chromium for tests that drive the web
// console through the DevTools protocol (github.com/chromedp/chromedp).
package browser

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
)

// DefaultPath is where Debian's chromium package installs the browser.
const DefaultPath = "/usr/bin/chromium"

// Path returns the Chromium to run. Browser tests run when
// INSTACHAT_TEST_BROWSER=1 and Chromium is present (INSTACHAT_TEST_CHROMIUM
// names another binary); otherwise they skip, saying why, except under
// CI=true, where a missing browser fails the test: a build that skipped its
// browser tests would pass without having run them.
func Path(t testing.TB) string {
	t.Helper()
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	if os.Getenv("INSTACHAT_TEST_BROWSER") != "1" {
		if ci {
			t.Fatal("INSTACHAT_TEST_BROWSER is not 1: CI=true requires the browser tests (.ci/run sets it)")
		}
		t.Skip("INSTACHAT_TEST_BROWSER is not 1: set it (with Chromium installed) to run the browser tests")
	}
	path := os.Getenv("INSTACHAT_TEST_CHROMIUM")
	if path == "" {
		path = DefaultPath
	}
	if _, err := exec.LookPath(path); err != nil {
		if ci {
			t.Fatalf("Chromium is missing (%v): CI=true requires it; apt-get install -y chromium", err)
		}
		t.Skipf("Chromium is missing (%v): apt-get install -y chromium to run the browser tests", err)
	}
	return path
}

// Start launches a headless Chromium with a fresh profile for the test and
// returns a context of its first tab; it is stopped when the test ends.
// Further tabs come from Tab.
func Start(t testing.TB) context.Context {
	t.Helper()
	path := Path(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// Tab opens a tab in a browser context of its own (its own storage, like a
// separate browser profile) in the browser of parent, closed when the test
// ends.
func Tab(t testing.TB, parent context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	return ctx
}
