package instachat

import (
	"strings"
	"unicode/utf8"
)

// Limits bounds what clients may send.
type Limits struct {
	MaxNameChars int // characters in an application or chat name
	MaxBodyBytes int // bytes in a message body
}

// DefaultLimits allows names up to 255 characters and bodies up to 64 KiB.
var DefaultLimits = Limits{MaxNameChars: 255, MaxBodyBytes: 64 << 10}

// ValidateName checks an application or chat name. Application names are
// required; chat names may be empty.
func (l Limits) ValidateName(name string, required bool) error {
	if !utf8.ValidString(name) {
		return Errorf(EINVALID, "name must be valid UTF-8")
	}
	if required && strings.TrimSpace(name) == "" {
		return Errorf(EINVALID, "name must not be empty")
	}
	if n := utf8.RuneCountInString(name); n > l.MaxNameChars {
		return Errorf(EINVALID, "name must be at most %d characters, got %d", l.MaxNameChars, n)
	}
	if strings.ContainsRune(name, 0) {
		return Errorf(EINVALID, "name must not contain NUL characters")
	}
	return nil
}

// ValidateBody checks a message body: required, valid UTF-8, bounded.
func (l Limits) ValidateBody(body string) error {
	if !utf8.ValidString(body) {
		return Errorf(EINVALID, "body must be valid UTF-8")
	}
	if strings.TrimSpace(body) == "" {
		return Errorf(EINVALID, "body must not be empty")
	}
	if len(body) > l.MaxBodyBytes {
		return Errorf(EINVALID, "body must be at most %d bytes, got %d", l.MaxBodyBytes, len(body))
	}
	if strings.ContainsRune(body, 0) {
		return Errorf(EINVALID, "body must not contain NUL characters")
	}
	return nil
}
