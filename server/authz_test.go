package server_test

// The authorization matrix of the management API (SPEC §3): every endpoint
// of server.APIRoutes(), plus POST /api/v1/sessions, against every kind of
// caller. A new endpoint without a row here fails TestAuthorizationMatrix:
// add a row to authzRows giving the status each caller gets, with a body
// that is valid, so that a refused caller is refused for who it is, not for
// what it sent. Mark it fresh when its success changes the fixture.

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carillon-chat/carillon/apptest"
	"github.com/carillon-chat/carillon/secret"
	"github.com/carillon-chat/carillon/server"
)

// The callers of the matrix.
const (
	asAnonymous     = "anonymous"     // no credentials at all
	asInvalid       = "invalidToken"  // a bearer token that was never issued
	asOutsider      = "outsider"      // a member of another room only
	asMember        = "member"        // Role Member of the room
	asRoomAdmin     = "roomAdmin"     // Role Administrator of the room (its creator)
	asInstanceAdmin = "instanceAdmin" // the instance admin, not a member of the room
)

var authzCallers = []string{asAnonymous, asInvalid, asOutsider, asMember, asRoomAdmin, asInstanceAdmin}

// authzLoginPassword is the password of the fixture's login user.
const authzLoginPassword = "matrix-password-1"

// authzFixture is a room with one caller of each kind, a webhook, a message,
// and "target", a plain Member that administrators act upon.
type authzFixture struct {
	in                                  *apptest.Instance
	outsider, member, roomAdmin, target apptest.User
	adminID                             string // the instance admin's user id
	invalidToken                        string
	room                                string
	hook                                apptest.Webhook
	message                             string // posted by roomAdmin
	login                               apiUser
}

// newAuthzFixture builds a fixture on in. login, when not nil, is reused as
// the login user (only the shared fixture creates one: it costs a bcrypt
// hash).
func newAuthzFixture(t testing.TB, in *apptest.Instance, login *apiUser) *authzFixture {
	t.Helper()
	fx := &authzFixture{in: in,
		outsider: in.CreateUser(t, ""), member: in.CreateUser(t, ""),
		roomAdmin: in.CreateUser(t, ""), target: in.CreateUser(t, ""),
		invalidToken: "crl_" + secret.RandomString(44),
	}
	var me struct{ User struct{ UserId string } }
	apptest.Must(t, in.Do(t, "GET", "/api/v1/users/me", in.AdminToken, nil), 200).Decode(t, &me)
	fx.adminID = me.User.UserId
	in.CreateRoom(t, fx.outsider.Token, "The outsider's own room")
	fx.room = in.CreateRoom(t, fx.roomAdmin.Token, "Matrix")
	in.AddMember(t, fx.roomAdmin.Token, fx.room, fx.member.ID, "Member")
	in.AddMember(t, fx.roomAdmin.Token, fx.room, fx.target.ID, "Member")
	fx.hook = in.CreateWebhook(t, fx.roomAdmin.Token, fx.room, "Matrix hook")
	fx.message = apiPost(t, in, fx.roomAdmin.Token, fx.room, "first message")
	if login != nil {
		fx.login = *login
	} else {
		fx.login = apiCreateUser(t, in, "Login User", authzLoginPassword)
	}
	return fx
}

// token is the bearer token a caller sends ("" for none).
func (fx *authzFixture) token(caller string) string {
	switch caller {
	case asInvalid:
		return fx.invalidToken
	case asOutsider:
		return fx.outsider.Token
	case asMember:
		return fx.member.Token
	case asRoomAdmin:
		return fx.roomAdmin.Token
	case asInstanceAdmin:
		return fx.in.AdminToken
	}
	return ""
}

// userID is a caller's own user id (the target's for callers without one).
func (fx *authzFixture) userID(caller string) string {
	switch caller {
	case asOutsider:
		return fx.outsider.ID
	case asMember:
		return fx.member.ID
	case asRoomAdmin:
		return fx.roomAdmin.ID
	case asInstanceAdmin:
		return fx.adminID
	}
	return fx.target.ID
}

