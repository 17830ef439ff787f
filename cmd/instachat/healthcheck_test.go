package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheck runs `instachat healthcheck` against a server on the
// address of INSTACHAT_ADDR, or of -addr: it succeeds on 200 only, and
// fails when nothing listens.
func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(`{"status":"checked"}`))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	check := func(args []string, env map[string]string) (string, error) {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"healthcheck"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
		return stdout.String(), err
	}

	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{nil, map[string]string{"INSTACHAT_ADDR": ":" + port}}, // all interfaces, as in the image
		{[]string{"-addr", "127.0.0.1:" + port}, nil},
	} {
		status = http.StatusOK
		if out, err := check(c.args, c.env); err != nil || !strings.Contains(out, "checked") {
			t.Errorf("%v %v with /healthz 200: %q, %v; want success and the answer printed", c.args, c.env, out, err)
		}
		status = http.StatusServiceUnavailable
		if _, err := check(c.args, c.env); err == nil || !strings.Contains(err.Error(), "503") {
			t.Errorf("%v %v with /healthz 503: %v, want an error naming the status", c.args, c.env, err)
		}
	}
	srv.Close()
	if _, err := check(nil, map[string]string{"INSTACHAT_ADDR": ":" + port}); err == nil {
		t.Error("with nothing listening: success, want an error")
	}
}
