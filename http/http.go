package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/instachat/instachat"
	"github.com/instachat/instachat/internal/jsonenc"
)

// Codes the API answers that the domain never produces: a known path asked
// with a method it does not serve, and what net/http refuses before any
// handler runs (see Listener).
const (
	eMethodNotAllowed = "method_not_allowed"
	eHeaderTooLarge   = "header_too_large"
	eNotImplemented   = "not_implemented"
	eHTTPVersion      = "http_version_not_supported"
	// eMisdirected is a route of a role the process does not play.
	eMisdirected = "misdirected"
)

// statusOf is the one table from error code to HTTP status. A code missing
// here is answered as internal.
var statusOf = map[string]int{
	instachat.EBADREQUEST:   http.StatusBadRequest,
	instachat.EUNAUTHORIZED: http.StatusUnauthorized,
	instachat.ENOTFOUND:     http.StatusNotFound,
	eMethodNotAllowed:       http.StatusMethodNotAllowed,
	eMisdirected:            http.StatusMisdirectedRequest,
	instachat.ECONFLICT:     http.StatusConflict,
	instachat.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	instachat.EUNSUPPORTED:  http.StatusUnsupportedMediaType,
	instachat.EINVALID:      http.StatusUnprocessableEntity,
	instachat.ERATELIMITED:  http.StatusTooManyRequests,
	instachat.EUNAVAILABLE:  http.StatusServiceUnavailable,
	eHeaderTooLarge:         http.StatusRequestHeaderFieldsTooLarge,
	eNotImplemented:         http.StatusNotImplemented,
	eHTTPVersion:            http.StatusHTTPVersionNotSupported,
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// newEncoder returns the JSON encoder of every answer. An answer is not
// HTML, so '<', '>' and '&' are written as themselves: escaped as \u003c…
// they would take six times the bytes (a body of '<' would answer six times
// its size).
func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}

// writeJSON answers v with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// Encoding the API's types cannot fail; a write error means the client
	// left, and there is no one left to tell.
	newEncoder(w).Encode(v)
}

// writeCreated answers a new resource, located by its key below the
// collection it was posted to. A retry answered from its idempotency
// receipt says so in Idempotent-Replayed, as well-known APIs do.
func writeCreated(w http.ResponseWriter, r *http.Request, status int, replayed bool, key string, v any) {
	w.Header().Set("Location", r.URL.Path+"/"+key)
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, status, v)
}

// writeCreatedNumber is writeCreated for a chat or message, v, numbered
// number: the hot path, so its answer is appended by hand into a pooled
// buffer (see jsonenc.AppendMessage) and its two header fields share one
// allocation. The bytes are those writeCreated would write.
func writeCreatedNumber(w http.ResponseWriter, r *http.Request, status int, replayed bool, number int64, v any) {
	buf := getBuffer()
	defer putBuffer(buf)
	var ok bool
	switch v := v.(type) {
	case *instachat.Message:
		buf.b, ok = jsonenc.AppendMessage(buf.b, v)
	case *instachat.Chat:
		buf.b, ok = jsonenc.AppendChat(buf.b, v)
	}
	var n [20]byte
	location := r.URL.Path + "/" + string(strconv.AppendInt(n[:0], number, 10))
	if !ok {
		writeCreated(w, r, status, replayed, location[len(r.URL.Path)+1:], v)
		return
	}
	h := w.Header()
	values := []string{location, "application/json"}
	h["Location"], h["Content-Type"] = values[0:1:1], values[1:2:2]
	if replayed {
		h.Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(status)
	buf.b = append(buf.b, '\n')
	w.Write(buf.b) // as in writeJSON, a failed write means the client left
}

// idempotencyKey returns the request's Idempotency-Key, "" if it has none.
// The dispatcher validates its characters; sending it twice is ambiguous,
// and sending it empty would silently make the create unprotected.
func idempotencyKey(r *http.Request) (string, error) {
	keys := r.Header.Values("Idempotency-Key")
	switch {
	case len(keys) == 0:
		return "", nil
	case len(keys) > 1:
		return "", instachat.Errorf(instachat.EBADREQUEST, "send at most one Idempotency-Key header")
	case keys[0] == "":
		return "", instachat.Errorf(instachat.EBADREQUEST, "Idempotency-Key must not be empty")
	}
	return keys[0], nil
}

// writeError answers err by the status table. Internal errors are logged
// and answered only as "internal error", so no SQL, id or Go error text
// reaches the client.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	writeErrorTo(w, r, s.Logger, err)
}

