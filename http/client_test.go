package http

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/instachat/instachat"
)

func TestClientRetryWithAKeyIsReplayed(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	token := e.seed(t)
	first, replayed, err := e.client.CreateMessage(ctx, token, 1, "once", "key-1")
	if err != nil || replayed {
		t.Fatalf("first keyed create = %+v, %v, %v", first, replayed, err)
	}
	again, replayed, err := e.client.CreateMessage(ctx, token, 1, "once", "key-1")
	if err != nil || !replayed || *again != *first {
		t.Fatalf("retry = %+v, %v, %v; want %+v, replayed", again, replayed, err, first)
	}
	c, replayed, err := e.client.CreateChat(ctx, token, "room", "chat-key")
	if err != nil || replayed || c.Number != 2 {
		t.Fatalf("keyed chat = %+v, %v, %v", c, replayed, err)
	}
	if again, replayed, err := e.client.CreateChat(ctx, token, "room", "chat-key"); err != nil || !replayed || *again != *c {
		t.Fatalf("chat retry = %+v, %v, %v; want %+v, replayed", again, replayed, err, c)
	}
	if _, _, err := e.client.CreateMessage(ctx, token, 1, "another body", "key-1"); !errors.Is(err, instachat.ErrKeyReused) {
		t.Errorf("a key reused for another body: %v, want %v", err, instachat.ErrKeyReused)
	}
}

// TestClientErrorsAreTheDomains: the API's error JSON comes back as the
// domain's own error values, which errors.Is finds as from a backend.
func TestClientErrorsAreTheDomains(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	token := e.seed(t, "hi")
	_, err := e.client.FindApplication(ctx, instachat.NewToken())
	if !errors.Is(err, instachat.ErrApplicationNotFound) {
		t.Errorf("FindApplication of an unknown token: %v", err)
	}
	if _, err := e.client.FindChat(ctx, token, 2); !errors.Is(err, instachat.ErrChatNotFound) {
		t.Errorf("FindChat of an unknown chat: %v", err)
	}
	if _, err := e.client.FindMessage(ctx, token, 1, 2); !errors.Is(err, instachat.ErrMessageNotFound) {
		t.Errorf("FindMessage of an unknown message: %v", err)
	}
	_, err = e.client.ListMessages(ctx, token, 1, 0, 0)
	var ierr *instachat.Error
	if !errors.As(err, &ierr) || ierr.Code != instachat.EBADREQUEST || !strings.Contains(ierr.Message, "limit") {
		t.Errorf("ListMessages with limit 0: %v; want the API's bad_request about the limit", err)
	}
}

// TestClientListsFillTheirLimit: a Store's list returns limit rows while
// there are that many, so a short one means the end. The API's pages hold
// at most 100 items and end early at a byte bound; the client reads on.
func TestClientListsFillTheirLimit(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.MaxPageBytes = 2 << 10 })
	ctx := context.Background()
	bodies := make([]string, 150)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("message %03d %s", i+1, strings.Repeat("x", 100))
	}
	token := e.seed(t, bodies...)
	if _, next, err := rawPage[instachat.Message](e, ChatPath(token, 1)+"/messages?limit=100"); err != nil || next == "" {
		t.Fatalf("a page of 100 long messages: next %q, %v; want it cut short by bytes", next, err)
	}
	for _, tt := range []struct {
		after int64
		limit int
		want  int
	}{{0, 150, 150}, {0, 120, 120}, {10, 30, 30}, {140, 30, 10}, {150, 30, 0}} {
		msgs, err := e.client.ListMessages(ctx, token, 1, tt.after, tt.limit)
		if err != nil || len(msgs) != tt.want {
			t.Fatalf("ListMessages(after %d, %d) = %d messages, %v; want %d", tt.after, tt.limit, len(msgs), err, tt.want)
		}
		for i, m := range msgs {
			if m.Number != tt.after+int64(i)+1 || m.Token != token || m.Chat != 1 {
				t.Fatalf("ListMessages(after %d, %d)[%d] = %+v", tt.after, tt.limit, i, m)
			}
		}
	}
	all, err := e.client.AllMessages(ctx, token, 1)
	if err != nil || len(all) != 150 {
		t.Fatalf("AllMessages = %d, %v", len(all), err)
	}
	found, err := e.client.SearchMessages(ctx, instachat.SearchQuery{Token: token, Chat: 1, Terms: []string{"message"}, Offset: 5, Limit: 120})
	if err != nil || len(found) != 120 {
		t.Fatalf("SearchMessages(offset 5, 120) = %d, %v; want 120", len(found), err)
	}
}
