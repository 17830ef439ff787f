package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/testenv"
)

// keyed is an answer to a create sent with an Idempotency-Key.
type keyed struct {
	status   int
	replayed bool
	number   int64
	code     string // the error code, for an error
}

// postKeyed posts body to path with the Idempotency-Key key.
func postKeyed(t *testing.T, r *running, path, body, key string) keyed {
	t.Helper()
	a := exchange(t, r, http.MethodPost, path, body, http.Header{"Idempotency-Key": {key}})
	return keyed{a.status, a.header.Get("Idempotent-Replayed") == "true", a.number(), a.code()}
}

// idempotentRetries sends keyed creates through a and their retries through
// b (another process, or a itself), and returns the application token.
func idempotentRetries(t *testing.T, a, b *running) string {
	ctx := context.Background()
	app, err := a.client.CreateApplication(ctx, "retrying")
	if err != nil {
		t.Fatal(err)
	}
	chats := "/api/v1/applications/" + app.Token + "/chats"
	first := postKeyed(t, a, chats, `{"name":"room"}`, "chat-1")
	if first.status != a.created || first.replayed || first.number != 1 {
		t.Fatalf("first keyed chat = %+v; want %d, number 1", first, a.created)
	}
	if again := postKeyed(t, b, chats, `{"name":"room"}`, "chat-1"); again.status != b.created || !again.replayed || again.number != 1 {
		t.Fatalf("retried chat = %+v; want chat 1, replayed", again)
	}
	// Many devices retrying one message at once, half through each process.
	messages := chats + "/1/messages"
	const retries = 24
	got := make([]keyed, retries)
	var wg sync.WaitGroup
	for i := range got {
		r := []*running{a, b}[i%2]
		wg.Go(func() { got[i] = postKeyed(t, r, messages, `{"body":"sent once"}`, "msg-1") })
	}
	wg.Wait()
	replays := 0
	for _, k := range got {
		if k.status != a.created || k.number != 1 {
			t.Fatalf("concurrent retries answered %+v; want every one message 1", got)
		}
		if k.replayed {
			replays++
		}
	}
	if replays != retries-1 {
		t.Errorf("%d of %d answers marked replayed; want all but the first", replays, retries)
	}
	for _, c := range []struct {
		path, body, key string
		status          int
		code            string
	}{
		{messages, `{"body":"another body"}`, "msg-1", http.StatusUnprocessableEntity, instachat.EINVALID},
		{chats, `{"name":"room"}`, "msg-1", http.StatusUnprocessableEntity, instachat.EINVALID},
		{messages, `{"body":"x"}`, strings.Repeat("k", 256), http.StatusBadRequest, instachat.EBADREQUEST},
		{messages, `{"body":"x"}`, "clé", http.StatusBadRequest, instachat.EBADREQUEST},
		{messages, `{"body":"x"}`, "", http.StatusBadRequest, instachat.EBADREQUEST},
	} {
		if k := postKeyed(t, b, c.path, c.body, c.key); k.status != c.status || k.code != c.code {
			t.Errorf("POST %s with key %q: %+v; want %d %s", c.path, c.key, k, c.status, c.code)
		}
	}
	m, _, err := a.client.CreateMessage(ctx, app.Token, 1, "unkeyed", "")
	if err != nil || m.Number != 2 {
		t.Fatalf("unkeyed message after the retries = %+v, %v; want number 2", m, err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		msgs, err := a.client.AllMessages(ctx, app.Token, 1)
		if err != nil {
			return err
		}
		if len(msgs) != 2 || msgs[0].Body != "sent once" || msgs[1].Body != "unkeyed" {
			return fmt.Errorf("chat holds %d messages; want [sent once, unkeyed]", len(msgs))
		}
		c, err := a.client.FindChat(ctx, app.Token, 1)
		if err != nil || c.MessagesCount != 2 {
			return fmt.Errorf("chat = %+v, %v; want messages_count 2", c, err)
		}
		return nil
	})
	return app.Token
}

// TestIdempotentRetries: retries answer the original, and still do after a
// restart, because the receipts are stored with the rows.
func TestIdempotentRetries(t *testing.T) {
	dir := t.TempDir()
	r := start(t, dir)
	token := idempotentRetries(t, r, r)
	r.stop(t)

	r = start(t, dir)
	messages := "/api/v1/applications/" + token + "/chats/1/messages"
	if k := postKeyed(t, r, messages, `{"body":"sent once"}`, "msg-1"); k.status != http.StatusCreated || !k.replayed || k.number != 1 {
		t.Fatalf("retry after a restart = %+v; want message 1, replayed", k)
	}
	if k := postKeyed(t, r, messages, `{"body":"new"}`, "msg-2"); k.status != http.StatusCreated || k.replayed || k.number != 3 {
		t.Fatalf("new key after a restart = %+v; want message 3", k)
	}
}

// TestProductionIdempotentRetriesAcrossProcesses: two processes share the
// receipts in Redis, so a retry sent to the other one answers the original.
func TestProductionIdempotentRetriesAcrossProcesses(t *testing.T) {
	cfg := productionConfig(t)
	idempotentRetries(t, startProduction(t, cfg), startProduction(t, cfg))
}
