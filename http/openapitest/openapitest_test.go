package openapitest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	instachathttp "github.com/instachat/instachat/http"
	"github.com/instachat/instachat/http/openapitest"
)

// recorder is a testing.TB that keeps what Errorf reports.
type recorder struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestTransportFailsOnAMismatch serves answers that disagree with
// openapi.json, each in one way, and one that agrees: the transport must
// report exactly the disagreements.
func TestTransportFailsOnAMismatch(t *testing.T) {
	const token = "AAAAAAAAAAAAAAAAAAAAAA"
	app := `{"token":"` + token + `","name":"a","chats_count":0,"revision":0,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}`
	for _, c := range []struct {
		name, method, path, authorization string
		status                            int
		contentType, body                 string
		want                              string // in the report; "" for none
	}{
		{"agrees", "GET", "/api/v1/applications/" + token, "", 200, "application/json", app, ""},
		{"an error that agrees", "GET", "/api/v1/applications/" + token, "", 404, "application/json",
			`{"error":{"code":"not_found","message":"application not found"}}`, ""},
		{"an undocumented status", "GET", "/api/v1/applications/" + token, "", 418, "application/json",
			`{"error":{"code":"teapot","message":"x"}}`, "status is not supported"},
		{"a body off its schema", "GET", "/api/v1/applications/" + token, "", 200, "application/json", `{"token":"` + token + `"}`, "doesn't match schema"},
		{"another media type", "GET", "/api/v1/applications/" + token, "", 200, "text/html", app, "response header Content-Type has unexpected value"},
		{"served without the admin token", "GET", "/api/v1/applications", "", 200, "application/json",
			`{"data":[],"next_cursor":null}`, "not refused with a 4xx"},
		{"refused without the admin token", "GET", "/api/v1/applications", "", 401, "application/json",
			`{"error":{"code":"unauthorized","message":"x"}}`, ""},
		{"an invalid parameter served", "GET", "/api/v1/applications/" + token + "/chats?limit=0", "", 200,
			"application/json", `{"data":[],"next_cursor":null}`, "not refused with a 4xx"},
		{"an undocumented path served", "GET", "/admin", "", 200, "application/json", `{}`, "no such operation"},
		{"an undocumented path refused", "GET", "/admin", "", 404, "application/json", `{"error":{"code":"not_found","message":"no route"}}`, ""},
		{"an undocumented path refused off the error shape", "GET", "/admin", "", 404, "text/plain", "404 page not found", "not the JSON error shape"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", c.contentType)
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			}))
			defer srv.Close()
			rec := &recorder{TB: t}
			hc := &http.Client{Transport: openapitest.Transport(rec, instachathttp.OpenAPI(), nil)}
			req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
			if c.authorization != "" {
				req.Header.Set("Authorization", c.authorization)
			}
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			// The caller still reads the whole answer.
			if b, _ := io.ReadAll(res.Body); string(b) != c.body {
				t.Errorf("the caller read %q, want %q", b, c.body)
			}
			res.Body.Close()
			switch {
			case c.want == "" && len(rec.errs) > 0:
				t.Errorf("reported an agreeing exchange: %v", rec.errs)
			case c.want != "" && (len(rec.errs) != 1 || !strings.Contains(rec.errs[0], c.want)):
				t.Errorf("reported %v, want one report containing %q", rec.errs, c.want)
			}
		})
	}
}
