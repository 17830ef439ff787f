package http

import (
	"net/http"
)

// deleteMessage erases the message; what else that entails (the search
// index, the feed) is the layered Store's.
func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request, res resource) error {
	if _, err := s.Store.DeleteMessage(r.Context(), res.token, res.chat, res.message, s.now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteChat hides the chat and everything in it at once; the store
// reclaims the rows in the background.
func (s *Server) deleteChat(w http.ResponseWriter, r *http.Request, res resource) error {
	if _, err := s.Store.DeleteChat(r.Context(), res.token, res.chat, s.now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteApplication is deleteChat one level up.
func (s *Server) deleteApplication(w http.ResponseWriter, r *http.Request, res resource) error {
	if err := s.Store.DeleteApplication(r.Context(), res.token, s.now()); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
