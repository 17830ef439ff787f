package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// AdminTokenPath is where the embedded default keeps the admin token it
// generated, when INSTACHAT_ADMIN_TOKEN is not set.
func AdminTokenPath(dataDir string) string { return filepath.Join(dataDir, "admin-token") }

// embeddedAdminToken returns the admin token of the embedded default that
// has none configured: the one kept in the data directory, or, on the first
// start, a new random one written there (mode 0600). Only a token this call
// generated is logged, once, so a developer has it without reading files;
// a later start logs where it is, never the token.
func embeddedAdminToken(dataDir string, logger *slog.Logger) (string, error) {
	path := AdminTokenPath(dataDir)
	token, err := readAdminToken(path)
	if err == nil {
		logger.Info("admin token (for listing applications and /metrics) read from the data directory; set "+envAdminToken+" to choose one", "file", path)
		return token, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 32)
	rand.Read(raw) // never fails (crypto/rand)
	token = base64.RawURLEncoding.EncodeToString(raw)
	switch err := writeNew(path, token+"\n"); {
	case errors.Is(err, fs.ErrExist): // another process started on the directory first
		return readAdminToken(path)
	case err != nil:
		return "", fmt.Errorf("admin token: %w", err)
	}
	logger.Warn("no "+envAdminToken+": generated an admin token for listing applications and /metrics; it is shown only this once and kept in the file",
		"admin_token", token, "file", path)
	return token, nil
}

// readAdminToken reads a token file, refusing one that others may read (as
// ssh does with keys) or that holds no valid token.
func readAdminToken(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("admin token file %s has mode %#o, which lets others read it: chmod 600 it, or set %s", path, perm, envAdminToken)
	}
	raw := make([]byte, 1024)
	n, _ := f.Read(raw)
	token := strings.TrimSpace(string(raw[:n]))
	if len(token) < 16 || !bearerToken(token) {
		return "", fmt.Errorf("admin token file %s holds no valid token: delete it to have one generated, or set %s", path, envAdminToken)
	}
	return token, nil
}

// writeNew writes content to path, which must not exist, so that the file
// appears whole or not at all: it is written and synced under a temporary
// name, then linked into place, which fails if path exists.
func writeNew(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".admin-token-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Link(tmp.Name(), path)
}