// authzRow is one request and the status each caller gets.
type authzRow struct {
	pattern string // exactly as in server.APIRoutes()
	variant string // tells apart rows of one pattern
	// vars overrides path values; the defaults are RoomId: the room,
	// WebhookId: its webhook, MemberId and UserId: the target.
	vars map[string]func(fx *authzFixture, caller string) string
	body func(fx *authzFixture, caller string) any
	// fresh: the action changes what other rows rely on, so every caller
	// it succeeds for gets a fixture of its own.
	fresh bool
	// stream: a successful answer is an event stream that does not end;
	// only its status and headers are read.
	stream bool
	want   map[string]int
}

// authzWant is the row's statuses for the four authenticated callers; the
// anonymous caller and an invalid token always get 401.
func authzWant(outsider, member, roomAdmin, instanceAdmin int) map[string]int {
	return map[string]int{asAnonymous: 401, asInvalid: 401,
		asOutsider: outsider, asMember: member, asRoomAdmin: roomAdmin, asInstanceAdmin: instanceAdmin}
}

func authzAll(status int) map[string]int {
	m := map[string]int{}
	for _, c := range authzCallers {
		m[c] = status
	}
	return m
}

func authzConst(v any) func(*authzFixture, string) any {
	return func(*authzFixture, string) any { return v }
}

func authzRows() []authzRow {
	self := func(fx *authzFixture, caller string) string { return fx.userID(caller) }
	return []authzRow{
		// Logging in does not look at the caller's credentials, only at the
		// body: right credentials give 200 and wrong ones 401, whoever asks.
		{pattern: "POST /api/v1/sessions", variant: "right password",
			body: func(fx *authzFixture, _ string) any {
				return map[string]string{"Email": fx.login.Email, "Password": authzLoginPassword}
			},
			want: authzAll(200)},
		{pattern: "POST /api/v1/sessions", variant: "wrong password",
			body: func(fx *authzFixture, _ string) any {
				return map[string]string{"Email": fx.login.Email, "Password": "not-the-password"}
			},
			want: authzAll(401)},
		// With a bearer token there is no session to end: a no-op.
		{pattern: "DELETE /api/v1/sessions", want: authzWant(204, 204, 204, 204)},

		{pattern: "POST /api/v1/users",
			body: func(*authzFixture, string) any {
				return map[string]string{"Email": "new-" + strings.ToLower(secret.RandomString(10)) + "@example.com", "FullName": "New User"}
			},
			want: authzWant(403, 403, 403, 201)},
		{pattern: "GET /api/v1/users/me", want: authzWant(200, 200, 200, 200)},
		{pattern: "PATCH /api/v1/users/me", body: authzConst(map[string]string{"FullName": "Renamed Self"}),
			want: authzWant(200, 200, 200, 200)},
		{pattern: "PATCH /api/v1/users/{UserId}", body: authzConst(map[string]string{"FullName": "Renamed By Admin"}),
			fresh: true, want: authzWant(403, 403, 403, 200)},

		{pattern: "POST /api/v1/rooms", body: authzConst(map[string]string{"Name": "Another room"}),
			want: authzWant(201, 201, 201, 201)},
		{pattern: "GET /api/v1/rooms", want: authzWant(200, 200, 200, 200)},
		{pattern: "GET /api/v1/rooms/{RoomId}", want: authzWant(404, 200, 200, 200)},
		{pattern: "DELETE /api/v1/rooms/{RoomId}", fresh: true, want: authzWant(404, 403, 204, 204)},
		// The read position is a member's; the instance admin, not being a
		// member, has none.
		{pattern: "POST /api/v1/rooms/{RoomId}/read",
			body: func(fx *authzFixture, _ string) any { return map[string]string{"MessageId": fx.message} },
			want: authzWant(404, 204, 204, 403)},

		{pattern: "POST /api/v1/rooms/{RoomId}/memberships",
			body: func(fx *authzFixture, _ string) any {
				return map[string]string{"MemberId": fx.outsider.ID, "Role": "Member"}
			},
			fresh: true, want: authzWant(404, 403, 201, 201)},
		{pattern: "GET /api/v1/rooms/{RoomId}/memberships", want: authzWant(404, 200, 200, 200)},
		{pattern: "PATCH /api/v1/rooms/{RoomId}/memberships/{MemberId}", variant: "other member",
			body:  authzConst(map[string]string{"Role": "Administrator"}),
			fresh: true, want: authzWant(404, 403, 200, 200)},
		{pattern: "DELETE /api/v1/rooms/{RoomId}/memberships/{MemberId}", variant: "other member",
			fresh: true, want: authzWant(404, 403, 204, 204)},
		// Leaving: any member may remove itself, except the last
		// Administrator (409); the instance admin is not a member (404).
		{pattern: "DELETE /api/v1/rooms/{RoomId}/memberships/{MemberId}", variant: "self",
			vars:  map[string]func(*authzFixture, string) string{"MemberId": self},
			fresh: true, want: authzWant(404, 204, 409, 404)},

		{pattern: "POST /api/v1/rooms/{RoomId}/webhooks", body: authzConst(map[string]string{"Name": "Another hook"}),
			want: authzWant(404, 403, 201, 201)},
		{pattern: "GET /api/v1/rooms/{RoomId}/webhooks", want: authzWant(404, 403, 200, 200)},
		{pattern: "PATCH /api/v1/rooms/{RoomId}/webhooks/{WebhookId}", body: authzConst(map[string]string{"Name": "Renamed hook"}),
			fresh: true, want: authzWant(404, 403, 200, 200)},
		{pattern: "POST /api/v1/rooms/{RoomId}/webhooks/{WebhookId}/regenerate",
			fresh: true, want: authzWant(404, 403, 200, 200)},
		{pattern: "DELETE /api/v1/rooms/{RoomId}/webhooks/{WebhookId}",
			fresh: true, want: authzWant(404, 403, 204, 204)},

		{pattern: "GET /api/v1/rooms/{RoomId}/messages", want: authzWant(404, 200, 200, 200)},
		// Posting is for members: the instance admin reads every room but
		// speaks only in rooms it belongs to.
		{pattern: "POST /api/v1/rooms/{RoomId}/messages", body: authzConst(map[string]string{"Content": "hello from the matrix"}),
			want: authzWant(404, 201, 201, 403)},

		{pattern: "GET /api/v1/rooms/{RoomId}/audit", want: authzWant(404, 403, 200, 200)},

		// The caller's own notifications and live events: every user has
		// them, room or not.
		{pattern: "GET /api/v1/notifications", want: authzWant(200, 200, 200, 200)},
		{pattern: "POST /api/v1/notifications/read", body: authzConst(map[string]bool{"All": true}),
			want: authzWant(204, 204, 204, 204)},
		{pattern: "GET /api/v1/events", stream: true, want: authzWant(200, 200, 200, 200)},
	}
}

