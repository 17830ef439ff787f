package instachat_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/instachat/instachat"
)

// TestNotFoundErrors: a backend's translated "no row" is the domain's
// value for the kind, found through wrapping, and answers 404's code with
// the one message.
func TestNotFoundErrors(t *testing.T) {
	for kind, want := range map[string]*instachat.Error{
		"application": instachat.ErrApplicationNotFound,
		"chat":        instachat.ErrChatNotFound,
		"message":     instachat.ErrMessageNotFound,
	} {
		err := fmt.Errorf("looking it up: %w", instachat.NotFound(kind))
		if !errors.Is(err, want) || instachat.ErrorCode(err) != instachat.ENOTFOUND || instachat.ErrorMessage(err) != kind+" not found" {
			t.Errorf("NotFound(%q) = %v; want %v, code %s", kind, err, want, instachat.ENOTFOUND)
		}
	}
	if errors.Is(instachat.ErrChatNotFound, instachat.ErrApplicationNotFound) {
		t.Error("a missing chat reads as a missing application")
	}
	if err := instachat.NotFound("receipt"); instachat.ErrorCode(err) != instachat.ENOTFOUND || err.Message != "receipt not found" {
		t.Errorf("NotFound(receipt) = %v", err)
	}
}
