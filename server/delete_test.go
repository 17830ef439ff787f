package server_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/instachat/instachat/internal/testenv"
)

func TestDeletesThroughTheAPI(t *testing.T) { deletesThroughTheAPI(t, start(t, t.TempDir())) }

func TestProductionDeletesThroughTheAPI(t *testing.T) {
	deletesThroughTheAPI(t, startProduction(t, productionConfig(t)))
}

// deletesThroughTheAPI deletes a message, a chat and an application through
// the routes and checks what every read, count, search, feed and create
// answers afterwards; each answer is checked against openapi.json too.
func deletesThroughTheAPI(t *testing.T, r *running) {
	st, app := r.do(t, "POST", "/api/v1/applications", jsonType, `{"name":"Deletes"}`)
	if st != http.StatusCreated {
		t.Fatalf("create application: %d %v", st, app)
	}
	base := "/api/v1/applications/" + app["token"].(string)
	for n := 1; n <= 2; n++ {
		if st, v := r.do(t, "POST", base+"/chats", jsonType, `{"name":"room"}`); st != r.created {
			t.Fatalf("create chat: %d %v", st, v)
		}
		r.readable(t, fmt.Sprintf("%s/chats/%d", base, n))
	}
	chat := base + "/chats/1"
	for n := 1; n <= 3; n++ {
		if st, v := r.do(t, "POST", chat+"/messages", jsonType, fmt.Sprintf(`{"body":"hello number %d"}`, n)); st != r.created {
			t.Fatalf("create message: %d %v", st, v)
		}
		r.readable(t, fmt.Sprintf("%s/messages/%d", chat, n))
	}

	if st, v := r.do(t, "DELETE", chat+"/messages/2", "", ""); st != http.StatusNoContent {
		t.Fatalf("DELETE message: %d %v", st, v)
	}
	for _, req := range []struct{ method, path, body string }{
		{"GET", chat + "/messages/2", ""},
		{"DELETE", chat + "/messages/2", ""},
		{"PATCH", chat + "/messages/2", `{"body":"back"}`},
		{"DELETE", chat + "/messages/9", ""},
	} {
		if st, v := r.do(t, req.method, req.path, jsonType, req.body); st != http.StatusNotFound {
			t.Errorf("%s %s after the delete: %d %v, want 404", req.method, req.path, st, v)
		}
	}
	listed := func(path string) []float64 {
		t.Helper()
		st, v := r.do(t, "GET", path, "", "")
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, st, v)
		}
		var ns []float64
		for _, m := range v["data"].([]any) {
			ns = append(ns, m.(map[string]any)["number"].(float64))
		}
		slices.Sort(ns)
		return ns
	}
	if got := listed(chat + "/messages"); !slices.Equal(got, []float64{1, 3}) {
		t.Errorf("messages listed after deleting 2: %v", got)
	}
	if got := listed(chat + "/messages/search?q=hello"); !slices.Equal(got, []float64{1, 3}) {
		t.Errorf("search after deleting 2: %v", got)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if _, v := r.do(t, "GET", chat, "", ""); v["messages_count"] != 2.0 || v["revision"] != 4.0 {
			return fmt.Errorf("chat after a delete: %v; want messages_count 2, revision 4", v)
		}
		return nil
	})
	st, v := r.do(t, "GET", chat+"/changes?after=2", "", "")
	if st != http.StatusOK {
		t.Fatalf("changes: %d %v", st, v)
	}
	data := v["data"].([]any)
	last := data[len(data)-1].(map[string]any)
	if last["event"] != "message.deleted" || last["revision"] != 4.0 || fmt.Sprint(mapKeys(last["message"].(map[string]any))) != "[deleted_at number]" {
		t.Errorf("changes after 2 end with %v; want message.deleted of 2 at 4 with its number and deleted_at only", last)
	}
	if _, v := r.do(t, "GET", chat+"/changes?after=0", "", ""); len(v["data"].([]any)) != 2 {
		t.Errorf("changes from 0: %v; want the 2 messages left, and not the one deleted", v)
	}

	// A retry of a deleted message's keyed create does not bring it back.
	first := postKeyed(t, r, chat+"/messages", `{"body":"keyed"}`, "k-1")
	if first.status != r.created || first.number != 4 {
		t.Fatalf("keyed create: %+v", first)
	}
	r.readable(t, chat+"/messages/4")
	if st, v := r.do(t, "DELETE", chat+"/messages/4", "", ""); st != http.StatusNoContent {
		t.Fatalf("DELETE keyed message: %d %v", st, v)
	}
	retry := postKeyed(t, r, chat+"/messages", `{"body":"keyed"}`, "k-1")
	if retry.status != http.StatusNotFound || retry.code != "not_found" {
		t.Errorf("retry of a deleted message's create: %+v; want 404", retry)
	}
	if st, _ := r.do(t, "GET", chat+"/messages/4", "", ""); st != http.StatusNotFound {
		t.Errorf("GET of a deleted message after its create was retried: %d, want 404", st)
	}
	// A message of a chat deleted since, retried with its key: 404.
	if k := postKeyed(t, r, base+"/chats/2/messages", `{"body":"in chat 2"}`, "k-2"); k.status != r.created || k.number != 1 {
		t.Fatalf("keyed create in chat 2: %+v", k)
	}
	r.readable(t, base+"/chats/2/messages/1")

	// A chat.
	if st, v := r.do(t, "DELETE", base+"/chats/2", "", ""); st != http.StatusNoContent {
		t.Fatalf("DELETE chat: %d %v", st, v)
	}
	retry = postKeyed(t, r, base+"/chats/2/messages", `{"body":"in chat 2"}`, "k-2")
	if retry.status != http.StatusNotFound || retry.code != "not_found" {
		t.Errorf("retry of a create in a deleted chat: %+v; want 404", retry)
	}
	for _, req := range []struct{ method, path, body string }{
		{"GET", base + "/chats/2", ""},
		{"GET", base + "/chats/2/messages", ""},
		{"GET", base + "/chats/2/changes", ""},
		{"PATCH", base + "/chats/2", `{"name":"back"}`},
		{"DELETE", base + "/chats/2", ""},
		{"POST", base + "/chats/2/messages", `{"body":"too late"}`},
	} {
		if st, v := r.do(t, req.method, req.path, jsonType, req.body); st != http.StatusNotFound {
			t.Errorf("%s %s after the chat's delete: %d %v, want 404", req.method, req.path, st, v)
		}
	}
	if got := listed(base + "/chats"); !slices.Equal(got, []float64{1}) {
		t.Errorf("chats listed after deleting 2: %v", got)
	}
	testenv.Eventually(t, 5*time.Second, func() error {
		if _, v := r.do(t, "GET", base, "", ""); v["chats_count"] != 1.0 || v["revision"] != 3.0 {
			return fmt.Errorf("application after a chat's delete: %v; want chats_count 1, revision 3", v)
		}
		return nil
	})
	st, v = r.do(t, "GET", base+"/changes?after=2", "", "")
	if data := v["data"].([]any); st != http.StatusOK || len(data) != 1 || data[0].(map[string]any)["event"] != "chat.deleted" {
		t.Errorf("application changes after 2: %d %v; want chat.deleted alone", st, v)
	}
	if st, v := r.do(t, "POST", base+"/chats", jsonType, `{"name":"next"}`); st != r.created || v["number"] != 3.0 {
		t.Errorf("a chat created after deleting chat 2: %d %v; want number 3", st, v)
	}
	// A chat created with a key, then deleted: its retry answers 404 too.
	keyedChat := postKeyed(t, r, base+"/chats", `{"name":"keyed"}`, "k-chat")
	if keyedChat.status != r.created || keyedChat.number != 4 {
		t.Fatalf("keyed chat create: %+v", keyedChat)
	}
	r.readable(t, base+"/chats/4")
	if st, v := r.do(t, "DELETE", base+"/chats/4", "", ""); st != http.StatusNoContent {
		t.Fatalf("DELETE keyed chat: %d %v", st, v)
	}
	if retry := postKeyed(t, r, base+"/chats", `{"name":"keyed"}`, "k-chat"); retry.status != http.StatusNotFound || retry.code != "not_found" {
		t.Errorf("retry of a deleted chat's create: %+v; want 404", retry)
	}
	// One created with a key before its application's deletion: 404.
	if k := postKeyed(t, r, base+"/chats", `{"name":"before"}`, "k-app"); k.status != r.created || k.number != 5 {
		t.Fatalf("keyed chat create: %+v", k)
	}
	r.readable(t, base+"/chats/5")

	// The application.
	if st, v := r.do(t, "DELETE", base, "", ""); st != http.StatusNoContent {
		t.Fatalf("DELETE application: %d %v", st, v)
	}
	if retry := postKeyed(t, r, base+"/chats", `{"name":"before"}`, "k-app"); retry.status != http.StatusNotFound || retry.code != "not_found" {
		t.Errorf("retry of a chat create in a deleted application: %+v; want 404", retry)
	}
	for _, req := range []struct{ method, path, body string }{
		{"GET", base, ""},
		{"GET", base + "/chats", ""},
		{"GET", chat, ""},
		{"GET", chat + "/messages/1", ""},
		{"GET", chat + "/messages/search?q=hello", ""},
		{"GET", base + "/changes", ""},
		{"PATCH", base, `{"name":"back"}`},
		{"DELETE", base, ""},
		{"POST", base + "/chats", `{"name":"too late"}`},
		{"POST", chat + "/messages", `{"body":"too late"}`},
	} {
		if st, v := r.do(t, req.method, req.path, jsonType, req.body); st != http.StatusNotFound {
			t.Errorf("%s %s after the application's delete: %d %v, want 404", req.method, req.path, st, v)
		}
	}
}

