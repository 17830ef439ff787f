package http

import (
	"net/http"

	"github.com/instachat/instachat"
)

// changesPage is the JSON of a page of a feed's changes: a list page, and
// the revision the feed was at when the page was read. listChanges streams
// it with writeItems; clients and tests decode it.
type changesPage struct {
	Data       []instachat.Event `json:"data"`
	NextCursor *string           `json:"next_cursor"`
	Revision   int64             `json:"revision"`
}

func (s *Server) listChatChanges(w http.ResponseWriter, r *http.Request, res resource) error {
	return s.listChanges(w, r, instachat.Topic{Token: res.token, Chat: res.chat})
}

func (s *Server) listApplicationChanges(w http.ResponseWriter, r *http.Request, res resource) error {
	return s.listChanges(w, r, instachat.Topic{Token: res.token})
}

// listChanges answers a page of the topic's changes after ?after=. The
// cursor carries the revision of the page's last item; the next page is the
// same request with it added, after and limit unchanged, so that each item
// is still told created or updated as seen from after.
func (s *Server) listChanges(w http.ResponseWriter, r *http.Request, topic instachat.Topic) error {
	limit, cursor, err := parseList(r)
	if err != nil {
		return err
	}
	after, err := parseRevision(r.URL.Query().Get("after"))
	if err != nil {
		return err
	}
	page, err := s.Store.ListChanges(r.Context(), instachat.ChangesQuery{Topic: topic, After: after, Cursor: cursor, Limit: limit})
	if err != nil {
		return err
	}
	// Streamed and bounded by bytes like every list: events carry whole
	// messages.
	writeItems(w, page.Events, page.More, s.MaxPageBytes,
		func(_ int, last instachat.Event) string { return instachat.EncodeCursor(last.Revision) },
		pageField{"revision", page.Revision})
	return nil
}

// parseRevision reads a revision to resume after: 0 when absent, else 0 or
// a positive integer in decimal digits.
func parseRevision(s string) (int64, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	n, ok := parseNumber(s)
	if !ok {
		return 0, instachat.Errorf(instachat.EBADREQUEST, "bad parameter: after must be a revision, 0 or a positive integer")
	}
	return n, nil
}
