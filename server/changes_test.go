package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestChangesThroughTheAPI(t *testing.T) { changesThroughTheAPI(t, start(t, t.TempDir())) }

func TestProductionChangesThroughTheAPI(t *testing.T) {
	changesThroughTheAPI(t, startProduction(t, productionConfig(t)))
}

// changesThroughTheAPI reads a chat's and an application's changes as a
// client resuming from several revisions would, page by page, and checks
// every refusal the routes answer.
func changesThroughTheAPI(t *testing.T, r *running) {
	st, app := r.do(t, "POST", "/api/v1/applications", jsonType, `{"name":"Feeds"}`)
	if st != http.StatusCreated || app["revision"] != 0.0 {
		t.Fatalf("create application: %d %v; want revision 0", st, app)
	}
	base := "/api/v1/applications/" + app["token"].(string)
	if st, v := r.do(t, "POST", base+"/chats", jsonType, `{"name":"general"}`); st != r.created {
		t.Fatalf("create chat: %d %v", st, v)
	}
	chat := base + "/chats/1"
	r.readable(t, chat)
	// One at a time, each readable before the next: the order of the
	// revisions is then the order of the numbers, in every topology.
	for n := 1; n <= 5; n++ {
		if st, v := r.do(t, "POST", chat+"/messages", jsonType, fmt.Sprintf(`{"body":"message %d"}`, n)); st != r.created {
			t.Fatalf("create message: %d %v", st, v)
		}
		r.readable(t, fmt.Sprintf("%s/messages/%d", chat, n))
	}
	if st, v := r.do(t, "PATCH", chat+"/messages/2", jsonType, `{"body":"edited"}`); st != http.StatusOK {
		t.Fatalf("edit message: %d %v", st, v)
	}
	if st, v := r.do(t, "GET", chat, "", ""); st != http.StatusOK || v["revision"] != 6.0 {
		t.Errorf("GET chat after 5 messages and an edit: %d %v; want revision 6", st, v)
	}

	page := func(path string) (events []string, next string, revision float64) {
		t.Helper()
		st, v := r.do(t, "GET", path, "", "")
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, st, v)
		}
		for _, e := range v["data"].([]any) {
			e := e.(map[string]any)
			var item map[string]any
			var keys []string
			for k := range e {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if m, ok := e["message"].(map[string]any); ok {
				item = m
				if got := strings.Join(keys, ","); got != "event,message,revision" {
					t.Errorf("GET %s: a message event has keys %s", path, got)
				}
				if fmt.Sprint(mapKeys(m)) != "[body created_at number updated_at]" {
					t.Errorf("GET %s: an event's message has keys %v", path, mapKeys(m))
				}
			} else {
				item = e["chat"].(map[string]any)
				if got := strings.Join(keys, ","); got != "chat,event,revision" {
					t.Errorf("GET %s: a chat event has keys %s", path, got)
				}
				if fmt.Sprint(mapKeys(item)) != "[created_at messages_count name number revision updated_at]" {
					t.Errorf("GET %s: an event's chat has keys %v", path, mapKeys(item))
				}
			}
			events = append(events, fmt.Sprintf("%s %v@%v", e["event"], item["number"], e["revision"]))
		}
		if c, ok := v["next_cursor"].(string); ok {
			next = c
		} else if v["next_cursor"] != nil {
			t.Errorf("GET %s: next_cursor is %v", path, v["next_cursor"])
		}
		return events, next, v["revision"].(float64)
	}
	want := func(what string, got []string, want ...string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n%v\nwant\n%v", what, got, want)
		}
	}

	events, next, revision := page(chat + "/changes")
	want("the chat's changes", events, "message.created 1@1", "message.created 3@3", "message.created 4@4", "message.created 5@5", "message.created 2@6")
	if next != "" || revision != 6 {
		t.Errorf("the chat's changes: next_cursor %q, revision %v; want none, 6", next, revision)
	}
	if st, v := r.do(t, "GET", chat+"/messages/2", "", ""); st != http.StatusOK || v["body"] != "edited" {
		t.Errorf("GET the edited message: %d %v", st, v)
	}

	// Resumed after 3, in pages of 2: the next page is the same request
	// with the cursor added.
	events, next, _ = page(chat + "/changes?after=3&limit=2")
	want("the first page after 3", events, "message.created 4@4", "message.created 5@5")
	if next == "" {
		t.Fatal("the first of two pages has no next_cursor")
	}
	events, next, revision = page(chat + "/changes?after=3&limit=2&cursor=" + next)
	want("the second page after 3", events, "message.updated 2@6")
	if next != "" || revision != 6 {
		t.Errorf("the last page: next_cursor %q, revision %v; want none, 6", next, revision)
	}
	events, _, revision = page(chat + "/changes?after=6")
	want("changes after the current revision", events)
	if revision != 6 {
		t.Errorf("changes after the current revision: revision %v, want 6", revision)
	}

	if st, v := r.do(t, "PATCH", chat, jsonType, `{"name":"renamed"}`); st != http.StatusOK || v["revision"] != 6.0 {
		t.Fatalf("rename chat: %d %v", st, v)
	}
	if st, v := r.do(t, "GET", base, "", ""); st != http.StatusOK || v["revision"] != 2.0 {
		t.Errorf("GET application after a chat and its rename: %d %v; want revision 2", st, v)
	}
	events, next, revision = page(base + "/changes")
	want("the application's changes", events, "chat.created 1@2")
	if next != "" || revision != 2 {
		t.Errorf("the application's changes: next_cursor %q, revision %v; want none, 2", next, revision)
	}
	events, _, _ = page(base + "/changes?after=1")
	want("the application's changes after 1", events, "chat.updated 1@2")
	if _, v := r.do(t, "GET", base+"/changes", "", ""); v["data"].([]any)[0].(map[string]any)["chat"].(map[string]any)["name"] != "renamed" {
		t.Errorf("the application's changes list %v, not the chat renamed", v["data"])
	}

	for path, code := range map[string]int{
		chat + "/changes?after=7":                                              http.StatusBadRequest,
		base + "/changes?after=3":                                              http.StatusBadRequest,
		chat + "/changes?after=abc":                                            http.StatusBadRequest,
		chat + "/changes?after=-1":                                             http.StatusBadRequest,
		chat + "/changes?after=01":                                             http.StatusBadRequest,
		chat + "/changes?limit=0":                                              http.StatusBadRequest,
		chat + "/changes?limit=101":                                            http.StatusBadRequest,
		chat + "/changes?cursor=nonsense":                                      http.StatusBadRequest,
		base + "/chats/2/changes":                                              http.StatusNotFound,
		"/api/v1/applications/" + strings.Repeat("A", 22) + "/changes":         http.StatusNotFound,
		"/api/v1/applications/" + strings.Repeat("A", 22) + "/chats/1/changes": http.StatusNotFound,
	} {
		st, v := r.do(t, "GET", path, "", "")
		e, _ := v["error"].(map[string]any)
		if st != code || e == nil || e["code"] == nil || e["message"] == nil {
			t.Errorf("GET %s: %d %v; want %d with a JSON error", path, st, v, code)
		}
	}
}

func mapKeys(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
