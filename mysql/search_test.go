package mysql

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/instachat/instachat"
)

// TestSearchScanIsBounded: without a search engine a search scans the chat,
// so it may examine only the chat's first SearchScanLimit messages and run
// only SearchTimeout. Past either before its page is full it answers
// EINVALID asking for a narrower query, never a page that passes for
// complete.
func TestSearchScanIsBounded(t *testing.T) {
	db := openTest(t)
	db.searchScanLimit = 50
	app := newApp(t, db)
	creates := []instachat.Create{
		{Chat: &instachat.Chat{Token: app.Token, Number: 1}},
		{Chat: &instachat.Chat{Token: app.Token, Number: 2}},
	}
	for n := int64(1); n <= 120; n++ {
		body := "hay"
		switch n {
		case 10:
			body = "needle early"
		case 100:
			body = "needle late"
		}
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: 1, Number: n, Body: body}})
	}
	for n := int64(1); n <= 40; n++ { // a chat within the bound
		creates = append(creates, instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: 2, Number: n, Body: "hay"}})
	}
	creates = append(creates, instachat.Create{Message: &instachat.Message{Token: app.Token, Chat: 2, Number: 41, Body: "needle"}})
	if err := db.ApplyCreates(t.Context(), creates); err != nil {
		t.Fatal(err)
	}
	search := func(chat int64, term string, limit int) ([]instachat.SearchHit, error) {
		return db.SearchMessageNumbers(t.Context(), instachat.SearchQuery{Token: app.Token, Chat: chat, Terms: []string{term}, Limit: limit})
	}
	numbers := func(hits []instachat.SearchHit) (ns []int64) {
		for _, h := range hits {
			ns = append(ns, h.Number)
		}
		return ns
	}

	// A page filled within the bound answers.
	if hits, err := search(1, "early", 1); err != nil || len(hits) != 1 || hits[0].Number != 10 {
		t.Errorf("a match within the bound, page of 1: %v, %v; want message 10", numbers(hits), err)
	}
	// A page not full when the bound is reached is refused, whatever it
	// found so far: its match 100 lies past the first 50 messages.
	for _, c := range []struct {
		term  string
		limit int
	}{{"needle", 5}, {"late", 1}, {"nothing", 1}} {
		hits, err := search(1, c.term, c.limit)
		if instachat.ErrorCode(err) != instachat.EINVALID ||
			!strings.Contains(instachat.ErrorMessage(err), "narrow") || !strings.Contains(instachat.ErrorMessage(err), "50") {
			t.Errorf("search %q past the bound: %v, %v; want %s asking to narrow it, naming the 50 examined", c.term, numbers(hits), err, instachat.EINVALID)
		}
	}
	// A chat no longer than the bound is searched whole.
	if hits, err := search(2, "needle", 5); err != nil || len(hits) != 1 || hits[0].Number != 41 {
		t.Errorf("a chat of 41 messages: %v, %v; want message 41", numbers(hits), err)
	}
	if hits, err := search(2, "nothing", 5); err != nil || len(hits) != 0 {
		t.Errorf("no match in a chat of 41 messages: %v, %v; want none", numbers(hits), err)
	}

	// The deadline: one that has passed refuses the search the same way.
	db.searchTimeout = time.Nanosecond
	if hits, err := search(2, "needle", 5); instachat.ErrorCode(err) != instachat.EINVALID || !strings.Contains(instachat.ErrorMessage(err), "narrow") {
		t.Errorf("search past its deadline: %v, %v; want %s asking to narrow it", numbers(hits), err, instachat.EINVALID)
	}
	// The caller's own end is not the search's deadline.
	db.searchTimeout = time.Minute
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := db.SearchMessageNumbers(ctx,
		instachat.SearchQuery{Token: app.Token, Chat: 2, Terms: []string{"needle"}, Limit: 5}); err == nil ||
		instachat.ErrorCode(err) == instachat.EINVALID {
		t.Errorf("search of a cancelled request: %v; want the cancellation, not %s", err, instachat.EINVALID)
	}
}
