package instachat

import (
	"crypto/rand"
	"encoding/base64"
	"time"
)

// Application is a client app that owns chats. Its token, issued by the
// server, is its only identity outside the store.
type Application struct {
	Token      string `json:"token"`
	Name       string `json:"name"`
	ChatsCount int64  `json:"chats_count"`
	// Revision is the application feed's revision: the count of committed
	// changes to its chats (see Feeds).
	Revision  int64     `json:"revision"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TokenBytes is the entropy of an application token: 128 bits.
const TokenBytes = 16

// NewToken returns a fresh application token: 128 bits from crypto/rand in
// unpadded URL-safe base64 (22 characters).
func NewToken() string {
	b := make([]byte, TokenBytes)
	rand.Read(b) // never fails; see crypto/rand.Read
	return base64.RawURLEncoding.EncodeToString(b)
}

// ValidToken reports whether s has the shape of a token, so obviously
// malformed tokens are refused without asking any backend.
func ValidToken(s string) bool {
	if len(s) != base64.RawURLEncoding.EncodedLen(TokenBytes) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// RedactToken shortens a token for logs: enough to correlate lines, useless
// to anyone who reads them.
func RedactToken(token string) string {
	if len(token) <= 6 {
		return token
	}
	return token[:6] + "…"
}
