package server_test

// Tests of the Chime-compatible incoming-webhook endpoint (SPEC §1) over
// real HTTP against a real server (apptest): every row of the status table
// and its precedence, lenient clients, rate limiting, idempotency keys and
// the shape of every answer.
//
// Helpers here are prefixed "wh" so that they do not collide with the
// management API tests' helpers in the same package.
//
// Rate budget: a webhook starts with `burst` tokens and regains one per
// 1/rate seconds. Tests that must prove "no budget spent" use a server with
// a very slow rate (whSlowRate), where one token is all a webhook gets for
// the length of the test: if rejected requests had spent it, the first
// valid post would be 429.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carillon-chat/carillon/apptest"
)

// whSlowRate is a webhook rate at which a spent token does not come back
// within any test (one per 1000 s).
const whSlowRate = 0.001

var whUUIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// whHook is a webhook with its room, split into the parts tests mutate.
type whHook struct {
	Room, ID, Token, Name string
}

// Path is the webhook's path and query, relative to the instance.
func (h whHook) Path() string { return whPath(h.ID, h.Token) }

func whPath(id, token string) string {
	return "/incomingwebhooks/" + id + "?token=" + url.QueryEscape(token)
}

// whNewHook creates a room (as the instance admin) with one webhook in it.
// Each test gets its own webhook, hence its own rate budget.
func whNewHook(t testing.TB, in *apptest.Instance, name string) whHook {
	t.Helper()
	room := in.CreateRoom(t, in.AdminToken, "Room of "+name)
	return whAddHook(t, in, room, name)
}

// whAddHook creates a webhook in an existing room.
func whAddHook(t testing.TB, in *apptest.Instance, room, name string) whHook {
	t.Helper()
	w := in.CreateWebhook(t, in.AdminToken, room, name)
	return whHook{Room: room, ID: w.ID, Token: whTokenOf(t, w.URL), Name: name}
}

func whTokenOf(t testing.TB, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("webhook URL %q: %v", rawURL, err)
	}
	return u.Query().Get("token")
}

// whRegenerate gives the webhook a new token through the API.
func whRegenerate(t testing.TB, in *apptest.Instance, h whHook) whHook {
	t.Helper()
	var out struct {
		Webhook struct{ WebhookId, Url string }
	}
	apptest.Must(t, in.Do(t, "POST", "/api/v1/rooms/"+h.Room+"/webhooks/"+h.ID+"/regenerate", in.AdminToken, nil), 200).Decode(t, &out)
	if out.Webhook.WebhookId != h.ID {
		t.Fatalf("regenerate changed the webhook id: %q → %q", h.ID, out.Webhook.WebhookId)
	}
	h.Token = whTokenOf(t, out.Webhook.Url)
	return h
}

// whEnvelope checks what every answer of the endpoint has in common: a
// JSON body with Content-Type application/json, {"Code","Message"} on
// errors, and never a CORS header. It returns the decoded body.
func whEnvelope(t testing.TB, method string, r *apptest.Response) map[string]any {
	t.Helper()
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "access-control-allow-") {
			t.Errorf("status %d carries CORS header %s: %q", r.Status, name, r.Header.Get(name))
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		t.Errorf("status %d: Content-Type %q, want application/json", r.Status, r.Header.Get("Content-Type"))
	}
	if method == http.MethodHead {
		return nil
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("status %d: body is not a JSON object: %v: %q", r.Status, err, r.Body)
	}
	if r.Status != http.StatusOK {
		code, _ := body["Code"].(string)
		msg, _ := body["Message"].(string)
		if code == "" || strings.TrimSpace(msg) == "" {
			t.Errorf("status %d: error body needs a Code and a Message: %s", r.Status, r.Body)
		}
	}
	return body
}

// whSend sends one request to the endpoint and checks its envelope.
func whSend(t testing.TB, in *apptest.Instance, method, path string, body any, headers ...string) *apptest.Response {
	t.Helper()
	r := in.Do(t, method, path, "", body, headers...)
	whEnvelope(t, method, r)
	return r
}

// whPost posts body to the webhook path.
func whPost(t testing.TB, in *apptest.Instance, path string, body any, headers ...string) *apptest.Response {
	t.Helper()
	return whSend(t, in, http.MethodPost, path, body, headers...)
}

// whContent is the JSON body {"Content": content}.
func whContent(content string) []byte {
	data, err := json.Marshal(map[string]string{"Content": content})
	if err != nil {
		panic(err)
	}
	return data
}

// whWantError checks an error answer's status, Code and (for 429)
// Retry-After.
func whWantError(t testing.TB, r *apptest.Response, status int, code string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d (%s): %s", r.Status, status, code, r.Body)
	}
	if got := r.Code(); got != code {
		t.Fatalf("status %d: Code %q, want %q: %s", r.Status, got, code, r.Body)
	}
	if status == http.StatusTooManyRequests {
		whRetryAfter(t, r)
	}
	if status == http.StatusMethodNotAllowed {
		if got := r.Header.Values("Allow"); len(got) != 1 || got[0] != "POST" {
			t.Fatalf("405 with Allow %q, want exactly \"POST\"", got)
		}
	}
}

// whRetryAfter returns the Retry-After of a 429: a whole number of seconds,
// at least 1.
func whRetryAfter(t testing.TB, r *apptest.Response) int {
	t.Helper()
	v := r.Header.Get("Retry-After")
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || strconv.Itoa(n) != v {
		t.Fatalf("Retry-After %q is not a whole number of seconds ≥ 1", v)
	}
	return n
}

// whWantOK checks a 200 answer: exactly MessageId and RoomId, lowercase
// UUIDs, RoomId the webhook's room. It returns the MessageId.
func whWantOK(t testing.TB, r *apptest.Response, room string) string {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.Status, r.Body)
	}
	var body map[string]any
	r.Decode(t, &body)
	if len(body) != 2 {
		t.Fatalf("success body %s: want exactly MessageId and RoomId", r.Body)
	}
	id, _ := body["MessageId"].(string)
	roomID, _ := body["RoomId"].(string)
	if !whUUIDRE.MatchString(id) || !whUUIDRE.MatchString(roomID) {
		t.Fatalf("success body %s: ids must be lowercase UUIDv4", r.Body)
	}
	if roomID != room {
		t.Fatalf("RoomId %s, want %s", roomID, room)
	}
	return id
}

