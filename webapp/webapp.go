// Package webapp is Carillon's browser user interface: static HTML, CSS
// and JavaScript (ES modules, no build step) embedded in the binary.
//
// The app shell (index.html) is served for every page route the client
// side router knows (/, /login, /rooms/{RoomId}); the script then talks to
// the management API under /api/v1 with the session cookie. Assets live
// under /assets/.
//
// Security: every response carries a strict Content-Security-Policy (no
// inline script or style, scripts only from this origin), nosniff, no
// referrer and no framing. The page inserts message bodies only from the
// server's sanitized Html; everything else goes in as text.
package webapp

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// ContentSecurityPolicy is the policy of every page and asset response.
// img-src allows http: and https: because Markdown messages may show
// remote images (SPEC §2); nothing else may come from elsewhere.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: http:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// contentTypes maps the extensions used under static/ to their types, so
// that the answer does not depend on the host's MIME database.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".ico":         "image/x-icon",
	".json":        "application/json",
	".webmanifest": "application/manifest+json",
	".txt":         "text/plain; charset=utf-8",
}

// file is one embedded file, ready to serve.
type file struct {
	data        []byte
	contentType string
	etag        string
}

type handler struct {
	shell  file
	assets map[string]file // by path below assets/, e.g. "app.js"
}

// Handler serves the app shell at /, /login and /rooms/{RoomId}, and the
// static assets under /assets/. Any other path answers 404.
func Handler() http.Handler {
	h := &handler{assets: map[string]file{}}
	load := func(name string) file {
		data, err := static.ReadFile(name)
		if err != nil {
			panic("webapp: " + err.Error())
		}
		sum := sha256.Sum256(data)
		ct := contentTypes[path.Ext(name)]
		if ct == "" {
			ct = "application/octet-stream"
		}
		return file{data: data, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
	}
	h.shell = load("static/index.html")
	err := fs.WalkDir(static, "static/assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		h.assets[strings.TrimPrefix(p, "static/assets/")] = load(p)
		return nil
	})
	if err != nil {
		panic("webapp: " + err.Error())
	}
	return h
}

// SecurityHeaders sets the headers every web app response carries.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not allowed here; use GET.")
		return
	}
	p := r.URL.Path
	switch {
	case p == "/" || p == "/login" || isRoomPath(p):
		// The shell must be revalidated on every load so that a new
		// release is picked up at once; the ETag keeps that cheap.
		h.serve(w, r, h.shell, "no-cache")
	case strings.HasPrefix(p, "/assets/"):
		f, ok := h.assets[strings.TrimPrefix(p, "/assets/")]
		if !ok {
			writeError(w, http.StatusNotFound, "NotFound", "No such asset: "+p+".")
			return
		}
		// Asset URLs carry no content hash (there is no build step), so
		// browsers revalidate them too; unchanged files answer 304.
		h.serve(w, r, f, "no-cache")
	default:
		writeError(w, http.StatusNotFound, "NotFound", "No such page: "+p+".")
	}
}

// isRoomPath reports whether p is /rooms/{RoomId} with one non-empty segment.
func isRoomPath(p string) bool {
	id, ok := strings.CutPrefix(p, "/rooms/")
	return ok && id != "" && !strings.Contains(id, "/")
}

func (h *handler) serve(w http.ResponseWriter, r *http.Request, f file, cacheControl string) {
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("Cache-Control", cacheControl)
	hd.Set("ETag", f.etag)
	// ServeContent answers HEAD, If-None-Match (304) and ranges.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
}

// writeError answers in the API's error shape, {"Code","Message"}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"Code": code, "Message": msg})
}