// writeErrorTo is writeError for handlers mounted outside a Server (see
// RequireAdmin), logging to logger.
func writeErrorTo(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	code := instachat.ErrorCode(err)
	status, ok := statusOf[code]
	var body errorBody
	body.Error.Code, body.Error.Message = code, instachat.ErrorMessage(err)
	switch {
	case !ok:
		status = http.StatusInternalServerError
		body.Error.Code, body.Error.Message = instachat.EINTERNAL, "internal error"
		logger.ErrorContext(r.Context(), "internal error", "method", r.Method, "route", r.Pattern, "err", err)
	case status == http.StatusServiceUnavailable:
		// Dependencies are expected back soon; ask clients to retry rather
		// than give up, and leave a trace of why.
		w.Header().Set("Retry-After", "1")
		logger.WarnContext(r.Context(), "unavailable", "method", r.Method, "route", r.Pattern, "err", err)
	}
	writeJSON(w, status, body)
}

// now is the time of an edit.
func (s *Server) now() time.Time { return instachat.Timestamp(s.Now()) }

// decodeJSON reads the request body into v, a pointer to a struct. An empty
// body decodes as {}, so required fields are reported as missing (422).
//
// It refuses what encoding/json would accept but read as something other
// than the client meant: a body in a Content-Encoding it does not decode
// (415), invalid UTF-8 and lone UTF-16 surrogate escapes, which it would
// store as U+FFFD (422), and keys that are not a field's exact name or
// that come twice, which it would match ignoring case, the last one
// winning (400). A Content-Length over MaxRequestBytes is refused before
// a byte is read, so a client that sent Expect: 100-continue hears 413 at
// once rather than 100 Continue.
func (s *Server) decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	buf, err := s.readJSON(w, r)
	if err != nil {
		return err
	}
	defer putBuffer(buf)
	return decodeRaw(buf.b, v)
}

// readJSON reads the request body into a pooled buffer, which the caller
// puts back once done with it, refusing what decodeJSON says it refuses
// before decoding.
func (s *Server) readJSON(w http.ResponseWriter, r *http.Request) (*buffer, error) {
	// The header as every client sends it needs no parsing.
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
			return nil, instachat.Errorf(instachat.EUNSUPPORTED, "Content-Type must be application/json")
		}
	}
	if !identityEncoded(r.Header) {
		w.Header().Set("Accept-Encoding", "identity") // RFC 7694
		return nil, instachat.Errorf(instachat.EUNSUPPORTED, "Content-Encoding is not supported: send the request body unencoded")
	}
	if r.ContentLength > s.MaxRequestBytes {
		return nil, instachat.Errorf(instachat.ETOOLARGE, "request body must be at most %d bytes", s.MaxRequestBytes)
	}
	// A body of announced length is no longer than that, checked above:
	// net/http reads no further. One without (chunked) is bounded by
	// MaxBytesReader, which also has the server close the connection
	// rather than read the rest.
	body := r.Body
	if r.ContentLength < 0 {
		body = http.MaxBytesReader(w, r.Body, s.MaxRequestBytes)
	}
	buf := getBuffer()
	var err error
	buf.b, err = readAll(body, buf.b, s.MaxRequestBytes)
	if err != nil {
		putBuffer(buf)
		if maxErr := (*http.MaxBytesError)(nil); errors.As(err, &maxErr) {
			return nil, instachat.Errorf(instachat.ETOOLARGE, "request body must be at most %d bytes", maxErr.Limit)
		}
		return nil, instachat.Errorf(instachat.EBADREQUEST, "request body could not be read")
	}
	if !utf8.Valid(buf.b) {
		putBuffer(buf)
		return nil, instachat.Errorf(instachat.EINVALID, "request body must be valid UTF-8")
	}
	if at := loneSurrogate(buf.b); at >= 0 {
		err := instachat.Errorf(instachat.EINVALID,
			"request body must be valid Unicode: %s at byte %d is half of a UTF-16 surrogate pair", buf.b[at:at+6], at)
		putBuffer(buf)
		return nil, err
	}
	return buf, nil
}