// whPostOK posts content and expects 200.
func whPostOK(t testing.TB, in *apptest.Instance, h whHook, content string, headers ...string) string {
	t.Helper()
	return whWantOK(t, whPost(t, in, h.Path(), whContent(content), headers...), h.Room)
}

// whMessages lists the room's messages (as the instance admin).
func whMessages(t testing.TB, in *apptest.Instance, room string) []map[string]any {
	t.Helper()
	return in.Messages(t, in.AdminToken, room)
}

// whStored returns the only stored message of a room.
func whStored(t testing.TB, in *apptest.Instance, room string) map[string]any {
	t.Helper()
	msgs := whMessages(t, in, room)
	if len(msgs) != 1 {
		t.Fatalf("room has %d messages, want 1: %v", len(msgs), msgs)
	}
	return msgs[0]
}

// whConcurrent sends n requests at once (released together) and returns
// their answers. Transport errors fail the test.
func whConcurrent(t testing.TB, n int, send func(i int) (*apptest.Response, error)) []*apptest.Response {
	t.Helper()
	out := make([]*apptest.Response, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i], errs[i] = send(i)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

// whRaw writes raw bytes on a new connection and reads one response. It does
// not wait for more of the request to be sent: the caller decides how much
// of a body goes out, so that a server that waited for the rest would time
// out here instead of answering.
func whRaw(t testing.TB, in *apptest.Instance, raw string) *apptest.Response {
	t.Helper()
	u, _ := url.Parse(in.URL)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Far below the server's 60 s read timeout: an answer that only came
	// after the server gave up reading would fail here.
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer before the whole body was sent: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
	whEnvelope(t, http.MethodPost, r)
	return r
}

// whChunked posts body with chunked transfer encoding (no Content-Length),
// so that only reading the body can tell its size.
func whChunked(t testing.TB, in *apptest.Instance, path string, body []byte) *apptest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, in.URL+path, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	if req.ContentLength != 0 {
		t.Fatal("request would not be chunked")
	}
	resp, err := in.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	whEnvelope(t, http.MethodPost, r)
	return r
}

// whOtherID is a well-formed id of no webhook.
const whOtherID = "0b7e1d3c-5a2f-4c1e-9d8b-7a6f5e4d3c2b"

func TestWebhookURLShape(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	room := in.CreateRoom(t, in.AdminToken, "Shape")
	w := in.CreateWebhook(t, in.AdminToken, room, "CI")
	// Validators written for Chime URLs must accept ours.
	chime := regexp.MustCompile(`/incomingwebhooks/[A-Za-z0-9\-]+\?token=[A-Za-z0-9\-]+$`)
	if !chime.MatchString(w.URL) {
		t.Fatalf("URL %q does not have the shape of a Chime webhook URL", w.URL)
	}
	if !strings.HasPrefix(w.URL, in.URL+"/incomingwebhooks/"+w.ID+"?token=") {
		t.Fatalf("URL %q, want %s/incomingwebhooks/%s?token=…", w.URL, in.URL, w.ID)
	}
	if tok := whTokenOf(t, w.URL); !regexp.MustCompile(`^[A-Za-z0-9]{72}$`).MatchString(tok) {
		t.Fatalf("token %q is not 72 characters of [A-Za-z0-9]", tok)
	}
	if !whUUIDRE.MatchString(w.ID) {
		t.Fatalf("webhook id %q is not a lowercase UUIDv4", w.ID)
	}
}

// TestWebhookSuccess checks the 200 answer and what is stored.
func TestWebhookSuccess(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})

	t.Run("stored as sent and rendered escaped", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "Deploy Bot")
		const content = `<script>alert(1)</script> & <img src=x onerror=alert(2)>`
		id := whPostOK(t, in, h, content)
		m := whStored(t, in, h.Room)
		if m["MessageId"] != id || m["RoomId"] != h.Room {
			t.Fatalf("stored message %v, want MessageId %s", m, id)
		}
		if m["Content"] != content {
			t.Fatalf("Content %q, want %q as sent", m["Content"], content)
		}
		if m["DisplayName"] != "Deploy Bot (Webhook)" {
			t.Fatalf("DisplayName %q, want %q", m["DisplayName"], "Deploy Bot (Webhook)")
		}
		sender, _ := m["Sender"].(map[string]any)
		if sender["SenderType"] != "Webhook" || sender["SenderId"] != h.ID || sender["Name"] != "Deploy Bot" {
			t.Fatalf("Sender %v, want the webhook %s of type Webhook named Deploy Bot", sender, h.ID)
		}
		if m["Format"] != "Plain" {
			t.Fatalf("Format %q, want Plain", m["Format"])
		}
		html, _ := m["Html"].(string)
		for _, bad := range []string{"<script", "<img", "</script"} {
			if strings.Contains(strings.ToLower(html), bad) {
				t.Fatalf("Html %q contains %q unescaped", html, bad)
			}
		}
		if !strings.Contains(html, "&lt;script&gt;") {
			t.Fatalf("Html %q does not show the script tag as text", html)
		}
	})

	for _, tc := range []struct{ content, format, htmlHas string }{
		{"/md **bold** <b>x</b>", "Markdown", "&lt;b&gt;"},
		{"/code if a < b {\n}", "Code", "<pre><code>"},
		{"line one\nline two", "Plain", "<br"},
	} {
		t.Run("format "+tc.format, func(t *testing.T) {
			t.Parallel()
			h := whNewHook(t, in, "Fmt")
			whPostOK(t, in, h, tc.content)
			m := whStored(t, in, h.Room)
			if m["Format"] != tc.format || m["Content"] != tc.content {
				t.Fatalf("stored %v, want Format %s and Content %q", m, tc.format, tc.content)
			}
			html, _ := m["Html"].(string)
			if !strings.Contains(html, tc.htmlHas) || strings.Contains(html, "<b>") {
				t.Fatalf("Html %q: want %q in it and no raw <b>", html, tc.htmlHas)
			}
		})
	}
}

