package http

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	"github.com/instachat/instachat"
)

// The admin token guards what no application should reach: the list of
// every application (each one's token included) and the maintenance
// endpoints (/metrics). Secure by default: without one configured, they are
// refused to everyone.

// AdminSetting names the setting that configures the admin token, so a
// refusal tells the operator what to set.
const AdminSetting = "INSTACHAT_ADMIN_TOKEN"

// adminOnly answers 401 unless the request carries the admin token, and
// always when none is configured.
func (s *Server) adminOnly(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, res resource) error {
		if err := checkAdmin(w.Header(), r, s.AdminToken); err != nil {
			return err
		}
		return h(w, r, res)
	}
}

// RequireAdmin serves next only to requests that carry token as
// "Authorization: Bearer <token>", and answers the others 401 with
// WWW-Authenticate and the API's JSON error. An empty token admits no one:
// the answer names the setting to configure. It guards endpoints mounted
// beside the API, such as /metrics.
func RequireAdmin(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkAdmin(w.Header(), r, token); err != nil {
			writeErrorTo(w, r, slog.Default(), err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkAdmin returns EUNAUTHORIZED, with the WWW-Authenticate challenge
// set in h (RFC 6750), unless r carries token as a Bearer credential; an empty
// token matches nothing. Both sides are hashed before the constant-time
// comparison, so neither the content nor the length of the token shows in
// the time it takes.
func checkAdmin(h http.Header, r *http.Request, token string) error {
	const challenge = `Bearer realm="instachat"`
	if token == "" {
		h.Set("WWW-Authenticate", challenge)
		return instachat.Errorf(instachat.EUNAUTHORIZED,
			"this endpoint requires the admin token, and none is configured: set %s on the server, then send Authorization: Bearer <token>", AdminSetting)
	}
	scheme, given, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		h.Set("WWW-Authenticate", challenge)
		return instachat.Errorf(instachat.EUNAUTHORIZED, "this endpoint requires the admin token (%s): Authorization: Bearer <token>", AdminSetting)
	}
	want, got := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(strings.TrimSpace(given)))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		h.Set("WWW-Authenticate", challenge+`, error="invalid_token"`)
		return instachat.Errorf(instachat.EUNAUTHORIZED, "the admin token is not valid (%s)", AdminSetting)
	}
	return nil
}
