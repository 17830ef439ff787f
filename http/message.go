package http

import (
	"math"
	"net/http"

	"github.com/instachat/instachat"
)

// bodyRequest is the body that creates or edits a message. A pointer tells
// a missing or null body from an empty one.
type bodyRequest struct {
	Body *string `json:"body"`
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (string, error) {
	buf, err := s.readJSON(w, r)
	if err != nil {
		return "", err
	}
	defer putBuffer(buf)
	if body, present, ok := parseStringField(buf.b, "body"); ok {
		if !present {
			return required(nil, "body")
		}
		return body, nil
	}
	var req bodyRequest
	if err := decodeRaw(buf.b, &req); err != nil {
		return "", err
	}
	return required(req.Body, "body")
}

// createMessage leaves validating the body to the Creator.
func (s *Server) createMessage(w http.ResponseWriter, r *http.Request, res resource) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	m, replayed, err := s.Creator.CreateMessage(r.Context(), res.token, res.chat, body, key)
	if err != nil {
		return err
	}
	writeCreatedNumber(w, r, s.CreatedStatus, replayed, m.Number, m)
	return nil
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request, res resource) error {
	limit, after, err := parseList(r)
	if err != nil {
		return err
	}
	msgs, err := s.Store.ListMessages(r.Context(), res.token, res.chat, after, limit+1)
	if err != nil {
		return err
	}
	writePage(w, msgs, limit, s.MaxPageBytes, func(_ int, m *instachat.Message) string { return instachat.EncodeCursor(m.Number) })
	return nil
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request, res resource) error {
	m, err := s.Store.FindMessage(r.Context(), res.token, res.chat, res.message)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

func (s *Server) updateMessage(w http.ResponseWriter, r *http.Request, res resource) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if err := s.Limits.ValidateBody(body); err != nil {
		return err
	}
	m, err := s.Store.UpdateMessage(r.Context(), res.token, res.chat, res.message, body, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, m)
	return nil
}

// searchMessages pages by offset, since results come in rank order and
// have no key to resume after; the cursor carries the next offset.
func (s *Server) searchMessages(w http.ResponseWriter, r *http.Request, res resource) error {
	limit, offset, err := parseList(r)
	if err != nil {
		return err
	}
	if offset > math.MaxInt32 { // keeps offset+limit from overflowing; no engine pages that deep
		return instachat.Errorf(instachat.EBADREQUEST, "cursor is not valid")
	}
	terms, err := instachat.ParseSearchTerms(r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	msgs, err := s.Searcher.SearchMessages(r.Context(), instachat.SearchQuery{
		Token: res.token, Chat: res.chat, Terms: terms, Offset: int(offset), Limit: limit + 1,
	})
	if err != nil {
		return err
	}
	writePage(w, msgs, limit, s.MaxPageBytes, func(n int, _ *instachat.Message) string { return instachat.EncodeCursor(offset + int64(n)) })
	return nil
}