// TestWebhookMethodNotAllowed: 405 comes first, whatever the URL.
func TestWebhookMethodNotAllowed(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: whSlowRate})
	h := whNewHook(t, in, "Methods")
	paths := map[string]string{
		"valid URL":       h.Path(),
		"unknown id":      whPath(whOtherID, h.Token),
		"malformed token": whPath(h.ID, "short"),
		"no id":           "/incomingwebhooks/",
		"no slash":        "/incomingwebhooks",
		"extra segment":   "/incomingwebhooks/" + h.ID + "/x?token=" + h.Token,
	}
	for _, method := range []string{"GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "FOO"} {
		for name, path := range paths {
			r := whSend(t, in, method, path, whContent("hi"))
			if r.Status != http.StatusMethodNotAllowed {
				t.Fatalf("%s %s (%s): status %d, want 405: %s", method, path, name, r.Status, r.Body)
			}
			if got := r.Header.Values("Allow"); len(got) != 1 || got[0] != "POST" {
				t.Fatalf("%s %s: Allow %q, want exactly POST", method, name, got)
			}
			if method != "HEAD" {
				whWantError(t, r, 405, "MethodNotAllowed")
			}
		}
	}
	// A CORS preflight is refused like any other OPTIONS.
	r := whSend(t, in, "OPTIONS", h.Path(), nil,
		"Origin", "https://evil.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type")
	whWantError(t, r, 405, "MethodNotAllowed")

	// None of that spent the webhook's only token.
	whPostOK(t, in, h, "after the 405s")
	whWantError(t, whPost(t, in, h.Path(), whContent("again")), 429, "Throttled")
}

// TestWebhookForbidden: URLs that never worked → 403, before any look at
// the body.
func TestWebhookForbidden(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: whSlowRate})
	h := whNewHook(t, in, "Target")
	other := whNewHook(t, in, "Other")
	otherOld := other.Token
	other = whRegenerate(t, in, other)

	id, tok := h.ID, h.Token
	swap := func(s string, i int, c byte) string { b := []byte(s); b[i] = c; return string(b) }
	cases := map[string]string{
		"uppercase id":                whPath(strings.ToUpper(id), tok),
		"one uppercase hex digit":     whPath(swap(id, strings.IndexAny(id, "abcdef"), 'A'), tok),
		"id not v4 (version 1)":       whPath(swap(id, 14, '1'), tok),
		"id with wrong variant":       whPath(swap(id, 19, 'c'), tok),
		"id one char short":           whPath(id[:35], tok),
		"id one char long":            whPath(id+"a", tok),
		"id without dashes":           whPath(strings.ReplaceAll(id, "-", ""), tok),
		"id in braces":                whPath("{"+id+"}", tok),
		"unknown id":                  whPath(whOtherID, tok),
		"token 71 chars":              whPath(id, tok[:71]),
		"token 73 chars":              whPath(id, tok+"a"),
		"token with a dash":           whPath(id, swap(tok, 10, '-')),
		"token with an underscore":    whPath(id, swap(tok, 10, '_')),
		"token with a space":          whPath(id, swap(tok, 10, ' ')),
		"token with a non-ASCII rune": whPath(id, tok[:70]+"é"),
		"token of another webhook":    whPath(id, other.Token),
		"old token of another":        whPath(id, otherOld),
		"another's id, this token":    whPath(other.ID, tok),
		"well-formed unknown token":   whPath(id, strings.Repeat("A", 72)),
		"no token":                    "/incomingwebhooks/" + id,
		"empty token":                 "/incomingwebhooks/" + id + "?token=",
		"Token (capital T)":           "/incomingwebhooks/" + id + "?Token=" + tok,
		"no id":                       "/incomingwebhooks/?token=" + tok,
		"no id, no slash":             "/incomingwebhooks?token=" + tok,
		"extra segment":               "/incomingwebhooks/" + id + "/x?token=" + tok,
		"trailing slash":              "/incomingwebhooks/" + id + "/?token=" + tok,
		"id in a deeper path":         "/incomingwebhooks/x/" + id + "?token=" + tok,
		"double slash":                "/incomingwebhooks//" + id + "?token=" + tok,
		"dot-dot segment":             "/incomingwebhooks/x/../" + id + "?token=" + tok,
		"dot segment":                 "/incomingwebhooks/./" + id + "?token=" + tok,
	}
	bodies := map[string]any{
		"valid body":         whContent("hello"),
		"bad JSON":           "{nope",
		"blank Content":      whContent(" "),
		"oversize Content":   whContent(strings.Repeat("x", 5000)),
		"oversize body":      `{"Content":"x","Pad":"` + strings.Repeat("p", 64<<10) + `"}`,
		"no body":            nil,
		"@All in small room": whContent("@All hi"),
	}
	t.Run("cases", func(t *testing.T) {
		for name, path := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				for bname, body := range bodies {
					r := whPost(t, in, path, body)
					if r.Status != http.StatusForbidden || r.Code() != "Forbidden" {
						t.Fatalf("%s with %s: status %d %s, want 403 Forbidden: %s", path, bname, r.Status, r.Code(), r.Body)
					}
				}
				// A malformed Idempotency-Key does not change the answer either.
				whWantError(t, whPost(t, in, path, whContent("x"), "Idempotency-Key", strings.Repeat("k", 300)), 403, "Forbidden")
			})
		}
	})
	// Unclean paths are not redirected (a redirect would be a plain
	// answer, and its Location would carry the token).
	for _, p := range []string{"/incomingwebhooks//" + id, "/incomingwebhooks/x/../" + id, "/incomingwebhooks/./" + id} {
		body := string(whContent("x"))
		r := whRaw(t, in, fmt.Sprintf("POST %s?token=%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", p, tok, len(body), body))
		whWantError(t, r, 403, "Forbidden")
		if loc := r.Header.Get("Location"); loc != "" {
			t.Fatalf("%s answered with Location %q", p, loc)
		}
	}
	// All those refused requests later, the webhook's only token is still
	// there: nothing was spent on them.
	whPostOK(t, in, h, "still here")
	whWantError(t, whPost(t, in, h.Path(), whContent("again")), 429, "Throttled")
}

