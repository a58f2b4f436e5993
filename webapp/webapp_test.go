package webapp_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/carillon-chat/carillon/apptest"
	"github.com/carillon-chat/carillon/webapp"
)

func get(t *testing.T, h http.Handler, method, path string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func checkSecurityHeaders(t *testing.T, path string, h http.Header) {
	t.Helper()
	want := map[string]string{
		"Content-Security-Policy": webapp.ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", path, k, got, v)
		}
	}
}

func TestHandlerPagesAndAssets(t *testing.T) {
	h := webapp.Handler()
	shell, err := os.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/", "/login", "/rooms/3f2b6a8e-3c1d-4a51-9a0e-1f6f3b9e2c11"} {
		w := get(t, h, "GET", p)
		if w.Code != 200 || w.Body.String() != string(shell) {
			t.Errorf("GET %s: %d, shell %v", p, w.Code, w.Body.String() == string(shell))
		}
		if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("GET %s: Content-Type %q", p, ct)
		}
		if cc := w.Header().Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q", p, cc)
		}
		checkSecurityHeaders(t, p, w.Header())
	}

	types := map[string]string{
		"/assets/app.js":   "text/javascript; charset=utf-8",
		"/assets/api.js":   "text/javascript; charset=utf-8",
		"/assets/live.js":  "text/javascript; charset=utf-8",
		"/assets/dom.js":   "text/javascript; charset=utf-8",
		"/assets/app.css":  "text/css; charset=utf-8",
		"/assets/icon.svg": "image/svg+xml",
	}
	for p, ct := range types {
		w := get(t, h, "GET", p)
		if w.Code != 200 || w.Header().Get("Content-Type") != ct {
			t.Errorf("GET %s: %d %q, want 200 %q", p, w.Code, w.Header().Get("Content-Type"), ct)
		}
		checkSecurityHeaders(t, p, w.Header())
		etag := w.Header().Get("ETag")
		if etag == "" || w.Header().Get("Cache-Control") == "" {
			t.Errorf("GET %s: ETag %q, Cache-Control %q", p, etag, w.Header().Get("Cache-Control"))
		}
		if w := get(t, h, "GET", p, "If-None-Match", etag); w.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", p, w.Code)
		}
		if w := get(t, h, "HEAD", p); w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Type") != ct {
			t.Errorf("HEAD %s: %d, %d bytes", p, w.Code, w.Body.Len())
		}
	}

	for _, p := range []string{"/assets/", "/assets/nope.js", "/assets/../index.html", "/rooms/", "/rooms/a/b", "/other"} {
		w := get(t, h, "GET", p)
		if w.Code != 404 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %d %q, want a JSON 404", p, w.Code, w.Header().Get("Content-Type"))
		}
	}
	if w := get(t, h, "POST", "/"); w.Code != 405 {
		t.Errorf("POST /: %d, want 405", w.Code)
	}
}

// TestServerRoutes checks the web app through the real server: pages and
// assets with the page policy, API answers with the strict data policy,
// and unknown paths still answered in JSON.
func TestServerRoutes(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	for _, p := range []string{"/", "/login", "/rooms/3f2b6a8e-3c1d-4a51-9a0e-1f6f3b9e2c11", "/assets/app.js"} {
		r := in.Do(t, "GET", p, "", nil)
		if r.Status != 200 {
			t.Errorf("GET %s: %d", p, r.Status)
		}
		checkSecurityHeaders(t, p, r.Header)
	}
	if r := in.Do(t, "HEAD", "/", "", nil); r.Status != 200 {
		t.Errorf("HEAD /: %d", r.Status)
	}
	for _, p := range []string{"/api/v1/users/me", "/api/v1/nope", "/healthz", "/nope", "/rooms/a/b"} {
		r := in.Do(t, "GET", p, "", nil)
		if got := r.Header.Get("Content-Security-Policy"); got != "default-src 'none'; frame-ancestors 'none'" {
			t.Errorf("GET %s (%d): Content-Security-Policy %q", p, r.Status, got)
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: Content-Type %q", p, r.Header.Get("Content-Type"))
		}
	}
	if r := in.Do(t, "GET", "/nope", "", nil); r.Status != 404 || r.Code() != "NotFound" {
		t.Errorf("GET /nope: %d %s", r.Status, r.Body)
	}
}

// TestNoInlineCode keeps the static files compatible with the CSP and the
// text-only rule: no inline scripts, styles or handlers in the HTML, no
// style manipulation, and innerHTML in exactly one place (the server's
// sanitized message Html).
func TestNoInlineCode(t *testing.T) {
	inline := []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`(?i)<style`),
		regexp.MustCompile(`(?i)\sstyle\s*=`),
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
		regexp.MustCompile(`(?i)javascript:`),
	}
	innerHTML := 0
	err := fs.WalkDir(os.DirFS("static"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(filepath.Join("static", p))
		if err != nil {
			return err
		}
		src := string(data)
		switch filepath.Ext(p) {
		case ".html", ".svg":
			for _, re := range inline {
				if loc := re.FindStringIndex(src); loc != nil {
					t.Errorf("%s: inline code %q", p, src[loc[0]:min(loc[1]+20, len(src))])
				}
			}
		case ".js":
			for _, bad := range []string{".style.", ".style=", "setAttribute('style'", "insertAdjacentHTML", "outerHTML =", "document.write", "eval(", "new Function"} {
				if strings.Contains(src, bad) {
					t.Errorf("%s uses %q", p, bad)
				}
			}
			innerHTML += strings.Count(src, ".innerHTML")
			if n := strings.Count(src, ".innerHTML"); n > 0 && !strings.Contains(src, "el.innerHTML = m.Html;") {
				t.Errorf("%s: innerHTML used for something other than a message's Html", p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if innerHTML != 1 {
		t.Errorf("innerHTML used %d times, want exactly once (message Html)", innerHTML)
	}
}