// readAll appends what r holds to b, as io.ReadAll does, but refuses more
// than limit bytes with an *http.MaxBytesError.
func readAll(r io.Reader, b []byte, limit int64) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return b, &http.MaxBytesError{Limit: limit}
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

// decodeRaw decodes raw, a body readJSON read, into v, a pointer to a
// struct, as decodeJSON says.
func decodeRaw(raw []byte, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := checkKeys(raw, jsonFields(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if typeErr := (*json.UnmarshalTypeError)(nil); errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return instachat.Errorf(instachat.EINVALID, "request body must be a JSON object")
		}
		return instachat.Errorf(instachat.EINVALID, "%s must be a %s", typeErr.Field, typeErr.Type)
	}
	if err != nil {
		return instachat.Errorf(instachat.EBADREQUEST, "request body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return instachat.Errorf(instachat.EBADREQUEST, "request body must hold one JSON value")
	}
	return nil
}

// identityEncoded reports whether the body comes as sent: no
// Content-Encoding, or only "identity".
func identityEncoded(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		for enc := range strings.SplitSeq(v, ",") {
			if enc = strings.TrimSpace(enc); enc != "" && !strings.EqualFold(enc, "identity") {
				return false
			}
		}
	}
	return true
}

// loneSurrogate returns the offset in the JSON text raw of the first \u
// escape of a UTF-16 surrogate that is not half of a pair (a high one
// followed by a low one), or -1 if there is none. Backslashes appear only
// in escapes of strings, so skipping each escape whole is enough to read
// them all, whatever the strings hold.
func loneSurrogate(raw []byte) int {
	escaped := func(i int) (rune, bool) { // the \uXXXX at raw[i:], if any
		if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
			return 0, false
		}
		return readHex4(raw, i+2)
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		r, ok := escaped(i)
		switch {
		case !ok:
			i++ // a one-character escape (or a syntax error, for Decode)
		case 0xD800 <= r && r < 0xDC00: // high: a low one must follow
			if low, ok := escaped(i + 6); ok && 0xDC00 <= low && low < 0xE000 {
				i += 11
				continue
			}
			return i
		case 0xDC00 <= r && r < 0xE000: // low without a high one before
			return i
		default:
			i += 5
		}
	}
	return -1
}

// checkKeys answers 400 unless every key of the JSON object raw is one of
// fields, spelled exactly, at most once. What is not an object, or not
// valid JSON, it leaves to the decoder to report.
func checkKeys(raw []byte, fields []string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := tok.(string) // a key is always a string
		switch i := slices.IndexFunc(fields, func(f string) bool { return strings.EqualFold(f, key) }); {
		case i < 0:
			return instachat.Errorf(instachat.EBADREQUEST, "unknown field %q", key)
		case fields[i] != key:
			return instachat.Errorf(instachat.EBADREQUEST, "unknown field %q: field names are case-sensitive, did you mean %q?", key, fields[i])
		case seen[key]:
			return instachat.Errorf(instachat.EBADREQUEST, "field %q is given more than once", key)
		}
		seen[key] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil
		}
	}
	return nil
}

// jsonFields returns the JSON names of the fields of the struct v points to.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v).Elem()
	fields := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	return fields
}

// required returns the value of a required string field, or EINVALID when
// it was missing or null.
func required(v *string, field string) (string, error) {
	if v == nil {
		return "", instachat.Errorf(instachat.EINVALID, "%s is required", field)
	}
	return *v, nil
}

// resource is what a route's path names; fields its pattern lacks stay zero.
type resource struct {
	token         string
	chat, message int64
}

// parseURL reads the path parameters the route has; the mux matches no
// empty segment, so an empty one is one the route lacks. A token that cannot
// be one is an unknown application, answered without asking any backend.
// It also refuses a query string that does not parse, which r.URL.Query
// would otherwise silently drop.
func parseURL(r *http.Request) (resource, error) {
	res := resource{token: r.PathValue("token")}
	if res.token != "" && !instachat.ValidToken(res.token) {
		return res, instachat.ErrApplicationNotFound
	}
	if r.URL.RawQuery != "" {
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			return res, instachat.Errorf(instachat.EBADREQUEST, "query string is not valid")
		}
	}
	var err error
	if res.chat, err = pathNumber(r, "chat"); err != nil {
		return res, err
	}
	res.message, err = pathNumber(r, "message")
	return res, err
}