var authzVarRE = regexp.MustCompile(`\{([A-Za-z]+)\}`)

// request turns the row's pattern into a method and a path for a caller.
func (row authzRow) request(t testing.TB, fx *authzFixture, caller string) (method, path string) {
	t.Helper()
	method, path, ok := strings.Cut(row.pattern, " ")
	if !ok {
		t.Fatalf("pattern %q has no method", row.pattern)
	}
	path = authzVarRE.ReplaceAllStringFunc(path, func(v string) string {
		name := v[1 : len(v)-1]
		if f := row.vars[name]; f != nil {
			return f(fx, caller)
		}
		switch name {
		case "RoomId":
			return fx.room
		case "WebhookId":
			return fx.hook.ID
		case "MemberId", "UserId":
			return fx.target.ID
		}
		t.Fatalf("pattern %q: no value for {%s}; give one in the row's vars", row.pattern, name)
		return ""
	})
	return method, path
}

func (row authzRow) name() string {
	n := strings.NewReplacer("/api/v1/", "", "/", "_", " ", "_", "{", "", "}", "").Replace(row.pattern)
	if row.variant != "" {
		n += "(" + strings.ReplaceAll(row.variant, " ", "_") + ")"
	}
	return n
}

func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	rows := authzRows()

	// Every endpoint has a row, and every row is an endpoint.
	covered := map[string]bool{}
	for _, row := range rows {
		covered[row.pattern] = true
		for _, c := range authzCallers {
			if _, ok := row.want[c]; !ok {
				t.Errorf("row %s has no status for caller %s", row.name(), c)
			}
		}
	}
	endpoints := append(server.APIRoutes(), "POST /api/v1/sessions")
	for _, p := range endpoints {
		if !covered[p] {
			t.Errorf("endpoint %q has no row in the authorization matrix: add one to authzRows", p)
		}
	}
	for p := range covered {
		if !slices.Contains(endpoints, p) {
			t.Errorf("matrix row for %q, which is not an endpoint of server.APIRoutes()", p)
		}
	}
	if t.Failed() {
		return
	}

	in := apptest.Start(t, apptest.Options{})
	shared := newAuthzFixture(t, in, nil)
	for _, row := range rows {
		for _, caller := range authzCallers {
			want := row.want[caller]
			t.Run(row.name()+"/"+caller, func(t *testing.T) {
				t.Parallel()
				fx := shared
				if row.fresh && want < 300 {
					fx = newAuthzFixture(t, in, &shared.login)
				}
				method, path := row.request(t, fx, caller)
				var body any
				if row.body != nil {
					body = row.body(fx, caller)
				}
				var r *apptest.Response
				if row.stream {
					r = authzStream(t, in, path, fx.token(caller))
				} else {
					r = in.Do(t, method, path, fx.token(caller), body)
				}
				if r.Status != want {
					t.Fatalf("%s %s as %s: status %d, want %d: %s", method, path, caller, r.Status, want, r.Body)
				}
				if row.stream && r.Status == 200 {
					if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
						t.Errorf("event stream Content-Type %q", ct)
					}
				} else {
					apiCheckBody(t, r)
				}
				if want == 401 && r.Header.Get("WWW-Authenticate") == "" && row.pattern != "POST /api/v1/sessions" {
					t.Errorf("401 without a WWW-Authenticate header")
				}
			})
		}
	}
}

