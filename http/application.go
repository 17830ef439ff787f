package http

import (
	"net/http"

	"github.com/instachat/instachat"
)

// createApplication leaves validating the name to the Creator.
func (s *Server) createApplication(w http.ResponseWriter, r *http.Request, _ resource) error {
	var req nameRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	name, err := required(req.Name, "name")
	if err != nil {
		return err
	}
	app, err := s.Creator.CreateApplication(r.Context(), name)
	if err != nil {
		return err
	}
	writeCreated(w, r, http.StatusCreated, false, app.Token, app)
	return nil
}

func (s *Server) listApplications(w http.ResponseWriter, r *http.Request, _ resource) error {
	limit, err := parseLimit(r)
	if err != nil {
		return err
	}
	after, err := instachat.DecodeTokenCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		return err
	}
	// Only a page's last application makes a cursor; one naming an
	// application that does not exist was not made by this server.
	if after != "" {
		if _, err := s.Store.FindApplication(r.Context(), after); instachat.ErrorCode(err) == instachat.ENOTFOUND {
			return instachat.Errorf(instachat.EBADREQUEST, "cursor is not valid")
		} else if err != nil {
			return err
		}
	}
	apps, err := s.Store.ListApplications(r.Context(), after, limit+1)
	if err != nil {
		return err
	}
	writePage(w, apps, limit, s.MaxPageBytes, func(_ int, a *instachat.Application) string { return instachat.EncodeTokenCursor(a.Token) })
	return nil
}

func (s *Server) getApplication(w http.ResponseWriter, r *http.Request, res resource) error {
	app, err := s.Store.FindApplication(r.Context(), res.token)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app)
	return nil
}

func (s *Server) updateApplication(w http.ResponseWriter, r *http.Request, res resource) error {
	name, err := s.readName(w, r, true)
	if err != nil {
		return err
	}
	app, err := s.Store.UpdateApplication(r.Context(), res.token, name, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, app)
	return nil
}
