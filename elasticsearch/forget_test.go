package elasticsearch_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/elasticsearch"
	"github.com/instachat/instachat/worker"
)

const (
	refreshRoute       = "POST /instachat-messages/_refresh"
	deleteByQueryRoute = "POST /instachat-messages/_delete_by_query"
	// deleteByQuery is the route with the query parameters ForgetScope
	// sends (Open with Refresh wait_for, which delete by query spells true).
	deleteByQuery = deleteByQueryRoute + "?conflicts=proceed&max_docs=10000&refresh=true&wait_for_completion=true"
)

// TestForgetScopeDeletesByQuery: forgetting a chat refreshes the index (so
// that documents indexed a moment before are found), then deletes by query
// every document of the token and chat, proceeding past conflicts and
// waiting for the end; forgetting an application drops the chat from the
// query.
func TestForgetScopeDeletesByQuery(t *testing.T) {
	for _, tc := range []struct {
		scope instachat.Scope
		query string
	}{
		{instachat.MessagesOf(token, 1), `{"query": {"bool": {"filter": [{"term": {"token": "kQ3vT7mW2xYz8bN4pR6sLg"}}, {"term": {"chat": 1}}]}}}`},
		{instachat.ChatsOf(token), `{"query": {"bool": {"filter": [{"term": {"token": "kQ3vT7mW2xYz8bN4pR6sLg"}}]}}}`},
	} {
		x, c := open(t, map[string]string{refreshRoute: "refresh.http", deleteByQueryRoute: "delete_by_query.http"})
		if err := x.ForgetScope(t.Context(), tc.scope); err != nil {
			t.Fatalf("ForgetScope(%+v): %v", tc.scope, err)
		}
		reqs := c.take()
		if got, want := routes(reqs), []string{refreshRoute, deleteByQuery}; !slices.Equal(got, want) {
			t.Fatalf("ForgetScope(%+v) sent %q, want %q", tc.scope, got, want)
		}
		if reqs[1].ContentType != "application/json" {
			t.Errorf("delete by query: Content-Type %q, want application/json", reqs[1].ContentType)
		}
		jsonEqual(t, "delete by query body", reqs[1].Body, []byte(tc.query))
	}
}

// TestForgetScopeRefreshesAsConfigured: without Config.Refresh, the
// deletion leaves visibility to the index's refresh interval, as writes do.
func TestForgetScopeRefreshesAsConfigured(t *testing.T) {
	c := replay(t, map[string]string{"HEAD /instachat-messages": "index_exists.http", "GET /instachat-messages/_mapping": "mapping.http",
		refreshRoute: "refresh.http", deleteByQueryRoute: "delete_by_query.http"})
	x, err := elasticsearch.Open(t.Context(), elasticsearch.Config{URL: c.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c.take()
	if err := x.ForgetScope(t.Context(), instachat.MessagesOf(token, 1)); err != nil {
		t.Fatal(err)
	}
	want := []string{refreshRoute, deleteByQueryRoute + "?conflicts=proceed&max_docs=10000&refresh=false&wait_for_completion=true"}
	if got := routes(c.take()); !slices.Equal(got, want) {
		t.Errorf("sent %q, want %q", got, want)
	}
}

// TestForgetScopeRepeatsFullBatches: a request that deleted as many
// documents as it may (max_docs) is followed by another, until one deletes
// fewer; only the first refreshes.
func TestForgetScopeRepeatsFullBatches(t *testing.T) {
	elasticsearch.SetForgetBatch(t, 3)
	x, c := open(t, map[string]string{refreshRoute: "refresh.http", deleteByQueryRoute: "delete_by_query_rest.http"})
	c.answerInTurn(deleteByQueryRoute, "delete_by_query.http", "delete_by_query.http") // 3 deleted each, then 1
	if err := x.ForgetScope(t.Context(), instachat.ChatsOf(token)); err != nil {
		t.Fatalf("ForgetScope: %v", err)
	}
	batch := deleteByQueryRoute + "?conflicts=proceed&max_docs=3&refresh=true&wait_for_completion=true"
	if got, want := routes(c.take()), []string{refreshRoute, batch, batch, batch}; !slices.Equal(got, want) {
		t.Errorf("sent %q, want %q", got, want)
	}
}

// TestForgetScopeReportsWhatItLeft: an answer with failures, a timeout, or
// documents changed while they were being deleted (which conflicts=proceed
// skips) is an error, so that the reclaim calls ForgetScope again; the
// statuses that mean "not now" are EUNAVAILABLE. The error never holds the
// whole token.
func TestForgetScopeReportsWhatItLeft(t *testing.T) {
	for _, tc := range []struct {
		answer string
		code   string
		sent   int      // delete by query requests
		want   []string // parts of the error
	}{
		{"delete_by_query_rejected.http", instachat.EUNAVAILABLE, 1,
			[]string{"2 failures, 1 of 3 documents deleted", "429 es_rejected_execution_exception", "chat 1 of " + instachat.RedactToken(token)}},
		// 503 is retried once by the client, like any 502, 503 or 504.
		{"delete_by_query_shard_failed.http", instachat.EUNAVAILABLE, 2, []string{"1 failures", "503 no_shard_available_action_exception"}},
		{"delete_by_query_timed_out.http", instachat.EUNAVAILABLE, 1, []string{"timed out after deleting 1 of 3 documents"}},
		{"delete_by_query_conflicts.http", instachat.EUNAVAILABLE, 1, []string{"1 documents changed while being deleted; 2 of 3 deleted"}},
		{"search_unavailable.http", instachat.EUNAVAILABLE, 2, []string{"search_phase_execution_exception"}},
		{"mapping_dynamic.http", instachat.EINTERNAL, 1, []string{"decoding the answer"}}, // not an answer of delete by query
	} {
		x, c := open(t, map[string]string{refreshRoute: "refresh.http", deleteByQueryRoute: tc.answer})
		err := x.ForgetScope(t.Context(), instachat.MessagesOf(token, 1))
		if err == nil {
			t.Errorf("%s: ForgetScope succeeded", tc.answer)
			continue
		}
		wantCode(t, tc.answer, err, tc.code)
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to mention %q", tc.answer, err, w)
			}
		}
		if strings.Contains(err.Error(), token) {
			t.Errorf("%s: error %v holds the whole token", tc.answer, err)
		}
		var sent int
		for _, r := range c.take() {
			if r.Route == deleteByQueryRoute {
				sent++
			}
		}
		if sent != tc.sent {
			t.Errorf("%s: delete by query sent %d times, want %d", tc.answer, sent, tc.sent)
		}
	}
}

