package instachat

import (
	"encoding/base64"
	"strconv"
)

// Cursors are opaque to clients: base64url of a key the server understands.
// They carry numbers the client already sees (chat and message numbers,
// search offsets) or an application token — never an internal id.

// EncodeCursor encodes a number key.
func EncodeCursor(n int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("n" + strconv.FormatInt(n, 10)))
}

// DecodeCursor decodes a cursor from EncodeCursor; "" decodes to 0.
func DecodeCursor(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 'n' {
		return 0, Errorf(EBADREQUEST, "cursor is not valid")
	}
	n, err := strconv.ParseInt(string(b[1:]), 10, 64)
	// Only the spelling EncodeCursor gives is a cursor, so a page has one
	// name ("n+1", "n01" or stray base64 bits are refused).
	if err != nil || n < 0 || EncodeCursor(n) != s {
		return 0, Errorf(EBADREQUEST, "cursor is not valid")
	}
	return n, nil
}

// EncodeTokenCursor encodes an application token key.
func EncodeTokenCursor(token string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("t" + token))
}

// DecodeTokenCursor decodes a cursor from EncodeTokenCursor; "" decodes to "".
func DecodeTokenCursor(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != 't' || !ValidToken(string(b[1:])) || EncodeTokenCursor(string(b[1:])) != s {
		return "", Errorf(EBADREQUEST, "cursor is not valid")
	}
	return string(b[1:]), nil
}
