package http

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/instachat/instachat"
)

// Listener wraps ln, a plain TCP listener of an http.Server that serves the
// API, so that the few answers net/http writes on the connection itself,
// before and without any handler, are in the API's JSON error shape too:
// 431 for a request line and header over maxHeaderBytes (pass the
// server's MaxHeaderBytes), 400 for a request it cannot parse, 501 for a
// Transfer-Encoding it does not know, 505 for an HTTP version it does not
// speak. net/http writes each as text/plain in one write straight to the
// connection, which is where they are replaced; everything else passes
// untouched. (Under TLS those bytes are encrypted below this wrapper, so
// there it changes nothing.)
func Listener(ln net.Listener, maxHeaderBytes int) net.Listener {
	return &listener{Listener: ln, maxHeaderBytes: maxHeaderBytes}
}

type listener struct {
	net.Listener
	maxHeaderBytes int
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: c, maxHeaderBytes: l.maxHeaderBytes}, nil
}

type conn struct {
	net.Conn
	maxHeaderBytes int
}

func (c *conn) Write(p []byte) (int, error) {
	answer, ok := jsonRefusal(p, c.maxHeaderBytes)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(answer); err != nil {
		return 0, err
	}
	return len(p), nil
}

// CloseWrite lets net/http half-close the connection after a 431, as it
// does on a bare TCP connection, so the client reads the answer before
// the reset.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// plainRefusal is what follows the status line of each answer net/http
// writes itself. No other write can look like one: net/http writes a
// handler's header fields sorted (Connection before Content-Type) and
// always with a Date, and a write that starts inside a body cannot hold
// these raw CRLFs, since the API writes JSON, where CR and LF are always
// escaped. Each refusal is also one short write of its own, whose text has
// no line break, which jsonRefusal requires too.
const plainRefusal = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// jsonRefusal returns the JSON answer replacing p, when p is one of
// net/http's own plain-text refusals of a request.
func jsonRefusal(p []byte, maxHeaderBytes int) ([]byte, bool) {
	const proto = "HTTP/1.1 "
	if len(p) < len(proto)+3 || len(p) > 512 || !bytes.HasPrefix(p, []byte(proto)) {
		return nil, false
	}
	end := bytes.IndexByte(p[:min(len(p), 256)], '\r')
	if end < 0 || !bytes.HasPrefix(p[end:], []byte(plainRefusal)) {
		return nil, false
	}
	status, err := strconv.Atoi(string(p[len(proto) : len(proto)+3]))
	if err != nil {
		return nil, false
	}
	text := string(p[end+len(plainRefusal):])
	if strings.ContainsAny(text, "\r\n") {
		return nil, false
	}
	// text is the status again, then what went wrong, in words net/http
	// writes for clients ("400 Bad Request: missing required Host header").
	_, detail, _ := strings.Cut(text, ": ")
	var e *instachat.Error
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		e = instachat.Errorf(eHeaderTooLarge, "the request line and header fields must be at most %d bytes in all", maxHeaderBytes)
	case http.StatusBadRequest:
		e = instachat.Errorf(instachat.EBADREQUEST, "the request could not be parsed as HTTP/1.1")
		if detail != "" {
			e.Message += ": " + detail
		}
	case http.StatusNotImplemented:
		e = instachat.Errorf(eNotImplemented, "Transfer-Encoding is not supported; send chunked or a Content-Length")
	case http.StatusHTTPVersionNotSupported:
		e = instachat.Errorf(eHTTPVersion, "HTTP version not supported; speak HTTP/1.1")
	default:
		return nil, false
	}
	var body errorBody
	body.Error.Code, body.Error.Message = e.Code, e.Message
	var b bytes.Buffer
	newEncoder(&b).Encode(body)
	return fmt.Appendf(nil, "%s%d %s\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		proto, status, http.StatusText(status), b.Len(), b.Bytes()), true
}
