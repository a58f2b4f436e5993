package server_test

// Helpers shared by the management API tests (authz_test.go, api_test.go).
// Their names start with "api" so that they do not collide with helpers of
// other test files in this package.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/carillon-chat/carillon/apptest"
	"github.com/carillon-chat/carillon/secret"
)

// apiTimestampRE is the API's timestamp format (SPEC: RFC 3339, UTC,
// milliseconds).
var apiTimestampRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// apiIDRE is the shape of every id: a lowercase UUIDv4.
var apiIDRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// apiErrorCodes is the Code of the error body for each status of the
// management API (400 may also be ResourceLimitExceeded; callers say so).
var apiErrorCodes = map[int]string{
	http.StatusBadRequest:            "BadRequest",
	http.StatusUnauthorized:          "Unauthorized",
	http.StatusForbidden:             "Forbidden",
	http.StatusNotFound:              "NotFound",
	http.StatusMethodNotAllowed:      "MethodNotAllowed",
	http.StatusConflict:              "Conflict",
	http.StatusRequestEntityTooLarge: "PayloadTooLarge",
	http.StatusTooManyRequests:       "Throttled",
	http.StatusServiceUnavailable:    "ServiceUnavailable",
	http.StatusInternalServerError:   "InternalError",
}

// apiExpect checks a response's status. An error answer must also be JSON
// with exactly the keys Code and Message, Code matching the status (or
// code, when given) and a non-empty Message; a 200/201 answer must be a
// JSON object; a 204 must have no body.
func apiExpect(t testing.TB, r *apptest.Response, status int, code ...string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return apiCheckBody(t, r, code...)
}

// apiCheckBody checks the body of a response against its own status, as
// apiExpect does, and returns it decoded (nil for 204).
func apiCheckBody(t testing.TB, r *apptest.Response, code ...string) map[string]any {
	t.Helper()
	if r.Status == http.StatusNoContent {
		if len(r.Body) != 0 {
			t.Errorf("204 with a body: %q", r.Body)
		}
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("status %d: Content-Type %q, want application/json", r.Status, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil || m == nil {
		t.Fatalf("status %d: body is not a JSON object: %v: %q", r.Status, err, r.Body)
	}
	if r.Status < 400 {
		return m
	}
	want := apiErrorCodes[r.Status]
	if len(code) > 0 {
		want = code[0]
	}
	apiKeys(t, m, "error body", "Code", "Message")
	if m["Code"] != want {
		t.Errorf("status %d: Code %v, want %s", r.Status, m["Code"], want)
	}
	if msg, _ := m["Message"].(string); strings.TrimSpace(msg) == "" {
		t.Errorf("status %d: Message %v, want a human-readable text", r.Status, m["Message"])
	}
	for name := range r.Header {
		if strings.HasPrefix(strings.ToLower(name), "access-control-") {
			t.Errorf("status %d: CORS header %s must never be sent", r.Status, name)
		}
	}
	return m
}

// apiKeys checks that an object has exactly the given keys: every key of a
// shape is present (null when it does not apply), and nothing else is.
func apiKeys(t testing.TB, v any, what string, keys ...string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: %v is not an object", what, v)
	}
	got := slices.Sorted(maps.Keys(m))
	want := slices.Sorted(slices.Values(keys))
	if !slices.Equal(got, want) {
		t.Fatalf("%s: keys %v, want %v", what, got, want)
	}
	return m
}

// apiTimestamp checks one timestamp value.
func apiTimestamp(t testing.TB, v any, what string) string {
	t.Helper()
	s, _ := v.(string)
	if !apiTimestampRE.MatchString(s) {
		t.Errorf("%s: timestamp %v is not RFC 3339 UTC with milliseconds", what, v)
	}
	return s
}

// apiID checks one id value.
func apiID(t testing.TB, v any, what string) string {
	t.Helper()
	s, _ := v.(string)
	if !apiIDRE.MatchString(s) {
		t.Errorf("%s: %v is not a lowercase UUIDv4", what, v)
	}
	return s
}

var apiUserSeq atomic.Int64

// apiUser is a user created by apiCreateUser.
type apiUser struct {
	apptest.User
	FullName string
}

// apiCreateUser creates a user with the given full name (and password,
// when not empty; each password costs a bcrypt hash) as the instance admin.
func apiCreateUser(t testing.TB, in *apptest.Instance, fullName, password string) apiUser {
	t.Helper()
	alias := fmt.Sprintf("api%d-%s", apiUserSeq.Add(1), strings.ToLower(secret.RandomString(6)))
	body := map[string]any{"Email": alias + "@example.com", "FullName": fullName}
	if password != "" {
		body["Password"] = password
	}
	var out struct {
		User  struct{ UserId, Email, Alias, FullName string }
		Token string
	}
	apptest.Must(t, in.Do(t, "POST", "/api/v1/users", in.AdminToken, body), 201).Decode(t, &out)
	return apiUser{User: apptest.User{ID: out.User.UserId, Email: out.User.Email, Alias: out.User.Alias, Token: out.Token},
		FullName: out.User.FullName}
}

// apiLogin logs in and returns the session cookie as a Cookie header value.
func apiLogin(t testing.TB, in *apptest.Instance, email, password string) string {
	t.Helper()
	r := in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": email, "Password": password})
	apiExpect(t, r, 200)
	c := apiSessionCookie(t, r)
	return c.Name + "=" + c.Value
}

// apiSessionCookie returns the one cookie a response sets.
func apiSessionCookie(t testing.TB, r *apptest.Response) *http.Cookie {
	t.Helper()
	lines := r.Header.Values("Set-Cookie")
	if len(lines) != 1 {
		t.Fatalf("Set-Cookie %q, want one cookie", lines)
	}
	c, err := http.ParseSetCookie(lines[0])
	if err != nil {
		t.Fatalf("Set-Cookie %q: %v", lines[0], err)
	}
	return c
}

// apiPost posts a message as a user and returns its id.
func apiPost(t testing.TB, in *apptest.Instance, token, roomID, content string) string {
	t.Helper()
	m := apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+roomID+"/messages", token, map[string]string{"Content": content}), 201)
	return m["MessageId"].(string)
}

// apiRoomOf returns the caller's entry of GET /api/v1/rooms for a room, or
// nil when the room is not listed.
func apiRoomOf(t testing.TB, in *apptest.Instance, token, roomID string) map[string]any {
	t.Helper()
	var out struct{ Rooms []map[string]any }
	r := in.Do(t, "GET", "/api/v1/rooms", token, nil)
	apiExpect(t, r, 200)
	r.Decode(t, &out)
	for _, room := range out.Rooms {
		if room["RoomId"] == roomID {
			return room
		}
	}
	return nil
}
