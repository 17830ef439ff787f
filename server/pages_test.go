package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/instachat/instachat"
)

// TestLargeBodiesListInBoundedPages is issue 9's reproduction on the real
// embedded server: 100 messages of 64 KiB, nearly all '<', listed with
// limit=100 by concurrent clients. Each answer was 39 MB (every '<' written
// as \u003c, the page encoded whole) and RSS reached gigabytes; now each
// page stops at about 1 MiB of messages, with a cursor, and a walk of the
// pages still returns every message once, in order, for the list and for
// search alike.
func TestLargeBodiesListInBoundedPages(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 6.5 MB of messages")
	}
	r := start(t, t.TempDir())
	ctx := t.Context()
	app := r.appWithChat(t, "big", "")
	const n = 100
	for i := range n {
		body := "hello " + strings.Repeat("<", instachat.DefaultLimits.MaxBodyBytes-10) + string(rune('a'+i%26)) + "<<<"
		if _, _, err := r.client.CreateMessage(ctx, app.Token, 1, body, ""); err != nil {
			t.Fatal(err)
		}
	}
	chat := r.URL() + "/api/v1/applications/" + app.Token + "/chats/1"
	const maxAnswer = 1<<20 + 64<<10 + 4<<10 // a page's budget, one body past it at most, and the JSON around

	// Concurrent first pages: bounded answers and bounded allocation.
	const clients = 8
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	answers := make([][]byte, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			resp, err := testClient.Get(chat + "/messages?limit=100")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			answers[i], _ = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / clients
	t.Logf("%d concurrent lists: %d bytes allocated per request (server and client), answers of %d bytes", clients, perRequest, len(answers[0]))
	for i, a := range answers {
		if len(a) > maxAnswer || bytes.Contains(a, []byte(`\u003c`)) {
			t.Errorf("answer %d: %d bytes (at most %d), \\u003c in it: %v", i, len(a), maxAnswer, bytes.Contains(a, []byte(`\u003c`)))
		}
	}
	// The store's rows (101 of 64 KiB) and one page are about 8 MB; the
	// whole page encoded with escapes was over 100 MB.
	if perRequest > 32<<20 {
		t.Errorf("each list allocated %d bytes, want at most 32 MiB", perRequest)
	}

	// Walks: every message once, in number order, every page bounded.
	for _, list := range []string{"/messages?limit=100", "/messages/search?q=hello&limit=100"} {
		var numbers []int64
		pages := 0
		for cursor := ""; ; pages++ {
			target := chat + list
			if cursor != "" {
				target += "&cursor=" + cursor
			}
			resp, err := testClient.Get(target)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var p struct {
				Data       []instachat.Message `json:"data"`
				NextCursor *string             `json:"next_cursor"`
			}
			if resp.StatusCode != 200 || json.Unmarshal(raw, &p) != nil || len(p.Data) == 0 || len(raw) > maxAnswer {
				t.Fatalf("GET %s: %d, %d bytes, %d messages", target, resp.StatusCode, len(raw), len(p.Data))
			}
			for _, m := range p.Data {
				numbers = append(numbers, m.Number)
			}
			if p.NextCursor == nil || pages > n {
				break
			}
			cursor = *p.NextCursor
		}
		if pages < 5 {
			t.Errorf("%s: %d pages of 100 messages of 64 KiB; 1 MiB pages hold about 16", list, pages+1)
		}
		if strings.Contains(list, "search") {
			// Search pages in rank order; as a set, every message once.
			seen := map[int64]bool{}
			for _, num := range numbers {
				seen[num] = true
			}
			if len(numbers) != n || len(seen) != n {
				t.Errorf("%s: walked %d results, %d distinct, want %d", list, len(numbers), len(seen), n)
			}
			continue
		}
		for i, num := range numbers {
			if num != int64(i+1) {
				t.Fatalf("%s: walked %v, want 1…%d", list, numbers, n)
			}
		}
		if len(numbers) != n {
			t.Errorf("%s: walked %d messages, want %d", list, len(numbers), n)
		}
	}
}
