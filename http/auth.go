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
// endpoints (/metrics). Without one configured they stay open, as before.

// adminOnly answers 401 unless the request carries the admin token.
func (s *Server) adminOnly(h handler) handler {
	if s.AdminToken == "" {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request, res resource) error {
		if err := checkAdmin(w, r, s.AdminToken); err != nil {
			return err
		}
		return h(w, r, res)
	}
}

// RequireAdmin serves next only to requests that carry token as
// "Authorization: Bearer <token>", and answers the others 401 with
// WWW-Authenticate and the API's JSON error. An empty token requires
// nothing and returns next itself. It guards endpoints mounted beside the
// API, such as /metrics.
func RequireAdmin(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkAdmin(w, r, token); err != nil {
			writeErrorTo(w, r, slog.Default(), err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkAdmin returns EUNAUTHORIZED, with the WWW-Authenticate challenge
// set (RFC 6750), unless r carries token as a Bearer credential. Both sides
// are hashed before the constant-time comparison, so neither the content
// nor the length of the token shows in the time it takes.
func checkAdmin(w http.ResponseWriter, r *http.Request, token string) error {
	const challenge = `Bearer realm="instachat"`
	scheme, given, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", challenge)
		return instachat.Errorf(instachat.EUNAUTHORIZED, "this endpoint requires the admin token: Authorization: Bearer <token>")
	}
	want, got := sha256.Sum256([]byte(token)), sha256.Sum256([]byte(strings.TrimSpace(given)))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		w.Header().Set("WWW-Authenticate", challenge+`, error="invalid_token"`)
		return instachat.Errorf(instachat.EUNAUTHORIZED, "the admin token is not valid")
	}
	return nil
}
