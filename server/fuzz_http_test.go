package server_test

// Fuzz targets that go through real HTTP to a real server (apptest, started
// once per fuzz target and per fuzzing worker, outside the fuzz function):
//
//   - FuzzWebhookRequest: the incoming-webhook endpoint with fuzzed path,
//     query, method, Content-Type, Idempotency-Key and body. Every answer is
//     JSON with Content-Type application/json, never a 500, and its status
//     is one of SPEC §1's.
//   - FuzzAPIDecoders: every management endpoint that takes a JSON body, with
//     a fuzzed body and the instance admin's token. No 500; every answer but
//     204 is JSON.
//
// Seed corpora: testdata/fuzz/<FuzzName>/ plus the f.Add calls below. Run:
//
//	go test ./server -run '^$' -fuzz '^FuzzWebhookRequest$' -fuzztime 10s
//	go test ./server -run '^$' -fuzz '^FuzzAPIDecoders$' -fuzztime 10s
//
// The Go client refuses to send some bytes (control characters in the
// URL, invalid header values); the helpers below escape or drop those, so
// that every execution reaches the handler. Requests Go's client would not
// send at all are in hostile_test.go, over raw connections.
//
// Helpers here are prefixed "fz".

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/carillon-chat/carillon/apptest"
)

// fzWebhookStatuses is SPEC §1's set of answers of the webhook endpoint.
var fzWebhookStatuses = map[int]bool{200: true, 400: true, 403: true, 404: true, 405: true, 409: true, 413: true, 429: true, 503: true}

// fzMethods picks a request method from the fuzzed mode (mostly POST).
var fzMethods = []string{"POST", "POST", "POST", "POST", "POST", "GET", "PUT", "OPTIONS"}

// fzIsHex reports whether b is a hexadecimal digit.
func fzIsHex(b byte) bool {
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F'
}

// fzEscape makes s usable in a URL that Go's client accepts and sends as
// is: bytes outside printable ASCII, space, '#' and (in a path) '?' are
// percent-encoded, and so is a '%' that does not start a valid escape.
// Everything else, "..", "%2e", "%2F", ";" and "&" included, goes through.
func fzEscape(s string, inPath bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%' && i+2 < len(s) && fzIsHex(s[i+1]) && fzIsHex(s[i+2]):
			b.WriteByte(c)
		case c <= ' ' || c >= 0x7f || c == '#' || c == '%' || (inPath && c == '?'):
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// fzHeaderValue is v with the bytes net/http refuses in a header value
// (control characters other than tab) removed.
func fzHeaderValue(v string) string {
	return strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return -1
		}
		return r
	}, v)
}

// fzResponse is one answer, read.
type fzResponse struct {
	status int
	header http.Header
	body   []byte
}

