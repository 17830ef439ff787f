// Package console is the web console shipped in the binary: plain HTML, CSS
// and JavaScript modules, embedded at build time and served by every process
// that plays the api role. It is a client of the public API under /api/v1 and
// nothing else, so what it shows is what any client can do.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/instachat/instachat"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy allows the console's own files and API and nothing
// else: no inline script or style, no other origin to load from, connect to
// or frame the page, so neither a message body nor a tampered file can pull
// in code or send a token elsewhere.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// Prefix is where the console's files other than the page itself live, so
// they can never shadow an API route.
const Prefix = "/console/"

// contentTypes are set explicitly rather than from the host's MIME table,
// which differs between machines; a module script must be served as
// JavaScript or the browser refuses it.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the page at "/" and its files under Prefix. Mount it as
// "GET /{$}" and "GET "+Prefix beside the API.
func Handler() http.Handler {
	files := map[string]*file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // not served: only known kinds of files are
		}
		sum := sha256.Sum256(body)
		files[strings.TrimPrefix(p, "static/")] = &file{body, ct, `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // the files are compiled in; failing to read them is a broken build
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			name = strings.TrimPrefix(r.URL.Path, Prefix)
		}
		f, ok := files[name]
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if !ok || name == "index.html" && r.URL.Path != "/" {
			// The API's error shape, as every other answer of the server.
			h.Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{
				"code": instachat.ENOTFOUND, "message": "no console file " + r.URL.Path,
			}})
			return
		}
		// The files change only with the binary: a browser keeps them and
		// asks each time whether they are current, which costs a 304 and
		// never serves an old console beside a new API.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("Content-Type", f.contentType)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}
