package http

import (
	"net/http"

	"github.com/instachat/instachat"
)

// nameRequest is the body that creates or renames an application or chat.
// A pointer tells a missing or null name from an empty one.
type nameRequest struct {
	Name *string `json:"name"`
}

// readName reads a request whose name is required; nonEmpty says whether it
// may also be blank (chats) or not (applications).
func (s *Server) readName(w http.ResponseWriter, r *http.Request, nonEmpty bool) (string, error) {
	name, present, err := s.readOptionalName(w, r)
	if err != nil {
		return "", err
	}
	if !present {
		return required(nil, "name")
	}
	return name, s.Limits.ValidateName(name, nonEmpty)
}

// readOptionalName reads a body whose name may be missing or null
// (present false).
func (s *Server) readOptionalName(w http.ResponseWriter, r *http.Request) (name string, present bool, err error) {
	buf, err := s.readJSON(w, r)
	if err != nil {
		return "", false, err
	}
	defer putBuffer(buf)
	if name, present, ok := parseStringField(buf.b, "name"); ok {
		return name, present, nil
	}
	var req nameRequest
	if err := decodeRaw(buf.b, &req); err != nil {
		return "", false, err
	}
	if req.Name == nil {
		return "", false, nil
	}
	return *req.Name, true, nil
}

// createChat takes an optional name: an empty body makes an unnamed chat.
// The Creator validates it.
func (s *Server) createChat(w http.ResponseWriter, r *http.Request, res resource) error {
	name, _, err := s.readOptionalName(w, r)
	if err != nil {
		return err
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	c, replayed, err := s.Creator.CreateChat(r.Context(), res.token, name, key)
	if err != nil {
		return err
	}
	writeCreatedNumber(w, r, s.CreatedStatus, replayed, c.Number, c)
	return nil
}

func (s *Server) listChats(w http.ResponseWriter, r *http.Request, res resource) error {
	limit, after, err := parseList(r)
	if err != nil {
		return err
	}
	chats, err := s.Store.ListChats(r.Context(), res.token, after, limit+1)
	if err != nil {
		return err
	}
	writePage(w, chats, limit, s.MaxPageBytes, func(_ int, c *instachat.Chat) string { return instachat.EncodeCursor(c.Number) })
	return nil
}

func (s *Server) getChat(w http.ResponseWriter, r *http.Request, res resource) error {
	c, err := s.Store.FindChat(r.Context(), res.token, res.chat)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) updateChat(w http.ResponseWriter, r *http.Request, res resource) error {
	name, err := s.readName(w, r, false)
	if err != nil {
		return err
	}
	c, err := s.Store.UpdateChat(r.Context(), res.token, res.chat, name, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}