// TestWebhookGone: URLs that worked once → 404, forever, before any look
// at the body; URLs that never did stay 403.
func TestWebhookGone(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: 1000, WebhookBurst: 1000})
	// Answers that must not depend on the body: 404 comes before 413/400.
	bodies := map[string]any{
		"valid body":       whContent("hello"),
		"bad JSON":         "[1,2",
		"blank":            whContent(""),
		"oversize Content": whContent(strings.Repeat("é", 3000)),
		"oversize body":    `{"Content":"x","Pad":"` + strings.Repeat("p", 40<<10) + `"}`,
	}
	want := func(t *testing.T, path string, status int, code string) {
		t.Helper()
		for bname, body := range bodies {
			r := whPost(t, in, path, body)
			if r.Status != status || r.Code() != code {
				t.Fatalf("%s with %s: status %d %s, want %d %s: %s", path, bname, r.Status, r.Code(), status, code, r.Body)
			}
		}
		whWantError(t, whPost(t, in, path, whContent("x"), "Idempotency-Key", "bad\tkey"), status, code)
		whWantError(t, whSend(t, in, "GET", path, nil), 405, "MethodNotAllowed")
	}

	t.Run("regenerated", func(t *testing.T) {
		t.Parallel()
		h1 := whNewHook(t, in, "Regen")
		whPostOK(t, in, h1, "first URL works")
		h2 := whRegenerate(t, in, h1)
		h3 := whRegenerate(t, in, h2)
		if h1.Token == h2.Token || h2.Token == h3.Token || h1.Token == h3.Token {
			t.Fatal("regenerate did not change the token")
		}
		want(t, h1.Path(), 404, "NotFound")
		want(t, h2.Path(), 404, "NotFound")
		whPostOK(t, in, h3, "new URL works")
		// A token that never belonged to it is still 403.
		whWantError(t, whPost(t, in, whPath(h1.ID, strings.Repeat("Z", 72)), whContent("x")), 403, "Forbidden")
		// Old tokens of this webhook are 404 only for this webhook.
		other := whNewHook(t, in, "Other")
		whWantError(t, whPost(t, in, whPath(other.ID, h1.Token), whContent("x")), 403, "Forbidden")
		if n := len(whMessages(t, in, h1.Room)); n != 2 {
			t.Fatalf("room has %d messages, want 2", n)
		}
	})

	t.Run("webhook deleted", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "Deleted")
		old := h.Token
		h = whRegenerate(t, in, h)
		whPostOK(t, in, h, "before delete")
		apptest.Must(t, in.Do(t, "DELETE", "/api/v1/rooms/"+h.Room+"/webhooks/"+h.ID, in.AdminToken, nil), 204)
		want(t, h.Path(), 404, "NotFound")
		want(t, whPath(h.ID, old), 404, "NotFound")
		// A token it never had: 403, even though the webhook is gone.
		want(t, whPath(h.ID, strings.Repeat("a1", 36)), 403, "Forbidden")
		// Another webhook's live token: 403.
		other := whNewHook(t, in, "Alive")
		want(t, whPath(h.ID, other.Token), 403, "Forbidden")
		whPostOK(t, in, other, "other webhooks are unaffected")
		if n := len(whMessages(t, in, h.Room)); n != 1 {
			t.Fatalf("room has %d messages, want 1", n)
		}
	})

	t.Run("room deleted", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "InRoom")
		h2 := whAddHook(t, in, h.Room, "Second")
		old := h2.Token
		h2 = whRegenerate(t, in, h2)
		whPostOK(t, in, h, "before delete")
		apptest.Must(t, in.Do(t, "DELETE", "/api/v1/rooms/"+h.Room, in.AdminToken, nil), 204)
		want(t, h.Path(), 404, "NotFound")
		want(t, h2.Path(), 404, "NotFound")
		want(t, whPath(h2.ID, old), 404, "NotFound")
		want(t, whPath(h.ID, strings.Repeat("b2", 36)), 403, "Forbidden")
	})
}