// TestProductionDeletesSurviveRedisLoss: Redis loses every key after
// deletes; the numbering rebuilt from MySQL reissues no number of a deleted
// message (the highest ones, here) or chat, and a deleted chat or
// application accepts no create.
func TestProductionDeletesSurviveRedisLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the sequencer's 5 s grace for in-flight publishes (about 10 s): not run with -short")
	}
	cfg := productionConfig(t)
	r := startProduction(t, cfg)
	ctx := t.Context()
	app, err := r.client.CreateApplication(ctx, "forgetful")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := r.client.CreateApplication(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	base := "/api/v1/applications/" + app.Token
	for n := 1; n <= 3; n++ {
		if _, _, err := r.client.CreateChat(ctx, app.Token, "", ""); err != nil {
			t.Fatal(err)
		}
		r.readable(t, fmt.Sprintf("%s/chats/%d", base, n))
	}
	for n := 1; n <= 5; n++ {
		if _, _, err := r.client.CreateMessage(ctx, app.Token, 1, fmt.Sprintf("message %d", n), ""); err != nil {
			t.Fatal(err)
		}
		r.readable(t, fmt.Sprintf("%s/chats/1/messages/%d", base, n))
	}
	for _, path := range []string{base + "/chats/1/messages/5", base + "/chats/1/messages/4", base + "/chats/3", "/api/v1/applications/" + gone.Token} {
		if st, v := r.do(t, "DELETE", path, "", ""); st != http.StatusNoContent {
			t.Fatalf("DELETE %s: %d %v", path, st, v)
		}
	}
	testenv.DeleteRedisKeys(t, cfg.RedisURL, cfg.RedisPrefix+"*")

	if m, _, err := r.client.CreateMessage(ctx, app.Token, 1, "after the loss", ""); err != nil || m.Number != 6 {
		t.Errorf("create in chat 1 after the loss: %+v %v; want number 6, above the deleted 4 and 5", m, err)
	}
	if c, _, err := r.client.CreateChat(ctx, app.Token, "", ""); err != nil || c.Number != 4 {
		t.Errorf("create chat after the loss: %+v %v; want number 4, above the deleted chat 3", c, err)
	}
	for _, req := range []struct{ path, body string }{
		{base + "/chats/3/messages", `{"body":"to a deleted chat"}`},
		{"/api/v1/applications/" + gone.Token + "/chats", `{"name":"in a deleted application"}`},
	} {
		for range 2 { // recovering, then recovered
			if st, v := r.do(t, "POST", req.path, jsonType, req.body); st != http.StatusNotFound {
				t.Errorf("POST %s after the loss: %d %v, want 404", req.path, st, v)
			}
		}
	}
	// The deleted chat's recovery marked it deleted, not its application
	// unknown: chat 2, lost with the rest, recovers.
	if m, _, err := r.client.CreateMessage(ctx, app.Token, 2, "beside the deleted chat", ""); err != nil || m.Number != 1 {
		t.Errorf("create in chat 2 after the loss: %+v %v; want number 1", m, err)
	}
	r.readable(t, base+"/chats/1/messages/6")
	for _, n := range []int{4, 5} {
		if st, _ := r.do(t, "GET", fmt.Sprintf("%s/chats/1/messages/%d", base, n), "", ""); st != http.StatusNotFound {
			t.Errorf("GET deleted message %d after the loss: %d", n, st)
		}
	}
}
