// Package http serves the Instachat REST API under /api/v1 with the standard
// library mux, and ships a Go client for it. Callers import it as
// instachathttp.
package http

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/feed"
	"github.com/instachat/instachat/internal/httpstatus"
)

// Server answers the REST API. Set the fields, then call Handler once.
//
// It is transport only: each endpoint parses the request, makes one call to
// one of the services below and writes the answer. What a change entails
// beyond its row (numbering, indexing, publishing) is the services' affair:
// Store is the layered store the process wires (feed.Publisher over
// search.Indexing over the backend, where those apply).
type Server struct {
	Store    instachat.Store    // reads, renames and edits
	Creator  instachat.Creator  // creates of applications, chats and messages
	Searcher instachat.Searcher // search

	Limits instachat.Limits // zero means instachat.DefaultLimits
	// MaxRequestBytes bounds a request body; zero means room for the
	// longest JSON encoding of the largest valid body or name (six bytes,
	// \u00XX, per byte of a body; twelve, a surrogate pair, per character of
	// a name) and 64 KiB of JSON around it.
	MaxRequestBytes int64
	// MaxPageBytes bounds the encoded items of a list page; a page ends
	// early, with a next_cursor, rather than pass it (but holds at least one
	// item). Zero means 1 MiB.
	MaxPageBytes int
	// CreatedStatus answers chat and message creations: 201 when the row
	// is readable once the answer leaves (the embedded default), 202 when a
	// worker stores it shortly after (the Kafka topology). Zero means 201.
	CreatedStatus int

	// API mounts application CRUD, every read, every update and search;
	// Dispatch mounts chat and message creation. A process may serve both.
	// /healthz and /openapi.json are always mounted.
	API, Dispatch bool

	// RateLimiter, when set, limits chat and message creates per
	// application token (both count against one budget); a request over the
	// budget is answered 429 before its body is read. If the limiter fails,
	// the create goes through (fail open) and a warning is logged.
	RateLimiter instachat.RateLimiter
	// SearchLimiter, when set, limits searches per application token, on
	// a budget apart from the creates' one; ApplicationLimiter limits
	// application creates per client address (see TrustForwardedFor). Both
	// answer 429 and fail open as RateLimiter does.
	SearchLimiter      instachat.RateLimiter
	ApplicationLimiter instachat.RateLimiter
	// TrustForwardedFor takes the client address of an application create
	// from the last X-Forwarded-For entry, which the proxy in front
	// appended, instead of the connection's peer. Set it only behind a
	// proxy that appends it: otherwise any client can name any address.
	TrustForwardedFor bool
	// AdminToken must come as "Authorization: Bearer <token>" to list every
	// application; otherwise, and always when it is empty, that answers
	// 401. /healthz, /openapi.json and each application's own routes stay
	// open.
	AdminToken string
	// RequireAdminForApplications makes creating an application need the
	// admin token too (401 otherwise), for operators who hand out tokens.
	RequireAdminForApplications bool

	// Streams, when set, serves the change feeds' streams (events routes)
	// on the API; ObserveStream, when set, is told each stream's transport
	// ("sse", "websocket") as it starts, and returns what to tell at its
	// end: why it ended (client, slow, shutdown, resume, deleted, unavailable, error).
	Streams       *feed.Streamer
	ObserveStream func(transport string) (ended func(reason string))

	// Checks are run by /healthz, by name.
	Checks map[string]func(context.Context) error
	Logger *slog.Logger     // nil means slog.Default()
	Now    func() time.Time // nil means time.Now
}

// handler is an endpoint. It gets the resource its path names, parsed once
// for all routes by serve, and reports failure by returning it, so every
// endpoint answers errors the same way.
type handler func(w http.ResponseWriter, r *http.Request, res resource) error

type route struct {
	pattern string
	h       handler
}

const (
	appPath     = "/api/v1/applications/{token}"
	chatPath    = appPath + "/chats/{chat}"
	messagePath = chatPath + "/messages/{message}"
)