// TestWebhookTooLarge: 413 for Content over 4096 bytes of UTF-8 and bodies
// over 32 KiB.
func TestWebhookTooLarge(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: whSlowRate})

	// JSON bodies built by hand so that the Content's encoding in the body
	// is exactly what the case says.
	raw := func(jsonString string) string { return `{"Content":"` + jsonString + `"}` }
	for _, tc := range []struct {
		name    string
		content string // as sent, unescaped (its byte length is what counts)
		body    string // "" → whContent(content)
	}{
		{name: "ASCII", content: strings.Repeat("a", 4096)},
		{name: "2-byte é", content: strings.Repeat("é", 2048)},
		{name: "3-byte €", content: strings.Repeat("€", 1365) + "a"},
		{name: "4-byte emoji", content: strings.Repeat("🔔", 1024)},
		{name: "/md prefix counts", content: "/md " + strings.Repeat("m", 4092)},
		{name: "/code prefix counts", content: "/code " + strings.Repeat("c", 4090)},
		{name: "escaped in JSON", content: strings.Repeat("é", 2048), body: raw(strings.Repeat(`\u00e9`, 2048))},
		{name: "escaped surrogate pairs", content: strings.Repeat("🔔", 1024), body: raw(strings.Repeat(`\ud83d\udd14`, 1024))},
		// Counted after decoding: 2048 Windows-1252 bytes are 4096 of UTF-8.
		{name: "Windows-1252 body", content: strings.Repeat("é", 2048), body: raw(strings.Repeat("\xE9", 2048))},
		{name: "escaped newlines", content: strings.Repeat("x\n", 2048), body: raw(strings.Repeat(`x\n`, 2048))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if len(tc.content) != 4096 {
				t.Fatalf("test content is %d bytes, want 4096", len(tc.content))
			}
			body := tc.body
			if body == "" {
				body = string(whContent(tc.content))
			}
			// One more byte of Content: "!" added inside the JSON string.
			over := strings.TrimSuffix(body, `"}`) + `!"}`
			h := whNewHook(t, in, "Big")
			// 413 first: it spends nothing.
			whWantError(t, whPost(t, in, h.Path(), over), 413, "PayloadTooLarge")
			whWantError(t, whPost(t, in, h.Path(), over, "Idempotency-Key", "k1"), 413, "PayloadTooLarge")
			whWantOK(t, whPost(t, in, h.Path(), body), h.Room)
			m := whStored(t, in, h.Room)
			if m["Content"] != tc.content {
				t.Fatalf("stored Content is not the 4096 bytes sent")
			}
			// Throttled now, and still 413 before 429.
			whWantError(t, whPost(t, in, h.Path(), over), 413, "PayloadTooLarge")
		})
	}

	t.Run("multibyte boundary", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "Multi")
		// 4095 bytes plus one 2-byte rune is 4097 bytes but only 4096
		// characters: the limit is bytes.
		whWantError(t, whPost(t, in, h.Path(), whContent(strings.Repeat("a", 4095)+"é")), 413, "PayloadTooLarge")
		whWantError(t, whPost(t, in, h.Path(), whContent(strings.Repeat("🔔", 1024)+"a")), 413, "PayloadTooLarge")
		whWantError(t, whPost(t, in, h.Path(), whContent("/md "+strings.Repeat("m", 4093))), 413, "PayloadTooLarge")
		whPostOK(t, in, h, strings.Repeat("a", 4094)+"é")
	})

	t.Run("413 before 400", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "Order")
		big := strings.Repeat("x", 4097)
		whWantError(t, whPost(t, in, h.Path(), whContent(big), "Idempotency-Key", strings.Repeat("k", 256)), 413, "PayloadTooLarge")
		whWantError(t, whPost(t, in, h.Path(), whContent("/md "+strings.Repeat(" ", 4093))), 413, "PayloadTooLarge")
		whWantError(t, whPost(t, in, h.Path(), whContent("@All "+big)), 413, "PayloadTooLarge")
		whWantError(t, whPost(t, in, h.Path(), "not json "+strings.Repeat("x", 33<<10)), 413, "PayloadTooLarge")
		whPostOK(t, in, h, "budget intact")
	})

	t.Run("body over 32 KiB", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "Body")
		// Exactly 32768 bytes is allowed, 32769 is not, whatever the
		// Content: padding in another key counts.
		mk := func(n int) []byte {
			prefix := `{"Content":"small","Pad":"`
			return []byte(prefix + strings.Repeat("p", n-len(prefix)-2) + `"}`)
		}
		at, over := mk(32768), mk(32769)
		if len(at) != 32768 || len(over) != 32769 {
			t.Fatal("bad test bodies")
		}
		whWantError(t, whPost(t, in, h.Path(), over), 413, "PayloadTooLarge")
		whWantError(t, whChunked(t, in, h.Path(), over), 413, "PayloadTooLarge")
		whWantError(t, whChunked(t, in, h.Path(), mk(1<<20)), 413, "PayloadTooLarge")
		// White space counts as body too.
		ws := append(whContent("x"), bytes.Repeat([]byte(" "), 32<<10)...)
		whWantError(t, whPost(t, in, h.Path(), ws), 413, "PayloadTooLarge")
		whWantOK(t, whChunked(t, in, h.Path(), at), h.Room)
		h2 := whNewHook(t, in, "Body2")
		whWantOK(t, whPost(t, in, h2.Path(), at), h2.Room)
	})

	t.Run("declared Content-Length over 32768", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "Declared")
		// The body is never sent in full: the answer must come from the
		// header alone. One case is under net/http's own 256 KiB drain
		// limit, one over.
		for _, n := range []int{32769, 40000, 10 << 20} {
			r := whRaw(t, in, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"Content\":\"hi", h.Path(), n))
			whWantError(t, r, 413, "PayloadTooLarge")
		}
		// Through net/http's client too, with a body that never ends.
		pr, pw := io.Pipe()
		defer pw.Close()
		go pw.Write([]byte(`{"Content":"`))
		req, _ := http.NewRequest(http.MethodPost, in.URL+h.Path(), pr)
		req.ContentLength = 1 << 20
		resp, err := in.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		whWantError(t, &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, 413, "PayloadTooLarge")
		// A client that waits for 100 Continue gets the 413 instead.
		r := whRaw(t, in, "POST "+h.Path()+" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 40000\r\n\r\n")
		whWantError(t, r, 413, "PayloadTooLarge")
		// A declared length of exactly 32768 is read.
		at := `{"Content":"ok","Pad":"` + strings.Repeat("p", 32768-25) + `"}`
		r = whRaw(t, in, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", h.Path(), len(at), at))
		whWantOK(t, r, h.Room)
	})
}

// TestWebhookBadRequest: bodies that are not one JSON object with a
// non-blank string Content → 400; nothing stored, nothing spent.
func TestWebhookBadRequest(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: whSlowRate})
	h := whNewHook(t, in, "Bad")
	bodies := map[string]any{
		"empty body":              "",
		"no body":                 nil,
		"white space":             " \n\t ",
		"not JSON":                "hello",
		"form-encoded":            "Content=hello",
		"truncated":               `{"Content":"hi"`,
		"single quotes":           `{'Content':'hi'}`,
		"unquoted key":            `{Content:"hi"}`,
		"trailing comma":          `{"Content":"hi",}`,
		"array":                   `[{"Content":"hi"}]`,
		"empty array":             `[]`,
		"null":                    `null`,
		"number":                  `42`,
		"string":                  `"hi"`,
		"boolean":                 `true`,
		"empty object":            `{}`,
		"missing Content":         `{"Text":"hi","Message":"hi"}`,
		"Content number":          `{"Content":42}`,
		"Content null":            `{"Content":null}`,
		"Content object":          `{"Content":{"Text":"hi"}}`,
		"Content array":           `{"Content":["hi"]}`,
		"Content boolean":         `{"Content":true}`,
		"last Content not string": `{"Content":"hi","Content":1}`,
		"Content empty":           `{"Content":""}`,
		"Content spaces":          `{"Content":"   "}`,
		"Content white space":     `{"Content":"\n\t\r "}`,
		"/md blank":               `{"Content":"/md "}`,
		"/md newline blank":       `{"Content":"/md\n  \n"}`,
		"/code blank":             `{"Content":"/code \n  "}`,
		"/code CRLF blank":        `{"Content":"/code\r\n"}`,
		"trailing garbage":        `{"Content":"hi"} x`,
		"two objects":             `{"Content":"hi"}{"Content":"hi"}`,
		"trailing bracket":        `{"Content":"hi"}]`,
		"trailing comma after":    `{"Content":"hi"},`,
		"invalid escape":          `{"Content":"\x"}`,
		"lone BOM":                "\xEF\xBB\xBF",
		"BOM then array":          "\xEF\xBB\xBF[]",
	}
	for name, body := range bodies {
		r := whPost(t, in, h.Path(), body)
		if r.Status != 400 || r.Code() != "BadRequest" {
			t.Errorf("%s: %q → %d %s, want 400 BadRequest: %s", name, body, r.Status, r.Code(), r.Body)
		}
	}
	for name, key := range map[string]string{
		"256 chars":      strings.Repeat("k", 256),
		"tab inside":     "a\tb",
		"non-ASCII":      "clé",
		"only non-ASCII": "ключ",
		"1000 chars":     strings.Repeat("k", 1000),
	} {
		r := whPost(t, in, h.Path(), whContent("hi"), "Idempotency-Key", key)
		if r.Status != 400 || r.Code() != "BadRequest" {
			t.Errorf("Idempotency-Key %s: %d %s, want 400 BadRequest: %s", name, r.Status, r.Code(), r.Body)
		}
	}
	// A malformed key is refused even with an otherwise perfect request
	// that could be replayed: no key was recorded by any of the above.
	if n := len(whMessages(t, in, h.Room)); n != 0 {
		t.Fatalf("%d messages stored by refused requests", n)
	}
	// None of that spent the webhook's only token; then 400 still comes
	// before 429.
	whPostOK(t, in, h, "hi", "Idempotency-Key", strings.Repeat("k", 255))
	whWantError(t, whPost(t, in, h.Path(), "{"), 400, "BadRequest")
	whWantError(t, whPost(t, in, h.Path(), whContent(" ")), 400, "BadRequest")
	whWantError(t, whPost(t, in, h.Path(), whContent("x"), "Idempotency-Key", strings.Repeat("k", 256)), 400, "BadRequest")
	whWantError(t, whPost(t, in, h.Path(), whContent("again")), 429, "Throttled")
}