// authzStream opens an event stream and returns its status and headers; the
// body is read only when the answer is not a 200 (an error body).
func authzStream(t testing.TB, in *apptest.Instance, path, token string) *apptest.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", in.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := in.Client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	out := &apptest.Response{Status: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode != http.StatusOK {
		if out.Body, err = io.ReadAll(resp.Body); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	return out
}

// TestAPIUnknownPathsAndMethods: every answer under /api/v1 is JSON, also
// for paths and methods no route takes.
func TestAPIUnknownPathsAndMethods(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{})
	room := in.CreateRoom(t, in.AdminToken, "Paths")

	for _, path := range []string{
		"/api/v1/nope",
		"/api/v1",
		"/api/v1/",
		"/api/v1/rooms/",
		"/api/v1/rooms/" + room + "/nope",
		"/api/v1/rooms/" + room + "/messages/extra",
		"/api/v1/users/me/extra",
		"/api/v2/rooms",
	} {
		for _, token := range []string{"", in.AdminToken} {
			r := in.Do(t, "GET", path, token, nil)
			if r.Status != 404 {
				t.Errorf("GET %s (token %t): status %d, want 404: %s", path, token != "", r.Status, r.Body)
				continue
			}
			apiCheckBody(t, r)
		}
	}

	for _, tc := range []struct {
		method, path string
		allow        []string
	}{
		{"PUT", "/api/v1/rooms", []string{"GET", "POST"}},
		{"DELETE", "/api/v1/rooms", []string{"GET", "POST"}},
		{"OPTIONS", "/api/v1/rooms", []string{"GET", "POST"}},
		{"GET", "/api/v1/sessions", []string{"POST", "DELETE"}},
		{"DELETE", "/api/v1/users/me", []string{"GET", "PATCH"}},
		{"GET", "/api/v1/users", []string{"POST"}},
		{"POST", "/api/v1/rooms/" + room, []string{"GET", "DELETE"}},
		{"POST", "/api/v1/rooms/" + room + "/audit", []string{"GET"}},
		{"GET", "/api/v1/rooms/" + room + "/read", []string{"POST"}},
		{"GET", "/api/v1/rooms/" + room + "/webhooks/" + room + "/regenerate", []string{"POST"}},
		{"PUT", "/api/v1/rooms/" + room + "/memberships/" + room, []string{"PATCH", "DELETE"}},
	} {
		for _, token := range []string{"", in.AdminToken} {
			r := in.Do(t, tc.method, tc.path, token, nil)
			if r.Status != 405 {
				t.Errorf("%s %s (token %t): status %d, want 405: %s", tc.method, tc.path, token != "", r.Status, r.Body)
				continue
			}
			apiCheckBody(t, r)
			var got []string
			for _, v := range r.Header.Values("Allow") {
				for m := range strings.SplitSeq(v, ",") {
					got = append(got, strings.TrimSpace(m))
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.allow))
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: Allow %q, want %v", tc.method, tc.path, r.Header.Values("Allow"), want)
			}
		}
	}
}