func (s *Server) routes() []route {
	rs := []route{
		{"GET /healthz", s.health},
		{"GET /openapi.json", serveOpenAPI},
	}
	if s.API {
		rs = append(rs,
			route{"POST /api/v1/applications", s.applicationGuarded(s.createApplication)},
			route{"GET /api/v1/applications", s.adminOnly(s.listApplications)},
			route{"GET " + appPath, s.getApplication},
			route{"PATCH " + appPath, s.updateApplication},
			route{"PUT " + appPath, s.updateApplication},
			route{"DELETE " + appPath, s.deleteApplication},
			route{"GET " + appPath + "/changes", s.listApplicationChanges},
			route{"GET " + appPath + "/chats", s.listChats},
			route{"GET " + chatPath, s.getChat},
			route{"PATCH " + chatPath, s.updateChat},
			route{"PUT " + chatPath, s.updateChat},
			route{"DELETE " + chatPath, s.deleteChat},
			route{"GET " + chatPath + "/changes", s.listChatChanges},
			route{"GET " + chatPath + "/messages", s.listMessages},
			route{"GET " + chatPath + "/messages/search", s.searchLimited(s.searchMessages)},
			route{"GET " + messagePath, s.getMessage},
			route{"PATCH " + messagePath, s.updateMessage},
			route{"PUT " + messagePath, s.updateMessage},
			route{"DELETE " + messagePath, s.deleteMessage},
		)
	}
	if s.API && s.Streams != nil {
		rs = append(rs, route{"GET " + appPath + "/events", s.events}, route{"GET " + chatPath + "/events", s.events})
	}
	if s.Dispatch {
		rs = append(rs,
			route{"POST " + appPath + "/chats", s.rateLimited(s.createChat)},
			route{"POST " + chatPath + "/messages", s.rateLimited(s.createMessage)},
		)
	}
	return rs
}

// Routes lists the patterns Handler mounts, as "METHOD /path/{param}".
func (s *Server) Routes() []string {
	var ps []string
	for _, r := range s.routes() {
		ps = append(ps, r.pattern)
	}
	return ps
}

