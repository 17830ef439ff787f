package http

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/instachat/instachat"
)

const testAdminToken = "s3cret-admin-token-0123456789"

func TestAdminTokenGuardsTheApplicationList(t *testing.T) {
	e := newTestEnv(t) // with testAdminToken
	token := e.seed(t, "hello")
	list := "/api/v1/applications"
	for _, c := range []struct {
		name, authorization string
		status              int
		challenge           string
	}{
		{"no credential", "", 401, `Bearer realm="instachat"`},
		{"wrong token", "Bearer " + testAdminToken + "x", 401, `Bearer realm="instachat", error="invalid_token"`},
		{"a prefix of the token", "Bearer " + testAdminToken[:10], 401, `Bearer realm="instachat", error="invalid_token"`},
		{"scheme alone", "Bearer", 401, `Bearer realm="instachat"`},
		{"another scheme", "Basic " + testAdminToken, 401, `Bearer realm="instachat"`},
		{"no scheme", testAdminToken, 401, `Bearer realm="instachat"`},
		{"an application token", "Bearer " + token, 401, `Bearer realm="instachat", error="invalid_token"`},
		{"the admin token", "Bearer " + testAdminToken, 200, ""},
		{"scheme in any case", "bEARER " + testAdminToken, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.authorization != "" {
				h.Set("Authorization", c.authorization)
			}
			resp, raw := sendWith(t, e, "GET", list, h, nil)
			if resp.StatusCode != c.status {
				t.Fatalf("GET %s: %d %s, want %d", list, resp.StatusCode, raw, c.status)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != c.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.challenge)
			}
			if c.status == 401 {
				if code, _ := errorOf(t, raw); code != instachat.EUNAUTHORIZED {
					t.Errorf("code %q, want %q", code, instachat.EUNAUTHORIZED)
				}
				if strings.Contains(string(raw), token) {
					t.Errorf("a 401 shows an application token: %s", raw)
				}
			} else if !strings.Contains(string(raw), token) {
				t.Errorf("the admin's list lacks the application: %s", raw)
			}
		})
	}
	// Everything an application does with its own token stays open.
	app := list + "/" + token
	for _, r := range []struct{ method, path, body string }{
		{"POST", list, `{"name":"b"}`},
		{"GET", app, ""},
		{"PATCH", app, `{"name":"c"}`},
		{"POST", app + "/chats", `{"name":"x"}`},
		{"GET", app + "/chats", ""},
		{"POST", app + "/chats/1/messages", `{"body":"x"}`},
		{"GET", app + "/chats/1/messages/search?q=hel", ""},
		{"GET", "/healthz", ""},
		{"GET", "/openapi.json", ""},
	} {
		resp, raw := sendWith(t, e, r.method, r.path, nil, strings.NewReader(r.body))
		if resp.StatusCode >= 300 {
			t.Errorf("%s %s without the admin token: %d %s", r.method, r.path, resp.StatusCode, raw)
		}
	}
}

// TestNoAdminTokenRefusesTheList: with no admin token configured, the list
// of every application (each one's only credential) is refused, and the
// answer names the setting that opens it.
func TestNoAdminTokenRefusesTheList(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.AdminToken = "" })
	token := e.seed(t)
	for _, authorization := range []string{"", "Bearer " + token, "Bearer " + testAdminToken} {
		h := http.Header{}
		if authorization != "" {
			h.Set("Authorization", authorization)
		}
		resp, raw := sendWith(t, e, "GET", "/api/v1/applications", h, nil)
		if resp.StatusCode != 401 {
			t.Fatalf("list without an admin token configured, Authorization %q: %d %s, want 401", authorization, resp.StatusCode, raw)
		}
		code, msg := errorOf(t, raw)
		if code != instachat.EUNAUTHORIZED || !strings.Contains(msg, "INSTACHAT_ADMIN_TOKEN") {
			t.Errorf("401 %s %q, want %s naming INSTACHAT_ADMIN_TOKEN", code, msg, instachat.EUNAUTHORIZED)
		}
		if strings.Contains(string(raw), token) {
			t.Errorf("a 401 shows an application token: %s", raw)
		}
		if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="instachat"`) {
			t.Errorf("401 without the Bearer challenge: %q", resp.Header.Get("WWW-Authenticate"))
		}
	}
}

func TestRequireAdmin(t *testing.T) {
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("metrics")) })
	h := RequireAdmin(testAdminToken, next)
	for _, c := range []struct {
		authorization string
		status        int
	}{{"", 401}, {"Bearer nope", 401}, {"Bearer " + testAdminToken, 200}} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/metrics", nil)
		if c.authorization != "" {
			r.Header.Set("Authorization", c.authorization)
		}
		h.ServeHTTP(w, r)
		if w.Code != c.status {
			t.Errorf("Authorization %q: %d, want %d", c.authorization, w.Code, c.status)
			continue
		}
		if c.status == 200 {
			if w.Body.String() != "metrics" {
				t.Errorf("admin got %q", w.Body.String())
			}
			continue
		}
		if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="instachat"`) {
			t.Errorf("401 without the Bearer challenge: %q", w.Header().Get("WWW-Authenticate"))
		}
		if code, _ := errorOf(t, w.Body.Bytes()); code != instachat.EUNAUTHORIZED || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("401 body: %s (%s)", w.Body.String(), w.Header().Get("Content-Type"))
		}
		if strings.Contains(w.Body.String(), "metrics") {
			t.Error("a 401 served the guarded content")
		}
	}
	// Without a token configured, nothing opens it.
	for _, authorization := range []string{"", "Bearer ", "Bearer " + testAdminToken} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/metrics", nil)
		if authorization != "" {
			r.Header.Set("Authorization", authorization)
		}
		RequireAdmin("", next).ServeHTTP(w, r)
		code, msg := errorOf(t, w.Body.Bytes())
		if w.Code != 401 || code != instachat.EUNAUTHORIZED || !strings.Contains(msg, "INSTACHAT_ADMIN_TOKEN") {
			t.Errorf("RequireAdmin with no token, Authorization %q: %d %s, want 401 naming INSTACHAT_ADMIN_TOKEN", authorization, w.Code, w.Body.String())
		}
	}
}