// TestAPICredentialForms: only a well-formed bearer token or a live
// session cookie authenticates.
func TestAPICredentialForms(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{})
	for _, h := range [][]string{
		{"Authorization", "Basic " + in.AdminToken},
		{"Authorization", "Bearer"},
		{"Authorization", "Bearer   "},
		{"Authorization", in.AdminToken},
		{"Authorization", "Bearer " + in.AdminToken + "x"},
		{"Cookie", "carillon_session=" + secret.RandomString(43)},
		{"Cookie", "carillon_session="},
	} {
		r := in.Do(t, "GET", "/api/v1/users/me", "", nil, h...)
		if r.Status != 401 {
			t.Errorf("%s: %q: status %d, want 401: %s", h[0], h[1], r.Status, r.Body)
			continue
		}
		apiCheckBody(t, r)
	}
	// The scheme is case-insensitive (RFC 9110 §11.1).
	apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", "", nil, "Authorization", "bearer "+in.AdminToken), 200)
}

// TestAPICheckOrder: checks run in the order 401, 404 (room not visible),
// 403, 413/400, 409/429 (SPEC §3).
func TestAPICheckOrder(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{})
	fx := newAuthzFixture(t, in, &apiUser{})
	missingRoom := "/api/v1/rooms/" + "00000000-0000-4000-8000-000000000000"
	badBody := "this is not JSON"

	// 401 first: even for rooms that do not exist and bodies that are bad.
	for _, token := range []string{"", fx.invalidToken} {
		apiExpect(t, in.Do(t, "GET", missingRoom, token, nil), 401)
		apiExpect(t, in.Do(t, "DELETE", "/api/v1/rooms/not-an-id", token, nil), 401)
		apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+fx.room+"/webhooks", token, badBody), 401)
		apiExpect(t, in.Do(t, "POST", "/api/v1/users", token, badBody), 401)
	}

	// 404 before 403 and 400, and an outsider learns nothing: its answer
	// for an existing room is the answer for a room that never existed.
	hidden := apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+fx.room+"/webhooks", fx.outsider.Token, badBody), 404)
	missing := apiExpect(t, in.Do(t, "POST", missingRoom+"/webhooks", fx.outsider.Token, badBody), 404)
	if hidden["Message"] != missing["Message"] {
		t.Errorf("an outsider can tell an existing room (%v) from a missing one (%v)", hidden["Message"], missing["Message"])
	}
	apiExpect(t, in.Do(t, "GET", "/api/v1/rooms/not-an-id", fx.outsider.Token, nil), 404)
	apiExpect(t, in.Do(t, "GET", missingRoom, in.AdminToken, nil), 404)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+fx.room+"/messages", fx.outsider.Token, map[string]string{"Content": " "}), 404)

	// 403 before 400.
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+fx.room+"/webhooks", fx.member.Token, map[string]string{"Name": ""}), 403)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+fx.room+"/webhooks", fx.member.Token, badBody), 403)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/rooms/"+fx.room+"/memberships/"+fx.target.ID, fx.member.Token,
		map[string]string{"Role": "Bogus"}), 403)
	apiExpect(t, in.Do(t, "POST", "/api/v1/users", fx.member.Token, badBody), 403)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/"+fx.target.ID, fx.member.Token, map[string]any{"Active": "nope"}), 403)

	// 400 before 409.
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+fx.room+"/memberships", fx.roomAdmin.Token,
		map[string]string{"MemberId": fx.member.ID, "Role": "Bogus"}), 400)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+fx.room+"/memberships", fx.roomAdmin.Token,
		map[string]string{"MemberId": fx.member.ID, "Role": "Member"}), 409)
	apiExpect(t, in.Do(t, "POST", "/api/v1/users", in.AdminToken,
		map[string]string{"Email": fx.member.Email, "Alias": "all"}), 400)
	apiExpect(t, in.Do(t, "POST", "/api/v1/users", in.AdminToken,
		map[string]string{"Email": fx.member.Email}), 409)

	// A body over the API's limit is 413, but only for callers allowed to
	// act at all.
	huge := `{"Name": "` + strings.Repeat("x", 70*1024) + `"}`
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+fx.room+"/webhooks", fx.member.Token, huge), 403)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+fx.room+"/webhooks", fx.outsider.Token, huge), 404)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+fx.room+"/webhooks", fx.roomAdmin.Token, huge), 413)

	// 413 and 400 before 429: once the member's rate budget is spent, a
	// too-large or blank message is still refused for what it is.
	path := "/api/v1/rooms/" + fx.room + "/messages"
	throttled := false
	for i := 0; i < 20 && !throttled; i++ {
		r := in.Do(t, "POST", path, fx.member.Token, map[string]string{"Content": "spending budget"})
		switch r.Status {
		case 201:
		case 429:
			apiCheckBody(t, r)
			throttled = true
		default:
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
	if !throttled {
		t.Fatal("20 messages in a row were never throttled")
	}
	apiExpect(t, in.Do(t, "POST", path, fx.member.Token, map[string]string{"Content": strings.Repeat("x", 4097)}), 413)
	apiExpect(t, in.Do(t, "POST", path, fx.member.Token, map[string]string{"Content": "  \n "}), 400)
	apiExpect(t, in.Do(t, "POST", path, fx.member.Token, badBody), 400)
}

// TestInstanceAdminActsWithoutMembership: the instance admin manages any
// room as an Administrator, yet is not in its roster or room list.
func TestInstanceAdminActsWithoutMembership(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{})
	fx := newAuthzFixture(t, in, &apiUser{})
	base := "/api/v1/rooms/" + fx.room

	hook := in.CreateWebhook(t, in.AdminToken, fx.room, "Admin's hook")
	in.AddMember(t, in.AdminToken, fx.room, fx.outsider.ID, "Member")
	apiExpect(t, in.Do(t, "PATCH", base+"/memberships/"+fx.member.ID, in.AdminToken, map[string]string{"Role": "Administrator"}), 200)

	var ids []string
	for _, m := range apiRoster(t, in, in.AdminToken, fx.room) {
		ids = append(ids, m["Member"].(map[string]any)["MemberId"].(string))
	}
	if slices.Contains(ids, fx.adminID) {
		t.Errorf("the instance admin is in the roster: %v", ids)
	}
	for _, id := range []string{fx.roomAdmin.ID, fx.member.ID, fx.target.ID, fx.outsider.ID, hook.ID} {
		if !slices.Contains(ids, id) {
			t.Errorf("roster %v lacks %s", ids, id)
		}
	}
	if apiRoomOf(t, in, in.AdminToken, fx.room) != nil {
		t.Error("the room is in the instance admin's room list")
	}

	// The audit log names the instance admin as the actor.
	var audit struct {
		AuditEvents []struct{ Action, ActorId, TargetId string }
	}
	r := in.Do(t, "GET", base+"/audit", fx.roomAdmin.Token, nil)
	apiExpect(t, r, 200)
	r.Decode(t, &audit)
	if len(audit.AuditEvents) < 3 || audit.AuditEvents[0].Action != "RoleChanged" || audit.AuditEvents[0].ActorId != fx.adminID {
		t.Errorf("audit %+v, want RoleChanged by the instance admin first", audit.AuditEvents)
	}

	// Whoever creates a room is its Administrator member, the instance
	// admin included; the first-run room "General" is in its list.
	own := in.CreateRoom(t, in.AdminToken, "Admin's own room")
	if apiRoomOf(t, in, in.AdminToken, own) == nil {
		t.Error("a room the instance admin created is not in its room list")
	}
	var rooms struct{ Rooms []struct{ Name string } }
	in.Do(t, "GET", "/api/v1/rooms", in.AdminToken, nil).Decode(t, &rooms)
	if !slices.ContainsFunc(rooms.Rooms, func(r struct{ Name string }) bool { return r.Name == "General" }) {
		t.Errorf("rooms %+v lack the first-run room General", rooms.Rooms)
	}

	// Deleting the room as the instance admin ends it for its members.
	apiExpect(t, in.Do(t, "DELETE", base, in.AdminToken, nil), 204)
	apiExpect(t, in.Do(t, "GET", base, fx.roomAdmin.Token, nil), 404)
	apiExpect(t, in.Do(t, "GET", base, in.AdminToken, nil), 404)
	if r := in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "x"}); r.Status != http.StatusNotFound {
		t.Errorf("webhook of a deleted room: status %d, want 404: %s", r.Status, r.Body)
	}
}