// Handler returns the API with its middleware. It works on a copy of s with
// the defaults filled in, so s itself is not modified.
func (s *Server) Handler() http.Handler {
	c := *s
	if c.Limits == (instachat.Limits{}) {
		c.Limits = instachat.DefaultLimits
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = max(6*int64(c.Limits.MaxBodyBytes), 12*int64(c.Limits.MaxNameChars)) + 64<<10
	}
	if c.MaxPageBytes == 0 {
		c.MaxPageBytes = defaultMaxPageBytes
	}
	if c.CreatedStatus == 0 {
		c.CreatedStatus = http.StatusCreated
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	mux := http.NewServeMux()
	for _, r := range c.routes() {
		mux.Handle(r.pattern, c.serve(r.h))
	}
	// Every other request lands here, which keeps 404 and 405 in the JSON
	// error shape while known routes are matched once, by the mux alone.
	elsewhere := c.otherRoles()
	mux.Handle("/", c.serve(func(w http.ResponseWriter, r *http.Request, _ resource) error {
		if _, pattern := elsewhere.Handler(r); pattern != "" {
			return misdirected(pattern)
		}
		return unrouted(mux, w, r)
	}))
	return c.logRequests(c.recoverPanics(CleanPaths(mux)))
}

// CleanPaths serves next only requests whose path is clean, and answers
// the others 400 in the API's error shape. A path is not clean when it has
// an empty, "." or ".." segment, as //api/v1/applications or
// /api/v1/./applications: ServeMux would answer it, for any method, with a
// 307 redirect to the clean path and an HTML body, redirecting creates a
// client may not repeat. 400 rather than 404 because the request is
// malformed rather than aimed at nothing: it names a route in a spelling
// the API does not take (as "007" is no chat number), and the message says
// which spelling is. Wrap every ServeMux that serves the API, the
// outermost included.
func CleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.EscapedPath()
		if clean := canonicalPath(p); clean != p {
			writeErrorTo(w, r, slog.Default(), instachat.Errorf(instachat.EBADREQUEST,
				"path is not clean: it has an empty, \".\" or \"..\" segment; the clean path is %s", clean))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// canonicalPath is the path ServeMux would redirect p to: rooted, without
// empty, "." or ".." segments, keeping a trailing slash.
func canonicalPath(p string) string {
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	clean := path.Clean(p)
	if strings.HasSuffix(p, "/") && clean != "/" {
		clean += "/"
	}
	return clean
}

func (s *Server) serve(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := parseURL(r)
		if err == nil {
			err = h(w, r, res)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// probed are the methods tried on an unrouted request to build Allow.
var probed = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

// unrouted tells 405 from 404: the path is known if another method reaches a
// pattern other than the catch-all. The route the path belongs to is the
// most specific of those patterns, and Allow lists the methods it serves:
// .../messages/search is the search route, served GET and HEAD, although
// PUT reaches .../messages/{message} there (and answers 400, since
// "search" is no message number).
func unrouted(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) error {
	paths := make(map[string]string, len(probed)) // method -> path of the pattern it reaches
	probe := r.Clone(r.Context())
	for _, m := range probed {
		probe.Method = m
		if _, p := mux.Handler(probe); p != "/" {
			_, paths[m], _ = strings.Cut(p, " ")
		}
	}
	// The patterns reached all match the same path, segment for segment,
	// so the most specific is the one with the fewest wildcards.
	route := ""
	for _, p := range paths {
		if route == "" || strings.Count(p, "{") < strings.Count(route, "{") {
			route = p
		}
	}
	var allow []string
	for _, m := range probed {
		if route != "" && paths[m] == route {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return instachat.Errorf(instachat.ENOTFOUND, "no route for %s", r.URL.Path)
	}
	methods := strings.Join(allow, ", ")
	w.Header().Set("Allow", methods)
	return instachat.Errorf(eMethodNotAllowed, "method %s is not allowed; allowed: %s", r.Method, methods)
}

// otherRoles matches the routes of the roles s does not play, so that
// one of them is answered with the role that serves it rather than with
// 404 or a 405 whose Allow lists this process's own methods.
func (s *Server) otherRoles() *http.ServeMux {
	mux := http.NewServeMux()
	// Streams: the api role's streams are routes of the deployment even
	// where this process has none to serve.
	for _, role := range []Server{{API: !s.API, Streams: &feed.Streamer{}}, {Dispatch: !s.Dispatch}} {
		for _, r := range role.routes() {
			if strings.Contains(r.pattern, " /api/") { // not /healthz nor /openapi.json, always mounted
				mux.Handle(r.pattern, http.NotFoundHandler())
			}
		}
	}
	return mux
}

// misdirected names the role that serves pattern, by its INSTACHAT_ROLES
// name: creates of chats and messages are the dispatcher's, the rest the
// api's.
func misdirected(pattern string) error {
	role := "api"
	for _, r := range (&Server{Dispatch: true}).routes() {
		if r.pattern == pattern {
			role = "dispatcher"
		}
	}
	return instachat.Errorf(eMisdirected, "%s is served by processes with INSTACHAT_ROLES=%s, which this one does not play; "+
		"send it to one of those (in the compose file, the proxy routes it)", pattern, role)
}

// recoverPanics turns a panicking handler into a logged JSON 500 instead of
// a dropped connection.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // net/http's own way to abort quietly
				panic(v)
			}
			s.writeError(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests logs each request at Debug. It names the route pattern, not
// the path, and at most the start of the token: tokens are the only
// credential an application has.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Logger.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := httpstatus.NewRecorder(w)
		next.ServeHTTP(sw, r)
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", r.Pattern), // set by the mux on this same request
			slog.Int("status", sw.Status),
			slog.Duration("duration", time.Since(start)),
		}
		if t := r.PathValue("token"); t != "" {
			attrs = append(attrs, slog.String("token", instachat.RedactToken(t)))
		}
		s.Logger.LogAttrs(r.Context(), slog.LevelDebug, "request", attrs...)
	})
}

//go:embed openapi.json
var openapi []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ resource) error {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapi) // a failed write means the client left
	return nil
}

// health runs every check concurrently so one slow dependency does not
// hide behind another, and answers 503 if any fails. It says only "ok" or
// "unavailable" of each: /healthz is open, and a check's error names
// addresses and internals, which go to the log.
func (s *Server) health(w http.ResponseWriter, r *http.Request, _ resource) error {
	names := slices.Sorted(maps.Keys(s.Checks))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { errs[i] = s.Checks[name](r.Context()) })
	}
	wg.Wait()
	status, summary, checks := http.StatusOK, "ok", make(map[string]string, len(names))
	for i, name := range names {
		checks[name] = "ok"
		if errs[i] != nil {
			status, summary, checks[name] = http.StatusServiceUnavailable, "unavailable", "unavailable"
			s.Logger.Warn("health check failed", "check", name, "err", errs[i])
		}
	}
	writeJSON(w, status, map[string]any{"status": summary, "checks": checks})
	return nil
}