// pathNumber reads a chat or message number, 0 when the route has none.
func pathNumber(r *http.Request, name string) (int64, error) {
	s := r.PathValue(name)
	if s == "" {
		return 0, nil
	}
	n, ok := parseNumber(s)
	if !ok {
		return 0, instachat.Errorf(instachat.EBADREQUEST, "bad parameter: %s must be a positive integer", name)
	}
	return n, nil
}

// parseNumber accepts a positive int64 in decimal digits only: no sign, no
// leading zero, so each resource has one spelling.
func parseNumber(s string) (int64, bool) {
	if s == "" || s[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64) // fails only on overflow now
	return n, err == nil
}

// Page sizes.
const (
	defaultLimit = 20
	maxLimit     = 100
)

// parseLimit reads ?limit=, 1 to maxLimit, defaultLimit when absent.
func parseLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return defaultLimit, nil
	}
	n, ok := parseNumber(s)
	if !ok || n > maxLimit {
		return 0, instachat.Errorf(instachat.EBADREQUEST, "limit must be an integer from 1 to %d", maxLimit)
	}
	return int(n), nil
}

// parseList reads ?limit= and a number ?cursor= of a list.
func parseList(r *http.Request) (limit int, after int64, err error) {
	if limit, err = parseLimit(r); err != nil {
		return 0, 0, err
	}
	after, err = instachat.DecodeCursor(r.URL.Query().Get("cursor"))
	return limit, after, err
}

// page is the JSON shape of every list: NextCursor is null on the last page.
// writePage streams it rather than encoding this struct; clients (and
// tests) decode it.
type page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// defaultMaxPageBytes bounds the encoded items of a page (see
// Server.MaxPageBytes).
const defaultMaxPageBytes = 1 << 20

// writePage answers a page of items fetched with limit+1, so that an extra
// item tells that a next page exists (see writeItems).
func writePage[T any](w http.ResponseWriter, items []T, limit, maxBytes int, cursor func(n int, last T) string) {
	writeItems(w, items[:min(len(items), limit)], len(items) > limit, maxBytes, cursor)
}

// pageField is a field of a list page beside data and next_cursor.
type pageField struct {
	name  string
	value any
}

// writeItems answers a page of items, more telling that a next page
// follows them, with the extra fields after data and next_cursor. It
// streams the page item by item, so an answer costs the memory of its
// largest item, not of the page; and it ends the page early, before the
// item that would take the encoded items past maxBytes, so that a page of
// large bodies stays about maxBytes long. A page holds at least one item,
// however large. cursor encodes where the next page starts, given n, the
// items this page holds, and the last of them.
func writeItems[T any](w http.ResponseWriter, items []T, more bool, maxBytes int, cursor func(n int, last T) string, extra ...pageField) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	encode := func(v any) { // into buf, without Encode's newline
		enc.Encode(v)
		buf.Truncate(buf.Len() - 1)
	}
	// As in writeJSON, encoding cannot fail, and a failed write means the
	// client left: the rest is not worth encoding.
	if _, err := io.WriteString(w, `{"data":[`); err != nil {
		return
	}
	n, size := 0, 0
	for ; n < len(items); n++ {
		buf.Reset()
		if n > 0 {
			buf.WriteByte(',')
		}
		encode(items[n])
		if n > 0 && size+buf.Len() > maxBytes {
			more = true
			break
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		size += buf.Len()
	}
	buf.Reset()
	buf.WriteString(`],"next_cursor":`)
	if more && n > 0 {
		encode(cursor(n, items[n-1]))
	} else {
		buf.WriteString("null")
	}
	for _, f := range extra {
		buf.WriteString(",")
		encode(f.name)
		buf.WriteString(":")
		encode(f.value)
	}
	buf.WriteString("}\n")
	w.Write(buf.Bytes())
}