// TestWebhookLenientClients: what real clients send is accepted.
func TestWebhookLenientClients(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	for _, tc := range []struct {
		name    string
		body    []byte
		headers []string
		want    string // stored Content
	}{
		{name: "no Content-Type", body: whContent("a"), want: "a"},
		{name: "application/json", body: whContent("a"), headers: []string{"Content-Type", "application/json"}, want: "a"},
		{name: "application/JSON", body: whContent("a"), headers: []string{"Content-Type", "application/JSON"}, want: "a"},
		{name: "json with charset", body: whContent("a"), headers: []string{"Content-Type", "application/json; charset=utf-8"}, want: "a"},
		{name: "text/plain", body: whContent("a"), headers: []string{"Content-Type", "text/plain"}, want: "a"},
		{name: "form-urlencoded", body: whContent("a=b&c"), headers: []string{"Content-Type", "application/x-www-form-urlencoded"}, want: "a=b&c"},
		{name: "octet-stream", body: whContent("a"), headers: []string{"Content-Type", "application/octet-stream"}, want: "a"},
		{name: "garbage Content-Type", body: whContent("a"), headers: []string{"Content-Type", ";;; nonsense"}, want: "a"},
		{name: "extra keys", body: []byte(`{"Title":"t","Content":"a","Tags":["x"],"N":1,"Obj":{"Content":"inner"}}`), want: "a"},
		{name: "stray Content-Type key", body: []byte(`{"Content-Type":"application/json","Content":"a"}`), want: "a"},
		{name: "duplicate Content: last wins", body: []byte(`{"Content":"first","Content":"second"}`), want: "second"},
		{name: "duplicate Content: earlier non-string", body: []byte(`{"Content":42,"Content":"last"}`), want: "last"},
		{name: "UTF-8 BOM", body: append([]byte("\xEF\xBB\xBF"), whContent("café")...), want: "café"},
		{name: "BOM and text/plain", body: append([]byte("\xEF\xBB\xBF"), whContent("a")...), headers: []string{"Content-Type", "text/plain; charset=utf-8"}, want: "a"},
		{name: "surrounding white space", body: []byte("\r\n\t {\"Content\" : \"a\"} \r\n\t"), want: "a"},
		{name: "Windows-1252 quotes", body: []byte("{\"Content\":\"\x93quoted\x94 \x96 dash\"}"), want: "“quoted” – dash"},
		{name: "Windows-1252 é", body: []byte("{\"Content\":\"caf\xe9 \x80 5\"}"), headers: []string{"Content-Type", "application/json"}, want: "café € 5"},
		{name: "escaped unicode", body: []byte(`{"Content":"caf\u00e9 \ud83d\udd14 \"q\" \\ \/"}`), want: "café 🔔 \"q\" \\ /"},
		{name: "Content not first", body: []byte(`{"a":{"b":[1,{"c":null}]},"Content":"deep"}`), want: "deep"},
		{name: "/md alone is plain text", body: whContent("/md"), want: "/md"},
		{name: "prefix needs its separator", body: whContent("/code"), want: "/code"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := whNewHook(t, in, "Lenient")
			whWantOK(t, whPost(t, in, h.Path(), tc.body, tc.headers...), h.Room)
			if got := whStored(t, in, h.Room)["Content"]; got != tc.want {
				t.Fatalf("stored Content %q, want %q", got, tc.want)
			}
		})
	}
}

// TestWebhookExpectContinue: curl sends "Expect: 100-continue" with bodies
// over 1 KiB and waits for the interim answer before sending the body.
func TestWebhookExpectContinue(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	h := whNewHook(t, in, "Curl")
	body := string(whContent(strings.Repeat("long line of a build log ", 80)))
	u, _ := url.Parse(in.URL)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", h.Path(), len(body))
	br := bufio.NewReader(conn)
	interim, err := http.ReadResponse(br, nil)
	if err != nil || interim.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue before the body is sent: %v %v", interim, err)
	}
	io.WriteString(conn, body)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	r := &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
	whEnvelope(t, "POST", r)
	whWantOK(t, r, h.Room)
}

