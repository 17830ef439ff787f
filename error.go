package instachat

import (
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in package http.
const (
	EINVALID      = "invalid"      // failed validation (422)
	EBADREQUEST   = "bad_request"  // malformed request or parameter (400)
	ENOTFOUND     = "not_found"    // unknown application, chat, message (404)
	ECONFLICT     = "conflict"     // already exists (409)
	ETOOLARGE     = "too_large"    // request body over the limit (413)
	EUNSUPPORTED  = "unsupported"  // body that is not JSON (415)
	ERATELIMITED  = "rate_limited" // too many creates for the token now (429)
	EUNAUTHORIZED = "unauthorized" // missing or wrong admin token (401)
	EUNAVAILABLE  = "unavailable"  // a dependency cannot take the request now (503)
	EINTERNAL     = "internal"     // anything else (500)
)

// The not-found errors, one per kind of row, returned by every store,
// sequencer and layer that looks one up, so that what the client reads is
// written once and callers can test for it with errors.Is.
var (
	ErrApplicationNotFound = &Error{Code: ENOTFOUND, Message: "application not found"}
	ErrChatNotFound        = &Error{Code: ENOTFOUND, Message: "chat not found"}
	ErrMessageNotFound     = &Error{Code: ENOTFOUND, Message: "message not found"}
)

// NotFound is the not-found error of a kind of row, "application", "chat"
// or "message", for a backend that translates "no row" in one place for
// every kind; any other kind gets an ENOTFOUND error naming it.
func NotFound(kind string) *Error {
	switch kind {
	case "application":
		return ErrApplicationNotFound
	case "chat":
		return ErrChatNotFound
	case "message":
		return ErrMessageNotFound
	}
	return Errorf(ENOTFOUND, "%s not found", kind)
}

// Error is an error the client may see: a code and a message written for the
// client. Any other error is internal and shown only as "internal error".
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("instachat: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-facing message of err: the *Error's message,
// or "internal error" for anything else, so no internal detail leaks.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
