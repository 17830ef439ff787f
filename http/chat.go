package http

import (
	"net/http"
	"strconv"

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
	var req nameRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return "", err
	}
	name, err := required(req.Name, "name")
	if err != nil {
		return "", err
	}
	return name, s.Limits.ValidateName(name, nonEmpty)
}

// createChat takes an optional name: an empty body makes an unnamed chat.
// The Creator validates it.
func (s *Server) createChat(w http.ResponseWriter, r *http.Request, res resource) error {
	var req nameRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	var name string
	if req.Name != nil {
		name = *req.Name
	}
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	c, replayed, err := s.Creator.CreateChat(r.Context(), res.token, name, key)
	if err != nil {
		return err
	}
	writeCreated(w, r, s.CreatedStatus, replayed, strconv.FormatInt(c.Number, 10), c)
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
