package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/testenv"
	"github.com/instachat/instachat/server"
)

// TestEmbeddedGeneratesAnAdminToken: with no INSTACHAT_ADMIN_TOKEN, the
// embedded default generates one on its first start, keeps it in the data
// directory (mode 0600) and logs it that once; a restart reads it back and
// logs only where it is. Without it, listing and /metrics are refused.
func TestEmbeddedGeneratesAnAdminToken(t *testing.T) {
	dir := t.TempDir()
	var first testenv.Buffer
	cfg := server.DefaultConfig()
	r := startIn(t, cfg, dir, &first)
	token := r.Config.AdminToken
	path := server.AdminTokenPath(dir)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no admin token file: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("admin token file mode %#o, want 0600", perm)
	}
	raw, _ := os.ReadFile(path)
	if strings.TrimSpace(string(raw)) != token || len(token) < 32 {
		t.Fatalf("file holds %q, the server uses %q; want one token of at least 32 characters", raw, token)
	}
	// The serving line names the process, so a server left running by a
	// killed go run can be found.
	if !strings.Contains(first.String(), `msg="instachat serving" `) || !strings.Contains(first.String(), fmt.Sprintf(" pid=%d", os.Getpid())) {
		t.Errorf("the serving log line does not give the pid %d:\n%s", os.Getpid(), first.String())
	}
	if n := strings.Count(first.String(), token); n != 1 {
		t.Errorf("the first start logged the generated token %d times, want once:\n%s", n, first.String())
	}
	a := createApp(t, r, "a")
	for _, c := range []struct {
		path, authorization string
		status              int
	}{
		{"/api/v1/applications", "", 401},
		{"/api/v1/applications", "Bearer " + a, 401},
		{"/api/v1/applications", "Bearer " + token, 200},
		{"/metrics", "", 401},
		{"/metrics", "Bearer " + token, 200},
	} {
		res := requestWith(t, r, "GET", c.path, c.authorization, "")
		if res.status != c.status {
			t.Errorf("GET %s (Authorization %q): %d %s, want %d", c.path, c.authorization, res.status, res.body, c.status)
		}
		if c.status == 401 && (res.code() != instachat.EUNAUTHORIZED || !strings.Contains(string(res.body), "INSTACHAT_ADMIN_TOKEN")) {
			t.Errorf("GET %s: 401 %s, want %s naming INSTACHAT_ADMIN_TOKEN", c.path, res.body, instachat.EUNAUTHORIZED)
		}
	}
	r.stop(t)

	// The next start keeps the token and does not log it.
	var second testenv.Buffer
	r = startIn(t, cfg, dir, &second)
	if r.Config.AdminToken != token {
		t.Errorf("after a restart the admin token is %q, want the generated %q", r.Config.AdminToken, token)
	}
	if res := requestWith(t, r, "GET", "/api/v1/applications", "Bearer "+token, ""); res.status != 200 {
		t.Errorf("list with the kept token after a restart: %d %s", res.status, res.body)
	}
	r.stop(t)
	if strings.Contains(second.String(), token) || !strings.Contains(second.String(), path) {
		t.Errorf("a restart logged the admin token, or not where it is:\n%s", second.String())
	}

	// A configured token wins, and the file is left alone.
	cfg.AdminToken = testAdminToken
	r = startIn(t, cfg, dir, &testenv.Buffer{})
	if res := requestWith(t, r, "GET", "/api/v1/applications", "Bearer "+token, ""); res.status != 401 {
		t.Errorf("the file's token still works with INSTACHAT_ADMIN_TOKEN set: %d", res.status)
	}
	if res := requestWith(t, r, "GET", "/api/v1/applications", "Bearer "+testAdminToken, ""); res.status != 200 {
		t.Errorf("the configured token: %d", res.status)
	}
}

// TestEmbeddedRefusesAnUnsafeAdminTokenFile: a token file others can read,
// or one holding no valid token, stops the start with an error naming it.
func TestEmbeddedRefusesAnUnsafeAdminTokenFile(t *testing.T) {
	for name, c := range map[string]struct {
		content string
		mode    os.FileMode
	}{
		"readable by others": {strings.Repeat("a", 40), 0o644},
		"not a token":        {"short", 0o600},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := server.AdminTokenPath(dir)
			if err := os.WriteFile(path, []byte(c.content), c.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, c.mode) // past the umask
			cfg := server.DefaultConfig()
			cfg.Addr, cfg.DataDir = "127.0.0.1:0", dir
			s := server.New(cfg, nil)
			err := s.Open(t.Context())
			if err == nil {
				s.Close(t.Context())
				t.Fatal("the server started")
			}
			if !strings.Contains(err.Error(), path) || strings.Contains(err.Error(), c.content) {
				t.Errorf("error %q, want one naming %s and not showing the content", err, filepath.Base(path))
			}
		})
	}
}

// TestProductionRefusesAdminRoutesWithoutAToken: the production topology
// generates nothing; with no admin token, listing and /metrics are refused
// with a message naming the setting, and no data directory is made.
func TestProductionRefusesAdminRoutesWithoutAToken(t *testing.T) {
	cfg := productionConfig(t)
	cfg.AdminToken = ""
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	r := startProduction(t, cfg)
	createApp(t, r, "a")
	for _, path := range []string{"/api/v1/applications", "/metrics"} {
		res := requestWith(t, r, "GET", path, "", "")
		if res.status != 401 || res.code() != instachat.EUNAUTHORIZED || !strings.Contains(string(res.body), "INSTACHAT_ADMIN_TOKEN") {
			t.Errorf("GET %s: %d %s, want 401 naming INSTACHAT_ADMIN_TOKEN", path, res.status, res.body)
		}
	}
	if r.Config.AdminToken != "" {
		t.Error("the production topology made itself an admin token")
	}
	if _, err := os.Stat(cfg.DataDir); err == nil {
		t.Error("the production topology made a data directory")
	}
}
