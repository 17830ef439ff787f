package http

import (
	"net/http"

	"github.com/instachat/instachat"
)

// deleteMessage erases the message; a search engine apart from the store
// gets its tombstone.
func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request, res resource) error {
	m, err := s.Store.DeleteMessage(r.Context(), res.token, res.chat, res.message, s.now())
	if err != nil {
		return err
	}
	if s.Indexer != nil {
		// The deletion is stored and no read returns the message, search
		// included (it loads its hits from the store): a failed index
		// update leaves the body in the index until a reindex.
		if err := s.Indexer.DeleteMessages(r.Context(), []*instachat.Message{m}); err != nil {
			s.Logger.WarnContext(r.Context(), "removing a deleted message from the search index", "route", r.Pattern, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteChat hides the chat in the store, which drops every create for it
// from then on, then tells the sequencer, so that dispatchers refuse them
// at once.
func (s *Server) deleteChat(w http.ResponseWriter, r *http.Request, res resource) error {
	if _, err := s.Store.DeleteChat(r.Context(), res.token, res.chat, s.now()); err != nil {
		return err
	}
	s.forget(r, instachat.MessagesOf(res.token, res.chat))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// deleteApplication is deleteChat one level up.
func (s *Server) deleteApplication(w http.ResponseWriter, r *http.Request, res resource) error {
	if err := s.Store.DeleteApplication(r.Context(), res.token, s.now()); err != nil {
		return err
	}
	s.forget(r, instachat.ChatsOf(res.token))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// forget tells the sequencer of a deletion the store committed. Failing
// only lets dispatchers number creates the store then drops, so it is
// logged, not answered.
func (s *Server) forget(r *http.Request, scope instachat.Scope) {
	if s.Sequencer == nil {
		return
	}
	if err := s.Sequencer.Delete(r.Context(), scope); err != nil {
		s.Logger.WarnContext(r.Context(), "telling the sequencer of a deletion", "route", r.Pattern, "err", err)
	}
}