// TestWebhookBroadcastMembers: @All / @Present only in rooms of at most 50
// user members (webhooks not counted), and only when the message really
// carries the mention.
func TestWebhookBroadcastMembers(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: 1000, WebhookBurst: 1000})
	// The instance admin creates the room and is its first member; 49
	// users make 50.
	room := in.CreateRoom(t, in.AdminToken, "Fifty")
	users := make([]apptest.User, 50)
	for i := range users {
		users[i] = in.CreateUser(t, "")
	}
	for _, u := range users[:49] {
		in.AddMember(t, in.AdminToken, room, u.ID, "Member")
	}
	// Webhooks are in the roster but are not members for this rule.
	hooks := make([]whHook, 10)
	for i := range hooks {
		hooks[i] = whAddHook(t, in, room, fmt.Sprintf("Hook %d", i))
	}
	h := hooks[0]

	broadcasts := []string{"@All deploy done", "@all", "@ALL!", "hey @Present.", "@present", "/md **@All** look", "/md @Present"}
	quiet := []string{
		"/code @All",
		"/code\n@Present",
		"/md `@All` is what you would type",
		"/md ```\n@All\n```",
		"/md\n    @All in an indented block",
		"mail a@all.com",
		"@all@example.com",
		"https://example.com/@all",
		"@alligator @presently",
	}
	key := "broadcast-key"
	for _, c := range broadcasts {
		whPostOK(t, in, h, c)
	}
	whPostOK(t, in, h, "@All again", "Idempotency-Key", key)
	for _, c := range quiet {
		whPostOK(t, in, h, c)
	}

	// 51 members.
	in.AddMember(t, in.AdminToken, room, users[49].ID, "Member")
	for i, c := range broadcasts {
		hk := hooks[i%len(hooks)]
		r := whPost(t, in, hk.Path(), whContent(c))
		if r.Status != 400 || r.Code() != "BadRequest" {
			t.Errorf("%q in a 51-member room: %d %s, want 400 BadRequest: %s", c, r.Status, r.Code(), r.Body)
		}
	}
	for _, c := range quiet {
		whPostOK(t, in, h, c)
	}
	// The 400 comes before the replay of a recorded key (SPEC §1 order).
	whWantError(t, whPost(t, in, h.Path(), whContent("@All again"), "Idempotency-Key", key), 400, "BadRequest")
	// And before 429.
	slow := apptest.Start(t, apptest.Options{WebhookRate: whSlowRate})
	sroom := slow.CreateRoom(t, slow.AdminToken, "Big and slow")
	for range 50 {
		slow.AddMember(t, slow.AdminToken, sroom, slow.CreateUser(t, "").ID, "Member")
	}
	sh := whAddHook(t, slow, sroom, "Slow")
	whWantError(t, whPost(t, slow, sh.Path(), whContent("@All")), 400, "BadRequest")
	whPostOK(t, slow, sh, "/md `@All` is fine")
	whWantError(t, whPost(t, slow, sh.Path(), whContent("@Present")), 400, "BadRequest")
	whWantError(t, whPost(t, slow, sh.Path(), whContent("no mention")), 429, "Throttled")
}

// TestWebhookRateLimit: bursts of concurrent posts to one webhook.
func TestWebhookRateLimit(t *testing.T) {
	for _, burst := range []int{1, 3} {
		t.Run(fmt.Sprintf("burst %d", burst), func(t *testing.T) {
			t.Parallel()
			// One token per 10 s: none comes back while the 50 requests run.
			const rate = 0.1
			in := apptest.Start(t, apptest.Options{WebhookRate: rate, WebhookBurst: burst})
			h := whNewHook(t, in, "Burst")
			other := whNewHook(t, in, "Other")
			rs := whConcurrent(t, 50, func(i int) (*apptest.Response, error) {
				return in.Try("POST", h.Path(), "", whContent(fmt.Sprintf("message %d", i)))
			})
			var ok, throttled int
			ids := map[string]bool{}
			for _, r := range rs {
				whEnvelope(t, "POST", r)
				switch r.Status {
				case 200:
					ok++
					ids[whWantOK(t, r, h.Room)] = true
				case 429:
					throttled++
					whWantError(t, r, 429, "Throttled")
					if n := whRetryAfter(t, r); n > 10 {
						t.Errorf("Retry-After %d, want at most 10 at 0.1 messages per second", n)
					}
				default:
					t.Errorf("status %d: %s", r.Status, r.Body)
				}
			}
			if ok != burst || throttled != 50-burst || len(ids) != burst {
				t.Fatalf("%d accepted (%d ids), %d throttled; want %d and %d", ok, len(ids), throttled, burst, 50-burst)
			}
			if n := len(whMessages(t, in, h.Room)); n != burst {
				t.Fatalf("%d messages stored, want %d", n, burst)
			}
			// The limit is per webhook.
			for range burst {
				whPostOK(t, in, other, "other webhook")
			}
			whWantError(t, whPost(t, in, other.Path(), whContent("x")), 429, "Throttled")
		})
	}

	t.Run("throttled webhook still validates, spending nothing", func(t *testing.T) {
		t.Parallel()
		// Default rate: 1 per second, burst 1.
		in := apptest.Start(t, apptest.Options{})
		h := whNewHook(t, in, "Throttled")
		whPostOK(t, in, h, "one")
		start := time.Now()
		for range 5 {
			r := whPost(t, in, h.Path(), whContent("two"))
			whWantError(t, r, 429, "Throttled")
			if n := whRetryAfter(t, r); n != 1 {
				t.Fatalf("Retry-After %d, want 1 at 1 message per second", n)
			}
		}
		whWantError(t, whPost(t, in, h.Path(), whContent(strings.Repeat("x", 4097))), 413, "PayloadTooLarge")
		whWantError(t, whPost(t, in, h.Path(), `{"Content":"x","P":"`+strings.Repeat("p", 33<<10)+`"}`), 413, "PayloadTooLarge")
		whWantError(t, whPost(t, in, h.Path(), "{bad json"), 400, "BadRequest")
		whWantError(t, whPost(t, in, h.Path(), whContent("")), 400, "BadRequest")
		whWantError(t, whPost(t, in, h.Path(), whContent("x"), "Idempotency-Key", strings.Repeat("k", 256)), 400, "BadRequest")
		whWantError(t, whPost(t, in, whPath(h.ID, strings.Repeat("Q", 72)), whContent("x")), 403, "Forbidden")
		whWantError(t, whSend(t, in, "GET", h.Path(), nil), 405, "MethodNotAllowed")
		// Wait out the window of the first message: had any of the
		// refused requests spent budget, the next post would be 429.
		time.Sleep(time.Second + 50*time.Millisecond - time.Since(start))
		whPostOK(t, in, h, "three")
		whWantError(t, whPost(t, in, h.Path(), whContent("four")), 429, "Throttled")
	})
}