func fzDo(t *testing.T, client *http.Client, method, url string, body []byte, headers ...string) *fzResponse {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Skipf("Go's client cannot build this request: %v", err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header[headers[i]] = []string{headers[i+1]}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: no answer: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return &fzResponse{status: resp.StatusCode, header: resp.Header, body: data}
}

// fzCheckJSON checks that an answer is a JSON object served as
// application/json, with a Code and a Message when it is an error, and
// without CORS headers.
func fzCheckJSON(t *testing.T, what string, r *fzResponse) map[string]any {
	t.Helper()
	if r.status == http.StatusInternalServerError {
		t.Fatalf("%s: 500: %s", what, r.body)
	}
	for name := range r.header {
		if strings.HasPrefix(strings.ToLower(name), "access-control-allow-") {
			t.Fatalf("%s: status %d carries CORS header %s", what, r.status, name)
		}
	}
	if mt, _, err := mime.ParseMediaType(r.header.Get("Content-Type")); err != nil || mt != "application/json" {
		t.Fatalf("%s: status %d with Content-Type %q: %q", what, r.status, r.header.Get("Content-Type"), r.body)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("%s: status %d, body is not a JSON object: %v: %q", what, r.status, err, r.body)
	}
	if r.status >= 400 {
		code, _ := body["Code"].(string)
		msg, _ := body["Message"].(string)
		if code == "" || strings.TrimSpace(msg) == "" {
			t.Fatalf("%s: status %d without Code and Message: %s", what, r.status, r.body)
		}
	}
	return body
}

// fzWebhookTarget is what FuzzWebhookRequest aims at: a live webhook, and
// one whose URL was regenerated (its old token answers 404).
type fzWebhookTarget struct {
	in        *apptest.Instance
	client    *http.Client
	live, old whHook
}

func FuzzWebhookRequest(f *testing.F) {
	// A generous rate so that valid posts reach the write path (and get
	// stored) instead of all stopping at 429; 429s still come in bursts.
	in := apptest.Start(f, apptest.Options{WebhookRate: 200, WebhookBurst: 200})
	live := whNewHook(f, in, "Fuzz")
	old := whAddHook(f, in, live.Room, "Fuzz old")
	whRegenerate(f, in, old) // old keeps its first token: it answers 404
	tg := &fzWebhookTarget{in: in, client: &http.Client{Timeout: 15 * time.Second}, live: live, old: old}

	// mode bits: 0-1 which id starts the path (live, old, none, live);
	// 2 add the matching valid token first in the query; 3 unused;
	// 4 send an Idempotency-Key header; 5-7 the method (fzMethods).
	const valid = 0b0000_0100
	const withKey = 0b0001_0000
	for _, s := range []struct {
		mode                              uint8
		path, query, contentType, idemKey string
		body                              string
	}{
		{valid, "", "", "application/json", "", `{"Content":"hello"}`},
		{valid, "", "", "text/plain", "", `{"Content":"/md **bold** :+1: @All"}`},
		{valid, "", "", "", "", "\xEF\xBB\xBF{\"Content\":\"caf\xe9\"}"},
		{valid | withKey, "", "", "application/x-www-form-urlencoded", "key-1", `{"Content":"idem"}`},
		{valid | withKey, "", "", "application/json", "key-1", `{"Content":"idem changed"}`},
		{valid | withKey, "", "", "application/json", "", `{"Content":"empty key"}`},
		{valid, "", "x=1&token=other", "application/JSON", "", `{"Content":"first","Content":"last"}`},
		{valid, "", "", "application/json", "", `{"Content":""}`},
		{valid, "", "", "application/json", "", `{"Content":"` + strings.Repeat("x", 4097) + `"}`},
		{valid, "", "", "application/json", "", `{"Content":"x"} {}`},
		{valid, "", "", "application/json", "", strings.Repeat("[", 5000)},
		{valid, "/extra", "", "application/json", "", `{"Content":"x"}`},
		{valid | 1, "", "", "application/json", "", `{"Content":"to the old URL"}`},
		{2, "../api/v1/users", "token=abc", "application/json", "", `{}`},
		{2, "%2e%2e/%2e%2e/etc/passwd", "", "", "", ``},
		{0, "", "token=" + strings.Repeat("A", 72), "application/json", "", `{"Content":"x"}`},
		{0, "", "token=%00%0d%0a", "", "", `{"Content":"x"}`},
		{valid | 5<<5, "", "", "", "", ``},
		{valid | 7<<5, "", "", "", "", ``},
	} {
		f.Add(s.mode, s.path, s.query, s.contentType, s.idemKey, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, mode uint8, path, query, contentType, idemKey string, body []byte) {
		hook := tg.live
		if mode&3 == 1 {
			hook = tg.old
		}
		p := "/incomingwebhooks/"
		if mode&3 != 2 {
			p += hook.ID
		}
		p += fzEscape(path, true)
		q := fzEscape(query, false)
		if mode&4 != 0 {
			q = "token=" + hook.Token + "&" + q
		}
		url := tg.in.URL + p
		if q != "" {
			url += "?" + q
		}
		method := fzMethods[mode>>5]
		var headers []string
		if ct := fzHeaderValue(contentType); ct != "" {
			headers = append(headers, "Content-Type", ct)
		}
		if mode&16 != 0 {
			headers = append(headers, "Idempotency-Key", fzHeaderValue(idemKey))
		}
		r := fzDo(t, tg.client, method, url, body, headers...)
		what := method + " " + p
		if !fzWebhookStatuses[r.status] {
			t.Fatalf("%s: status %d is not one of SPEC §1's: %s", what, r.status, r.body)
		}
		got := fzCheckJSON(t, what, r)
		switch r.status {
		case http.StatusOK:
			if got["MessageId"] == nil || got["RoomId"] != hook.Room {
				t.Fatalf("%s: 200 without MessageId and this room's RoomId: %s", what, r.body)
			}
		case http.StatusMethodNotAllowed:
			if r.header.Get("Allow") != "POST" {
				t.Fatalf("%s: 405 with Allow %q", what, r.header.Get("Allow"))
			}
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			if r.header.Get("Retry-After") == "" {
				t.Fatalf("%s: %d without Retry-After", what, r.status)
			}
		}
		if method != http.MethodPost && r.status != http.StatusMethodNotAllowed {
			t.Fatalf("%s: status %d, want 405 for a method other than POST", what, r.status)
		}
	})
}

// fzEndpoint is one management endpoint that takes a JSON body.
type fzEndpoint struct{ method, path string }

func FuzzAPIDecoders(f *testing.F) {
	in := apptest.Start(f, apptest.Options{})
	other := in.CreateUser(f, "correct horse battery staple")
	room := in.CreateRoom(f, in.AdminToken, "Fuzz API")
	in.AddMember(f, in.AdminToken, room, other.ID, "Member")
	hook := in.CreateWebhook(f, in.AdminToken, room, "Fuzz API hook")
	client := &http.Client{Timeout: 15 * time.Second}

	// Every endpoint of the API that decodes a JSON request body. The
	// fuzzer may rename, demote, deactivate or re-password these targets:
	// answers change (400, 404, 409 …) but must stay well-formed.
	endpoints := []fzEndpoint{
		{"POST", "/api/v1/users"},
		{"PATCH", "/api/v1/users/me"},
		{"PATCH", "/api/v1/users/" + other.ID},
		{"POST", "/api/v1/sessions"},
		{"POST", "/api/v1/rooms"},
		{"POST", "/api/v1/rooms/" + room + "/read"},
		{"POST", "/api/v1/rooms/" + room + "/memberships"},
		{"PATCH", "/api/v1/rooms/" + room + "/memberships/" + other.ID},
		{"POST", "/api/v1/rooms/" + room + "/webhooks"},
		{"PATCH", "/api/v1/rooms/" + room + "/webhooks/" + hook.ID},
		{"POST", "/api/v1/rooms/" + room + "/messages"},
		{"POST", "/api/v1/notifications/read"},
	}
	// Seeds: bodies every decoder must refuse or tolerate, for every
	// endpoint; then for each endpoint a body of the shape it expects,
	// so that the fuzzer starts from the deep paths.
	for i := range endpoints {
		for _, body := range []string{
			`{}`,
			``,
			`[]`,
			`{"a":` + strings.Repeat("[", 20000) + `}`,
			"{\"Name\":\"caf\xe9\",\"Content\":\"\xff\"}",
			`{"Name":1,"FullName":null,"Active":"yes","Role":[],"All":"true"}`,
		} {
			f.Add(uint8(i), []byte(body))
		}
	}
	for i, body := range []string{
		`{"Email":"new-user@example.com","FullName":"Fuzz","Alias":"fz.new"}`,
		`{"FullName":"Robert'); DROP TABLE users;--"}`,
		`{"FullName":"` + strings.Repeat("n", 300) + `","Active":true}`,
		`{"Email":"` + other.Email + `","Password":"wrong password"}`,
		`{"Name":"Room ' OR 1=1 --"}`,
		`{"MessageId":"00000000-0000-4000-8000-000000000000"}`,
		`{"MemberId":"` + other.ID + `","Role":"Member"}`,
		`{"Role":"Administrator"}`,
		`{"Name":"a\u0000b"}`,
		`{"Name":"` + strings.Repeat("w", 65) + `"}`,
		`{"Content":"hello @All"}`,
		`{"NotificationIds":["x"],"All":false}`,
	} {
		f.Add(uint8(i), []byte(body))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := endpoints[int(which)%len(endpoints)]
		r := fzDo(t, client, ep.method, in.URL+ep.path, body,
			"Authorization", "Bearer "+in.AdminToken, "Content-Type", "application/json")
		what := ep.method + " " + ep.path
		if r.status == http.StatusNoContent {
			if len(r.body) != 0 {
				t.Fatalf("%s: 204 with a body: %q", what, r.body)
			}
			return
		}
		fzCheckJSON(t, what, r)
		if r.status < 200 || r.status >= 600 || (r.status >= 300 && r.status < 400) {
			t.Fatalf("%s: status %d", what, r.status)
		}
	})
}
