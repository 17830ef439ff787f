package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/instachat/instachat"
)

// walk reads every page of the list at path (limit=100) and returns the raw
// answers, failing on anything but 200.
func walk(t *testing.T, base, path string) [][]byte {
	t.Helper()
	var pages [][]byte
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for cursor := ""; ; {
		target := base + path + sep + "limit=100"
		if cursor != "" {
			target += "&cursor=" + cursor
		}
		req, err := http.NewRequest("GET", target, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testAdminToken) // for the list of applications
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %.200s (%v)", target, resp.StatusCode, raw, err)
		}
		pages = append(pages, raw)
		var p page[json.RawMessage]
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("GET %s: %.200s: %v", target, raw, err)
		}
		if p.NextCursor == nil {
			return pages
		}
		if len(pages) > 1000 {
			t.Fatalf("GET %s: more than 1000 pages", path)
		}
		cursor = *p.NextCursor
	}
}

// TestListPagesAreBoundedByBytes fills every list with items that are
// mostly '<', and walks each with limit=100 under a small MaxPageBytes:
// every page ends early, by bytes, with a cursor that resumes exactly after
// it, and '<' is written as itself, not as \u003c.
func TestListPagesAreBoundedByBytes(t *testing.T) {
	const maxPage = 4 << 10
	e, s := newDoubles()
	s.MaxPageBytes = maxPage
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	long := strings.Repeat("<", 250)
	var token string
	for i := range 40 {
		app := &instachat.Application{Token: instachat.NewToken(), Name: fmt.Sprintf("%s%03d", long, i)}
		if err := e.store.CreateApplication(ctx, app); err != nil {
			t.Fatal(err)
		}
		if err := e.seq.AddApplication(ctx, app.Token); err != nil {
			t.Fatal(err)
		}
		token = app.Token
	}
	for i := range 40 {
		if _, _, err := e.dispatcher.CreateChat(ctx, token, fmt.Sprintf("%s%03d", long, i), ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 40 {
		if _, _, err := e.dispatcher.CreateMessage(ctx, token, 1, fmt.Sprintf("hello %s%03d", long, i), ""); err != nil {
			t.Fatal(err)
		}
	}
	chat := "/api/v1/applications/" + token + "/chats"
	for _, path := range []string{"/api/v1/applications", chat, chat + "/1/messages", chat + "/1/messages/search?q=hello"} {
		pages := walk(t, srv.URL, path)
		var seen []string
		for i, raw := range pages {
			if bytes.Contains(raw, []byte(`\u003c`)) {
				t.Errorf("%s page %d escapes '<': %.100s", path, i, raw)
			}
			var p page[json.RawMessage]
			json.Unmarshal(raw, &p)
			size := 0
			for _, item := range p.Data {
				size += len(item)
				var v struct{ Name, Body string }
				json.Unmarshal(item, &v)
				seen = append(seen, v.Name+v.Body)
			}
			if len(p.Data) == 0 || size > maxPage && len(p.Data) > 1 {
				t.Errorf("%s page %d holds %d items of %d bytes, want 1 or more within %d", path, i, len(p.Data), size, maxPage)
			}
		}
		if len(pages) < 3 {
			t.Errorf("%s: %d pages of 40 items; a page of %d bytes holds fewer", path, len(pages), maxPage)
		}
		if len(seen) != 40 {
			t.Fatalf("%s: walked %d items, want 40", path, len(seen))
		}
		for i, v := range seen {
			if !strings.HasSuffix(v, fmt.Sprintf("%s%03d", long, i)) {
				t.Errorf("%s: item %d is %q…, want the %dth", path, i, v[len(v)-4:], i)
			}
		}
	}
}

// TestListMemoryIsBoundedPerRequest lists 100 messages of 64 KiB of '<'
// concurrently. Encoded with HTML escaping and in one buffer, each answer
// was 39 MB and cost twice that in memory; streamed, unescaped and bounded
// by bytes, each is about MaxPageBytes, and so is what it allocates.
func TestListMemoryIsBoundedPerRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a few hundred MB before the fix")
	}
	e, s := newDoubles()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	ctx := context.Background()
	app := &instachat.Application{Token: instachat.NewToken(), Name: "big"}
	if err := e.store.CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	if err := e.seq.AddApplication(ctx, app.Token); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.dispatcher.CreateChat(ctx, app.Token, "", ""); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("<", instachat.DefaultLimits.MaxBodyBytes)
	for range 100 {
		if _, _, err := e.dispatcher.CreateMessage(ctx, app.Token, 1, body, ""); err != nil {
			t.Fatal(err)
		}
	}
	const clients = 8
	target := srv.URL + "/api/v1/applications/" + app.Token + "/chats/1/messages?limit=100"
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sizes := make([]int64, clients)
	escaped := make([]bool, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			resp, err := http.Get(target)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			// Read in small pieces so the client side allocates little.
			buf := make([]byte, 32<<10)
			for {
				n, err := resp.Body.Read(buf)
				sizes[i] += int64(n)
				escaped[i] = escaped[i] || bytes.Contains(buf[:n], []byte(`\u003c`))
				if err != nil {
					break
				}
			}
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / clients
	t.Logf("%d concurrent lists: %d bytes allocated per request, answers of %d bytes", clients, perRequest, sizes[0])
	limit := int64(defaultMaxPageBytes + instachat.DefaultLimits.MaxBodyBytes + 4<<10)
	for i := range clients {
		if sizes[i] > limit || escaped[i] {
			t.Errorf("answer %d: %d bytes (want at most %d), \\u003c in it: %v", i, sizes[i], limit, escaped[i])
		}
	}
	if perRequest > 8<<20 {
		t.Errorf("each list allocated %d bytes, want at most 8 MiB", perRequest)
	}
}

// feedStore answers a chat's feed from a fixed list of events, in
// revision order, as ChangesQuery describes.
type feedStore struct {
	*memStore
	events []instachat.Event
}

func (f feedStore) ListChanges(_ context.Context, q instachat.ChangesQuery) (*instachat.ChangesPage, error) {
	var out []instachat.Event
	for _, e := range f.events {
		if e.Revision > max(q.After, q.Cursor) {
			out = append(out, e)
		}
	}
	return &instachat.ChangesPage{Events: out[:min(len(out), q.Limit)], Revision: int64(len(f.events)), More: len(out) > q.Limit}, nil
}

// TestChangesPagesAreBoundedByBytes: a feed's events carry whole messages,
// so its pages are streamed and bounded by bytes like every list, and
// keep the feed's revision.
func TestChangesPagesAreBoundedByBytes(t *testing.T) {
	const maxPage, n = 8 << 10, 40
	e, s := newDoubles()
	store := feedStore{memStore: e.store}
	for i := range n {
		store.events = append(store.events, instachat.Event{Event: "created", Revision: int64(i + 1),
			Message: &instachat.Message{Number: int64(i + 1), Body: strings.Repeat("<", 2<<10)}})
	}
	s.Store, s.MaxPageBytes = store, maxPage
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	var revisions []int64
	pages := walk(t, srv.URL, "/api/v1/applications/"+instachat.NewToken()+"/chats/1/changes")
	for i, raw := range pages {
		var p changesPage
		if err := json.Unmarshal(raw, &p); err != nil || bytes.Contains(raw, []byte(`\u003c`)) || p.Revision != n {
			t.Fatalf("page %d: %.200s (%v), want revision %d and no \\u003c", i, raw, err, n)
		}
		if len(raw) > maxPage+4<<10 || len(p.Data) == 0 {
			t.Errorf("page %d: %d bytes, %d events", i, len(raw), len(p.Data))
		}
		for _, ev := range p.Data {
			revisions = append(revisions, ev.Revision)
		}
	}
	if len(pages) < 10 || len(revisions) != n {
		t.Fatalf("%d pages, %d events, want 40 events in pages of about 3", len(pages), len(revisions))
	}
	for i, r := range revisions {
		if r != int64(i+1) {
			t.Fatalf("walked revisions %v, want 1…%d", revisions, n)
		}
	}
}