// TestWebhookIdempotency: Idempotency-Key replays, conflicts and
// concurrency.
func TestWebhookIdempotency(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: whSlowRate})

	t.Run("replay: same answer, nothing stored, no budget", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "Replay")
		first := whPost(t, in, h.Path(), whContent("deploy 42 done"), "Idempotency-Key", "deploy-42")
		id := whWantOK(t, first, h.Room)
		// The only token is spent; the repeats are still 200.
		for _, body := range []string{
			string(whContent("deploy 42 done")),
			`{"Content":"deploy 42 \u0064one","Extra":true}`, // same Content, other JSON
		} {
			again := whPost(t, in, h.Path(), body, "Idempotency-Key", "deploy-42")
			if got := whWantOK(t, again, h.Room); got != id {
				t.Fatalf("replay MessageId %s, want %s", got, id)
			}
			if !bytes.Equal(bytes.TrimSpace(again.Body), bytes.TrimSpace(first.Body)) {
				t.Fatalf("replay body %s, want %s", again.Body, first.Body)
			}
		}
		if n := len(whMessages(t, in, h.Room)); n != 1 {
			t.Fatalf("%d messages stored, want 1", n)
		}
		// Different Content, same key: 409, before 429.
		whWantError(t, whPost(t, in, h.Path(), whContent("deploy 43 done"), "Idempotency-Key", "deploy-42"), 409, "Conflict")
		whWantError(t, whPost(t, in, h.Path(), whContent("/md deploy 42 done"), "Idempotency-Key", "deploy-42"), 409, "Conflict")
		// Keys are case-sensitive.
		whWantError(t, whPost(t, in, h.Path(), whContent("deploy 42 done"), "Idempotency-Key", "DEPLOY-42"), 429, "Throttled")
		// A new message is throttled: the replays spent nothing.
		whWantError(t, whPost(t, in, h.Path(), whContent("new")), 429, "Throttled")
		whWantError(t, whPost(t, in, h.Path(), whContent("new"), "Idempotency-Key", "other"), 429, "Throttled")
		if n := len(whMessages(t, in, h.Room)); n != 1 {
			t.Fatalf("%d messages stored, want 1", n)
		}
	})

	t.Run("keys are per webhook", func(t *testing.T) {
		t.Parallel()
		a := whNewHook(t, in, "A")
		b := whAddHook(t, in, a.Room, "B")
		c := whNewHook(t, in, "C")
		ida := whPostOK(t, in, a, "same", "Idempotency-Key", "shared")
		idb := whPostOK(t, in, b, "same", "Idempotency-Key", "shared")
		idc := whPostOK(t, in, c, "different", "Idempotency-Key", "shared")
		if ida == idb || ida == idc || idb == idc {
			t.Fatalf("MessageIds %s %s %s, want three messages", ida, idb, idc)
		}
		if n := len(whMessages(t, in, a.Room)); n != 2 {
			t.Fatalf("%d messages in the room of A and B, want 2", n)
		}
		// Each replays its own.
		if got := whPostOK(t, in, b, "same", "Idempotency-Key", "shared"); got != idb {
			t.Fatalf("replay on B gave %s, want %s", got, idb)
		}
	})

	t.Run("refused requests record no key", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "NoRecord")
		whWantError(t, whPost(t, in, h.Path(), whContent(" "), "Idempotency-Key", "k"), 400, "BadRequest")
		whWantError(t, whPost(t, in, h.Path(), whContent(strings.Repeat("x", 4097)), "Idempotency-Key", "k"), 413, "PayloadTooLarge")
		id := whPostOK(t, in, h, "real", "Idempotency-Key", "k")
		// Throttled with a fresh key: the 429 records nothing, so the same
		// key with other Content is still a 429, not a 409.
		whWantError(t, whPost(t, in, h.Path(), whContent("one"), "Idempotency-Key", "k2"), 429, "Throttled")
		whWantError(t, whPost(t, in, h.Path(), whContent("two"), "Idempotency-Key", "k2"), 429, "Throttled")
		if got := whPostOK(t, in, h, "real", "Idempotency-Key", "k"); got != id {
			t.Fatalf("replay %s, want %s", got, id)
		}
	})

	t.Run("key survives regeneration", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "Regen")
		id := whPostOK(t, in, h, "once", "Idempotency-Key", "retry-me")
		h = whRegenerate(t, in, h)
		if got := whPostOK(t, in, h, "once", "Idempotency-Key", "retry-me"); got != id {
			t.Fatalf("replay after regenerate %s, want %s", got, id)
		}
	})

	t.Run("concurrent requests with one key", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "Concurrent")
		rs := whConcurrent(t, 30, func(int) (*apptest.Response, error) {
			return in.Try("POST", h.Path(), "", whContent("exactly once"), "Idempotency-Key", "once")
		})
		ids := map[string]int{}
		for _, r := range rs {
			whEnvelope(t, "POST", r)
			ids[whWantOK(t, r, h.Room)]++
		}
		if len(ids) != 1 {
			t.Fatalf("MessageIds %v, want one", ids)
		}
		if n := len(whMessages(t, in, h.Room)); n != 1 {
			t.Fatalf("%d messages stored, want 1", n)
		}
	})

	t.Run("concurrent requests with one key, different Content", func(t *testing.T) {
		t.Parallel()
		h := whNewHook(t, in, "Race")
		rs := whConcurrent(t, 20, func(i int) (*apptest.Response, error) {
			return in.Try("POST", h.Path(), "", whContent(fmt.Sprintf("v%d", i%2)), "Idempotency-Key", "race")
		})
		var ok, conflict int
		for _, r := range rs {
			whEnvelope(t, "POST", r)
			switch r.Status {
			case 200:
				ok++
			case 409:
				conflict++
			default:
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
		}
		// Whichever Content won, its 10 requests got 200, the others 409.
		if ok != 10 || conflict != 10 {
			t.Fatalf("%d × 200 and %d × 409, want 10 and 10", ok, conflict)
		}
		if n := len(whMessages(t, in, h.Room)); n != 1 {
			t.Fatalf("%d messages stored, want 1", n)
		}
	})
}