// TestForgetScopeOfAMissingIndex: an index deleted under the running
// service holds nothing to forget; a failed refresh stops before deleting.
func TestForgetScopeOfAMissingIndex(t *testing.T) {
	x, c := open(t, map[string]string{refreshRoute: "index_not_found.http"})
	if err := x.ForgetScope(t.Context(), instachat.ChatsOf(token)); err != nil {
		t.Errorf("ForgetScope with the index missing: %v", err)
	}
	if got := routes(c.take()); !slices.Equal(got, []string{refreshRoute}) {
		t.Errorf("sent %q, want the refresh only", got)
	}
	c.answer(refreshRoute, "search_unavailable.http")
	wantCode(t, "ForgetScope with the refresh failing", x.ForgetScope(t.Context(), instachat.ChatsOf(token)), instachat.EUNAVAILABLE)
	for _, r := range c.take() {
		if r.Route == deleteByQueryRoute {
			t.Errorf("deleted by query after the refresh failed")
		}
	}
	if err := x.ForgetScope(t.Context(), instachat.ChatsOf("")); err == nil {
		t.Errorf("ForgetScope of no token succeeded")
	}
	if reqs := c.take(); len(reqs) != 0 {
		t.Errorf("ForgetScope of no token sent %q", routes(reqs))
	}
}

// TestReclaimForgetsInElasticsearch: the worker's reclaim of a deleted chat
// erases the store's rows, then the chat's documents by delete by query;
// while Elasticsearch refuses (the recorded 429), the deletion stays
// recorded and the next poll tries again, until an answer without failures
// lets the reclaim finish.
func TestReclaimForgetsInElasticsearch(t *testing.T) {
	x, c := open(t, map[string]string{refreshRoute: "refresh.http", deleteByQueryRoute: "delete_by_query.http"})
	c.answerInTurn(deleteByQueryRoute, "delete_by_query_rejected.http", "delete_by_query_rejected.http")
	store := storeWithMessages(t)
	if _, err := store.DeleteChat(t.Context(), token, 1, messages()[0].CreatedAt.Add(1)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	r := &worker.Reclaimer{Store: store, Engine: x, Poll: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	go func() { ran <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Reclaimer.Run: %v", err)
		}
	}()
	// A probe that fails leaves the record where it is: Reclaim answers
	// (0, nil) only once the reclaimer removed it.
	probe := errors.New("probe")
	waitReclaimed(t, store, probe)
	var sent []string
	for _, req := range c.take() {
		if req.Route == deleteByQueryRoute {
			sent = append(sent, string(req.Body))
		}
	}
	if len(sent) != 3 {
		t.Fatalf("delete by query sent %d times, want 3: refused twice, then taken", len(sent))
	}
	for _, body := range sent {
		jsonEqual(t, "delete by query body", []byte(body),
			[]byte(`{"query": {"bool": {"filter": [{"term": {"token": "kQ3vT7mW2xYz8bN4pR6sLg"}}, {"term": {"chat": 1}}]}}}`))
	}
	if msgs, err := store.FindMessages(t.Context(), token, 1, []int64{1, 2, 3}); err != nil || len(msgs) != 0 {
		t.Errorf("FindMessages after the reclaim = %d messages, %v; want none", len(msgs), err)
	}
}

// waitReclaimed probes the store's reclaim with a done that always fails
// with probe, which leaves the record where it is, until Reclaim answers
// (0, nil): the reclaimer under test removed the record.
func waitReclaimed(t *testing.T, store instachat.Store, probe error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := store.Reclaim(t.Context(), 1, func(context.Context, instachat.Scope) error { return probe })
		if n == 0 && err == nil {
			break
		}
		if err != nil && !errors.Is(err, probe) {
			t.Fatalf("Reclaim: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the reclaim of the deleted chat did not finish in 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
