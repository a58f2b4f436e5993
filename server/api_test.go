package server_test

// Functional tests of the management API (SPEC §3) over real HTTP against
// a real server and SQLite file. Each test starts its own instance, so
// rate budgets and rosters do not leak between tests. Users are created
// without a password unless the test logs in: each password costs a
// bcrypt hash.

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/carillon-chat/carillon/apptest"
)

func TestAPIUsers(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{})

	// Create: 201 with the user and its API token.
	r := in.Do(t, "POST", "/api/v1/users", in.AdminToken, map[string]string{"Email": "Mary.Major@Example.com", "FullName": "Mary Major"})
	out := apiExpect(t, r, 201)
	apiKeys(t, out, "create user", "User", "Token")
	u := apiKeys(t, out["User"], "User", "UserId", "Email", "Alias", "FullName", "CreatedTimestamp")
	maryID := apiID(t, u["UserId"], "UserId")
	apiTimestamp(t, u["CreatedTimestamp"], "CreatedTimestamp")
	if u["Email"] != "Mary.Major@Example.com" || u["FullName"] != "Mary Major" {
		t.Errorf("user %v", u)
	}
	if u["Alias"] != "mary.major" {
		t.Errorf("Alias %v, want the e-mail's local part mary.major", u["Alias"])
	}
	maryToken, _ := out["Token"].(string)
	if maryToken == "" {
		t.Fatalf("Token %v", out["Token"])
	}
	me := apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", maryToken, nil), 200)
	apiKeys(t, me, "users/me", "User")
	if got := apiKeys(t, me["User"], "users/me User", "UserId", "Email", "Alias", "FullName", "CreatedTimestamp"); got["UserId"] != maryID {
		t.Errorf("users/me %v, want %s", got, maryID)
	}

	// An explicit alias is kept (lower-cased: aliases are [a-z0-9._-]).
	r = in.Do(t, "POST", "/api/v1/users", in.AdminToken, map[string]string{"Email": "john@example.com", "FullName": "John", "Alias": "jdoe"})
	if got := apiExpect(t, r, 201)["User"].(map[string]any)["Alias"]; got != "jdoe" {
		t.Errorf("Alias %v, want jdoe", got)
	}

	for _, tc := range []struct {
		name   string
		body   map[string]string
		status int
	}{
		{"same e-mail in another case", map[string]string{"Email": "mary.major@EXAMPLE.com", "Alias": "other1"}, 409},
		{"same alias in another case", map[string]string{"Email": "other2@example.com", "Alias": "Mary.Major"}, 409},
		{"default alias taken", map[string]string{"Email": "Mary.Major@elsewhere.org"}, 409},
		{"reserved alias all", map[string]string{"Email": "other3@example.com", "Alias": "all"}, 400},
		{"reserved alias Present", map[string]string{"Email": "other4@example.com", "Alias": "Present"}, 400},
		{"reserved default alias", map[string]string{"Email": "all@example.com"}, 400},
		{"alias with a space", map[string]string{"Email": "other5@example.com", "Alias": "bad alias"}, 400},
		{"alias of 65 characters", map[string]string{"Email": "other6@example.com", "Alias": strings.Repeat("a", 65)}, 400},
		{"no e-mail", map[string]string{"FullName": "Nobody"}, 400},
		{"not an e-mail", map[string]string{"Email": "not-an-email"}, 400},
		{"e-mail with a display name", map[string]string{"Email": "Mary <mary2@example.com>"}, 400},
		{"two addresses", map[string]string{"Email": "a@example.com, b@example.com"}, 400},
		{"short password", map[string]string{"Email": "other7@example.com", "Password": "short"}, 400},
	} {
		r := in.Do(t, "POST", "/api/v1/users", in.AdminToken, tc.body)
		if r.Status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.Status, tc.status, r.Body)
			continue
		}
		apiCheckBody(t, r)
	}
	apiExpect(t, in.Do(t, "POST", "/api/v1/users", in.AdminToken, "not JSON"), 400)
	apiExpect(t, in.Do(t, "POST", "/api/v1/users", in.AdminToken, `{"Email": 5}`), 400)

	// PATCH users/me: the full name.
	r = in.Do(t, "PATCH", "/api/v1/users/me", maryToken, map[string]string{"FullName": "  Mary Q. Major "})
	if got := apiExpect(t, r, 200)["User"].(map[string]any)["FullName"]; got != "Mary Q. Major" {
		t.Errorf("FullName %v", got)
	}
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/me", maryToken, map[string]string{"FullName": "   "}), 400)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/me", maryToken, map[string]string{"FullName": strings.Repeat("x", 257)}), 400)

	// PATCH users/me: the first password needs no current one; later
	// changes do.
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/me", maryToken, map[string]string{"Password": "short"}), 400)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/me", maryToken, map[string]string{"Password": "first-password"}), 200)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/me", maryToken, map[string]string{"Password": "second-password"}), 403)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/me", maryToken,
		map[string]string{"Password": "second-password", "CurrentPassword": "wrong-password"}), 403)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/me", maryToken,
		map[string]string{"Password": "second-password", "CurrentPassword": "first-password"}), 200)
	apiExpect(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": "mary.major@example.com", "Password": "second-password"}), 200)

	// PATCH users/{id} is the instance admin's.
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/"+maryID, maryToken, map[string]string{"FullName": "Self-made"}), 403)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/00000000-0000-4000-8000-000000000000", in.AdminToken, map[string]string{"FullName": "X"}), 404)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/not-an-id", in.AdminToken, map[string]string{"FullName": "X"}), 404)
	r = in.Do(t, "PATCH", "/api/v1/users/"+maryID, in.AdminToken, map[string]string{"FullName": "Mary by Admin"})
	apiKeys(t, apiExpect(t, r, 200), "PATCH users/{id}", "User")
	var adminMe struct{ User struct{ UserId string } }
	in.Do(t, "GET", "/api/v1/users/me", in.AdminToken, nil).Decode(t, &adminMe)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/"+adminMe.User.UserId, in.AdminToken, map[string]any{"Active": false}), 409)

	// Deactivation ends the user's API tokens; their messages stay.
	room := in.CreateRoom(t, in.AdminToken, "Users")
	in.AddMember(t, in.AdminToken, room, maryID, "Member")
	msg := apiPost(t, in, maryToken, room, "before deactivation")
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/"+maryID, in.AdminToken, map[string]any{"Active": "no"}), 400)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/"+maryID, in.AdminToken, map[string]any{"Active": false}), 200)
	apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", maryToken, nil), 401)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+room+"/messages", maryToken, map[string]string{"Content": "after"}), 401)
	msgs := in.Messages(t, in.AdminToken, room)
	if len(msgs) != 1 || msgs[0]["MessageId"] != msg {
		t.Errorf("messages after deactivation %v, want the one message kept", msgs)
	}
	// A deactivated user cannot be added to rooms.
	other := in.CreateRoom(t, in.AdminToken, "Other")
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+other+"/memberships", in.AdminToken, map[string]string{"MemberId": maryID}), 400)
}

func TestAPISessions(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{})
	const password = "correct horse battery"
	u := apiCreateUser(t, in, "Session User", password)
	room := in.CreateRoom(t, in.AdminToken, "Sessions")
	in.AddMember(t, in.AdminToken, room, u.ID, "Member")

	// Log in: 200 and an HttpOnly, SameSite=Lax cookie (not Secure without TLS).
	r := in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": strings.ToUpper(u.Email), "Password": password})
	apiExpect(t, r, 200)
	c := apiSessionCookie(t, r)
	if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Value == "" || c.Secure {
		t.Errorf("session cookie %q: want HttpOnly, SameSite=Lax, Path=/, not Secure without TLS", r.Header.Get("Set-Cookie"))
	}
	cookieA := c.Name + "=" + c.Value

	// Wrong password and unknown e-mail: the same 401, no hint which.
	wrong := apiExpect(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": u.Email, "Password": "wrong password"}), 401)
	unknown := apiExpect(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": "nobody@example.com", "Password": password}), 401)
	if wrong["Message"] != unknown["Message"] {
		t.Errorf("wrong password %q and unknown e-mail %q answer differently", wrong["Message"], unknown["Message"])
	}
	apiExpect(t, in.Do(t, "POST", "/api/v1/sessions", "", "not JSON"), 400)

	// The cookie authenticates.
	me := apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", "", nil, "Cookie", cookieA), 200)
	if me["User"].(map[string]any)["UserId"] != u.ID {
		t.Errorf("users/me by cookie: %v", me)
	}

	// Cross-site protection of cookie requests that change state (SPEC §6).
	post := func(headers ...string) *apptest.Response {
		return in.Do(t, "POST", "/api/v1/rooms/"+room+"/messages", "", map[string]string{"Content": "by cookie"},
			append([]string{"Cookie", cookieA}, headers...)...)
	}
	apiExpect(t, post("Sec-Fetch-Site", "cross-site"), 403)
	apiExpect(t, post("Origin", "https://evil.example"), 403)
	apiExpect(t, post("Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), 403)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/me", "", map[string]string{"FullName": "Pwned"},
		"Cookie", cookieA, "Origin", "http://evil.example"), 403)
	apiExpect(t, in.Do(t, "DELETE", "/api/v1/sessions", "", nil, "Cookie", cookieA, "Sec-Fetch-Site", "cross-site"), 403)
	apiExpect(t, post("Sec-Fetch-Site", "same-origin"), 201)
	apiExpect(t, post("Origin", in.URL), 201)
	apiExpect(t, post(), 201) // no browser headers: not a browser, nothing to forge
	// Reading is not a state change, and bearer tokens are not sent by
	// browsers on their own, so neither is refused.
	apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", "", nil, "Cookie", cookieA, "Sec-Fetch-Site", "cross-site"), 200)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+room+"/messages", u.Token, map[string]string{"Content": "by token"},
		"Sec-Fetch-Site", "cross-site"), 201)
	// Logging in from another site is refused too (login CSRF).
	apiExpect(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": u.Email, "Password": password},
		"Sec-Fetch-Site", "cross-site"), 403)

	// A password change keeps the session that made it and ends the others.
	cookieB := apiLogin(t, in, u.Email, password)
	apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", "", nil, "Cookie", cookieB), 200)
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/me", "", map[string]string{"Password": "a new password", "CurrentPassword": password},
		"Cookie", cookieA), 200)
	apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", "", nil, "Cookie", cookieA), 200)
	apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", "", nil, "Cookie", cookieB), 401)
	apiExpect(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": u.Email, "Password": password}), 401)
	// The API token survives a password change.
	apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", u.Token, nil), 200)

	// Logout ends the session and clears the cookie.
	r = in.Do(t, "DELETE", "/api/v1/sessions", "", nil, "Cookie", cookieA)
	apiExpect(t, r, 204)
	if c := apiSessionCookie(t, r); c.MaxAge >= 0 && c.Value != "" {
		t.Errorf("logout Set-Cookie %q does not clear the cookie", r.Header.Get("Set-Cookie"))
	}
	apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", "", nil, "Cookie", cookieA), 401)
	apiExpect(t, in.Do(t, "DELETE", "/api/v1/sessions", "", nil, "Cookie", cookieA), 401)

	// A password reset by the instance admin ends the user's sessions too.
	cookieC := apiLogin(t, in, u.Email, "a new password")
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/"+u.ID, in.AdminToken, map[string]string{"Password": "reset by admin"}), 200)
	apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", "", nil, "Cookie", cookieC), 401)

	// Deactivation ends sessions, and the user cannot log in again.
	cookieD := apiLogin(t, in, u.Email, "reset by admin")
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/"+u.ID, in.AdminToken, map[string]any{"Active": false}), 200)
	apiExpect(t, in.Do(t, "GET", "/api/v1/users/me", "", nil, "Cookie", cookieD), 401)
	apiExpect(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": u.Email, "Password": "reset by admin"}), 401)

	// A user without a password cannot log in (only use API tokens).
	nopw := apiCreateUser(t, in, "No Password", "")
	apiExpect(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": nopw.Email, "Password": "anything at all"}), 401)
	apiExpect(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": nopw.Email, "Password": ""}), 401)
}

func TestAPIRooms(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{})
	owner := apiCreateUser(t, in, "Room Owner", "")
	guest := apiCreateUser(t, in, "Room Guest", "")

	// Create: 201, the creator is its Administrator.
	r := in.Do(t, "POST", "/api/v1/rooms", owner.Token, map[string]string{"Name": "  Ops  "})
	room := apiKeys(t, apiExpect(t, r, 201)["Room"], "Room", "RoomId", "Name", "CreatedBy", "CreatedTimestamp", "UnreadCount", "MentionCount")
	id := apiID(t, room["RoomId"], "RoomId")
	apiTimestamp(t, room["CreatedTimestamp"], "CreatedTimestamp")
	if room["Name"] != "Ops" || room["CreatedBy"] != owner.ID || room["UnreadCount"] != 0.0 || room["MentionCount"] != 0.0 {
		t.Errorf("room %v", room)
	}
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms", owner.Token, map[string]string{"Name": " "}), 400)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms", owner.Token, map[string]any{"Name": 7}), 400)

	listed := apiRoomOf(t, in, owner.Token, id)
	if listed == nil {
		t.Fatal("the new room is not in the creator's room list")
	}
	apiKeys(t, listed, "listed room", "RoomId", "Name", "CreatedBy", "CreatedTimestamp", "UnreadCount", "MentionCount")
	var roster struct {
		RoomMemberships []struct {
			Member struct{ MemberId string }
			Role   string
		}
	}
	in.Do(t, "GET", "/api/v1/rooms/"+id+"/memberships", owner.Token, nil).Decode(t, &roster)
	if len(roster.RoomMemberships) != 1 || roster.RoomMemberships[0].Member.MemberId != owner.ID || roster.RoomMemberships[0].Role != "Administrator" {
		t.Errorf("roster %+v, want the creator as Administrator", roster)
	}
	got := apiKeys(t, apiExpect(t, in.Do(t, "GET", "/api/v1/rooms/"+id, owner.Token, nil), 200)["Room"], "GET room",
		"RoomId", "Name", "CreatedBy", "CreatedTimestamp", "UnreadCount", "MentionCount")
	if got["RoomId"] != id || got["Name"] != "Ops" {
		t.Errorf("GET room %v", got)
	}
	if apiRoomOf(t, in, guest.Token, id) != nil {
		t.Error("a non-member sees the room in its list")
	}

	// UnreadCount counts messages by others since the last read position.
	in.AddMember(t, owner.Token, id, guest.ID, "Member")
	hook := in.CreateWebhook(t, owner.Token, id, "Alerts")
	unread := func(token string) float64 {
		t.Helper()
		room := apiRoomOf(t, in, token, id)
		if room == nil {
			t.Fatal("room not listed")
		}
		got := apiExpect(t, in.Do(t, "GET", "/api/v1/rooms/"+id, token, nil), 200)["Room"].(map[string]any)
		if got["UnreadCount"] != room["UnreadCount"] {
			t.Errorf("GET room UnreadCount %v, room list %v", got["UnreadCount"], room["UnreadCount"])
		}
		return room["UnreadCount"].(float64)
	}
	g1 := apiPost(t, in, guest.Token, id, "one")
	apiPost(t, in, guest.Token, id, "two")
	apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "from CI"}), 200)
	own := apiPost(t, in, owner.Token, id, "my own")
	if n := unread(owner.Token); n != 3 {
		t.Errorf("owner UnreadCount %v, want 3 (two by the guest, one by the webhook, not its own)", n)
	}
	if n := unread(guest.Token); n != 2 {
		t.Errorf("guest UnreadCount %v, want 2", n)
	}
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+id+"/read", owner.Token, map[string]string{"MessageId": g1}), 204)
	if n := unread(owner.Token); n != 2 {
		t.Errorf("owner UnreadCount %v after reading the first message, want 2", n)
	}
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+id+"/read", owner.Token, map[string]string{"MessageId": own}), 204)
	if n := unread(owner.Token); n != 0 {
		t.Errorf("owner UnreadCount %v after reading everything, want 0", n)
	}
	// The read position never moves back.
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+id+"/read", owner.Token, map[string]string{"MessageId": g1}), 204)
	if n := unread(owner.Token); n != 0 {
		t.Errorf("owner UnreadCount %v after marking an older message read, want 0", n)
	}
	if n := unread(guest.Token); n != 2 {
		t.Errorf("guest UnreadCount %v, want 2: read positions are per member", n)
	}
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+id+"/read", owner.Token, nil), 400)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+id+"/read", owner.Token, map[string]string{"MessageId": "nope"}), 400)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+id+"/read", owner.Token, map[string]string{"MessageId": id}), 400)
	otherRoom := in.CreateRoom(t, owner.Token, "Elsewhere")
	elsewhere := apiPost(t, in, owner.Token, otherRoom, "elsewhere")
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+id+"/read", owner.Token, map[string]string{"MessageId": elsewhere}), 400)

	// MentionCount counts the caller's unread mentions; reading the room
	// past them reads them.
	mentions := func(token string) float64 {
		t.Helper()
		return apiRoomOf(t, in, token, id)["MentionCount"].(float64)
	}
	if n := mentions(owner.Token); n != 0 {
		t.Errorf("owner MentionCount %v before any mention, want 0", n)
	}
	mention := apiPost(t, in, guest.Token, id, "@"+owner.Alias+" please look")
	apiPost(t, in, guest.Token, id, "@"+guest.Alias+" talks to itself") // the sender is never notified
	if n := mentions(owner.Token); n != 1 {
		t.Errorf("owner MentionCount %v after one mention, want 1", n)
	}
	if n := mentions(guest.Token); n != 0 {
		t.Errorf("guest MentionCount %v after mentioning itself, want 0", n)
	}
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+id+"/read", owner.Token, map[string]string{"MessageId": mention}), 204)
	if n := mentions(owner.Token); n != 0 {
		t.Errorf("owner MentionCount %v after reading the mention, want 0", n)
	}
	if n := unread(owner.Token); n != 1 {
		t.Errorf("owner UnreadCount %v, want 1 (the message after the mention)", n)
	}

	// A member who joins later starts with nothing unread.
	late := apiCreateUser(t, in, "Late Joiner", "")
	in.AddMember(t, owner.Token, id, late.ID, "Member")
	if n := unread(late.Token); n != 0 {
		t.Errorf("late joiner UnreadCount %v, want 0", n)
	}

	// Only administrators delete; then the room is gone for everyone.
	apiExpect(t, in.Do(t, "DELETE", "/api/v1/rooms/"+id, guest.Token, nil), 403)
	apiExpect(t, in.Do(t, "DELETE", "/api/v1/rooms/"+id, owner.Token, nil), 204)
	for _, tok := range []string{owner.Token, guest.Token, in.AdminToken} {
		apiExpect(t, in.Do(t, "GET", "/api/v1/rooms/"+id, tok, nil), 404)
		apiExpect(t, in.Do(t, "GET", "/api/v1/rooms/"+id+"/messages", tok, nil), 404)
	}
	apiExpect(t, in.Do(t, "DELETE", "/api/v1/rooms/"+id, owner.Token, nil), 404)
	apiExpect(t, in.Do(t, "POST", "/api/v1/rooms/"+id+"/messages", guest.Token, map[string]string{"Content": "hello?"}), 404)
	if apiRoomOf(t, in, owner.Token, id) != nil || apiRoomOf(t, in, guest.Token, id) != nil {
		t.Error("a deleted room is still listed")
	}
	if r := in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "x"}); r.Status != 404 {
		t.Errorf("webhook of a deleted room: status %d, want 404", r.Status)
	}
}

// apiRoster reads a room's roster.
func apiRoster(t testing.TB, in *apptest.Instance, token, room string) []map[string]any {
	t.Helper()
	r := in.Do(t, "GET", "/api/v1/rooms/"+room+"/memberships", token, nil)
	apiKeys(t, apiExpect(t, r, 200), "roster", "RoomMemberships")
	var out struct{ RoomMemberships []map[string]any }
	r.Decode(t, &out)
	return out.RoomMemberships
}

func TestAPIMemberships(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{})
	mona := apiCreateUser(t, in, "Mona Lisa", "")
	zed := apiCreateUser(t, in, "Zed Zulu", "")
	adam := apiCreateUser(t, in, "Adam Apple", "")
	room := in.CreateRoom(t, mona.Token, "Roster")
	base := "/api/v1/rooms/" + room + "/memberships"

	// Add by MemberId.
	r := in.Do(t, "POST", base, mona.Token, map[string]string{"MemberId": zed.ID, "Role": "Member"})
	ms := apiKeys(t, apiExpect(t, r, 201)["RoomMembership"], "RoomMembership", "RoomId", "Member", "Role", "Present")
	m := apiKeys(t, ms["Member"], "Member", "MemberId", "MemberType", "Email", "Alias", "FullName")
	if ms["RoomId"] != room || ms["Role"] != "Member" || m["MemberId"] != zed.ID || m["MemberType"] != "User" ||
		m["Email"] != zed.Email || m["Alias"] != zed.Alias || m["FullName"] != "Zed Zulu" {
		t.Errorf("membership %v", ms)
	}
	if _, ok := ms["Present"].(bool); !ok {
		t.Errorf("Present %v, want a boolean for a user", ms["Present"])
	}
	// Add by e-mail (case-insensitive).
	r = in.Do(t, "POST", base, mona.Token, map[string]string{"Email": strings.ToUpper(adam.Email), "Role": "Administrator"})
	ms = apiExpect(t, r, 201)["RoomMembership"].(map[string]any)
	if ms["Role"] != "Administrator" || ms["Member"].(map[string]any)["MemberId"] != adam.ID {
		t.Errorf("membership by e-mail %v", ms)
	}
	// Duplicates, by either key.
	apiExpect(t, in.Do(t, "POST", base, mona.Token, map[string]string{"MemberId": zed.ID, "Role": "Member"}), 409)
	apiExpect(t, in.Do(t, "POST", base, mona.Token, map[string]string{"Email": zed.Email, "Role": "Administrator"}), 409)
	apiExpect(t, in.Do(t, "POST", base, mona.Token, map[string]string{"MemberId": mona.ID, "Role": "Member"}), 409)
	// Bad requests.
	nobody := apiCreateUser(t, in, "Nobody", "")
	for _, body := range []map[string]string{
		{"MemberId": nobody.ID, "Role": "Owner"},
		{"MemberId": nobody.ID, "Email": nobody.Email, "Role": "Member"},
		{"Role": "Member"},
		{"MemberId": "not-an-id", "Role": "Member"},
		{"MemberId": "00000000-0000-4000-8000-000000000000", "Role": "Member"},
		{"Email": "missing@example.com", "Role": "Member"},
	} {
		r := in.Do(t, "POST", base, mona.Token, body)
		if r.Status != 400 {
			t.Errorf("add %v: status %d, want 400: %s", body, r.Status, r.Body)
			continue
		}
		apiCheckBody(t, r)
	}

	// The roster: users by FullName, then webhooks by Name.
	builds := in.CreateWebhook(t, mona.Token, room, "Builds")
	alerts := in.CreateWebhook(t, mona.Token, room, "Alerts")
	roster := apiRoster(t, in, zed.Token, room)
	var order []string
	for i, e := range roster {
		apiKeys(t, e, fmt.Sprintf("roster[%d]", i), "RoomId", "Member", "Role", "Present")
		member := apiKeys(t, e["Member"], fmt.Sprintf("roster[%d].Member", i), "MemberId", "MemberType", "Email", "Alias", "FullName")
		order = append(order, member["FullName"].(string))
		if e["RoomId"] != room {
			t.Errorf("roster[%d].RoomId %v", i, e["RoomId"])
		}
		switch member["MemberType"] {
		case "User":
			if e["Role"] == nil || member["Email"] == nil || member["Alias"] == nil {
				t.Errorf("user entry %v lacks Role, Email or Alias", e)
			}
			if _, ok := e["Present"].(bool); !ok {
				t.Errorf("user entry %v: Present is not a boolean", e)
			}
		case "Webhook":
			if e["Role"] != nil || e["Present"] != nil || member["Email"] != nil || member["Alias"] != nil {
				t.Errorf("webhook entry %v: Email, Alias, Role and Present must be null", e)
			}
		default:
			t.Errorf("roster[%d].MemberType %v", i, member["MemberType"])
		}
	}
	if want := []string{"Adam Apple", "Mona Lisa", "Zed Zulu", "Alerts", "Builds"}; !slices.Equal(order, want) {
		t.Errorf("roster order %v, want %v", order, want)
	}
	if len(roster) == 5 {
		if id := roster[3]["Member"].(map[string]any)["MemberId"]; id != alerts.ID {
			t.Errorf("webhook MemberId %v, want its WebhookId %s", id, alerts.ID)
		}
		if id := roster[4]["Member"].(map[string]any)["MemberId"]; id != builds.ID {
			t.Errorf("webhook MemberId %v, want its WebhookId %s", id, builds.ID)
		}
	}

	// PATCH a role.
	r = in.Do(t, "PATCH", base+"/"+zed.ID, mona.Token, map[string]string{"Role": "Administrator"})
	ms = apiKeys(t, apiExpect(t, r, 200)["RoomMembership"], "RoomMembership", "RoomId", "Member", "Role", "Present")
	if ms["Role"] != "Administrator" || ms["Member"].(map[string]any)["MemberId"] != zed.ID {
		t.Errorf("PATCH role %v", ms)
	}
	apiExpect(t, in.Do(t, "PATCH", base+"/"+zed.ID, mona.Token, map[string]string{"Role": "Administrator"}), 200)
	apiExpect(t, in.Do(t, "PATCH", base+"/"+zed.ID, mona.Token, map[string]string{"Role": "King"}), 400)
	apiExpect(t, in.Do(t, "PATCH", base+"/"+zed.ID, mona.Token, nil), 400)
	apiExpect(t, in.Do(t, "PATCH", base+"/"+nobody.ID, mona.Token, map[string]string{"Role": "Member"}), 404)
	apiExpect(t, in.Do(t, "PATCH", base+"/"+alerts.ID, mona.Token, map[string]string{"Role": "Member"}), 404)
	apiExpect(t, in.Do(t, "PATCH", base+"/not-an-id", mona.Token, map[string]string{"Role": "Member"}), 404)
	apiExpect(t, in.Do(t, "DELETE", base+"/"+nobody.ID, mona.Token, nil), 404)

	// The last Administrator can neither step down nor leave.
	solo := in.CreateRoom(t, mona.Token, "Solo")
	soloBase := "/api/v1/rooms/" + solo + "/memberships"
	apiExpect(t, in.Do(t, "DELETE", soloBase+"/"+mona.ID, mona.Token, nil), 409)
	apiExpect(t, in.Do(t, "PATCH", soloBase+"/"+mona.ID, mona.Token, map[string]string{"Role": "Member"}), 409)
	apiExpect(t, in.Do(t, "DELETE", soloBase+"/"+mona.ID, in.AdminToken, nil), 409)
	// A member may leave; a member may not remove others.
	in.AddMember(t, mona.Token, solo, zed.ID, "Member")
	in.AddMember(t, mona.Token, solo, adam.ID, "Member")
	apiExpect(t, in.Do(t, "DELETE", soloBase+"/"+adam.ID, zed.Token, nil), 403)
	apiExpect(t, in.Do(t, "PATCH", soloBase+"/"+zed.ID, zed.Token, map[string]string{"Role": "Administrator"}), 403)
	apiExpect(t, in.Do(t, "DELETE", soloBase+"/"+zed.ID, zed.Token, nil), 204)
	apiExpect(t, in.Do(t, "GET", "/api/v1/rooms/"+solo, zed.Token, nil), 404)
	apiExpect(t, in.Do(t, "DELETE", soloBase+"/"+zed.ID, zed.Token, nil), 404)
	for _, e := range apiRoster(t, in, mona.Token, solo) {
		if e["Member"].(map[string]any)["MemberId"] == zed.ID {
			t.Error("a member who left is still in the roster")
		}
	}
	// With a second Administrator, the first may step down and leave.
	apiExpect(t, in.Do(t, "PATCH", soloBase+"/"+adam.ID, mona.Token, map[string]string{"Role": "Administrator"}), 200)
	apiExpect(t, in.Do(t, "PATCH", soloBase+"/"+mona.ID, mona.Token, map[string]string{"Role": "Member"}), 200)
	apiExpect(t, in.Do(t, "POST", soloBase, mona.Token, map[string]string{"MemberId": zed.ID, "Role": "Member"}), 403)
	apiExpect(t, in.Do(t, "DELETE", soloBase+"/"+mona.ID, mona.Token, nil), 204)
	apiExpect(t, in.Do(t, "DELETE", soloBase+"/"+adam.ID, adam.Token, nil), 409)
	// An administrator removes a member.
	in.AddMember(t, adam.Token, solo, zed.ID, "Member")
	apiExpect(t, in.Do(t, "DELETE", soloBase+"/"+zed.ID, adam.Token, nil), 204)
	if n := len(apiRoster(t, in, adam.Token, solo)); n != 1 {
		t.Errorf("roster has %d entries, want 1", n)
	}
}

// apiWebhookURLRE is the shape of a webhook URL on instance in.
func apiWebhookURLRE(in *apptest.Instance, id string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(in.URL+"/incomingwebhooks/"+id) + `\?token=[A-Za-z0-9]{72}$`)
}

// apiWebhook checks a {"Webhook": {...}} answer and returns the webhook.
func apiWebhook(t *testing.T, in *apptest.Instance, body map[string]any) map[string]any {
	t.Helper()
	apiKeys(t, body, "webhook answer", "Webhook")
	return apiCheckWebhook(t, in, body["Webhook"])
}

func apiCheckWebhook(t *testing.T, in *apptest.Instance, v any) map[string]any {
	t.Helper()
	w := apiKeys(t, v, "Webhook", "WebhookId", "RoomId", "Name", "Url", "CreatedTimestamp", "LastUsedTimestamp")
	id := apiID(t, w["WebhookId"], "WebhookId")
	apiTimestamp(t, w["CreatedTimestamp"], "CreatedTimestamp")
	if url, _ := w["Url"].(string); !apiWebhookURLRE(in, id).MatchString(url) {
		t.Errorf("Url %v is not %s/incomingwebhooks/%s?token=<72 alphanumerics>", w["Url"], in.URL, id)
	}
	return w
}

func TestAPIWebhooks(t *testing.T) {
	t.Parallel()
	// A generous webhook rate: this test posts to its URLs in quick succession.
	in := apptest.Start(t, apptest.Options{WebhookRate: 100, WebhookBurst: 100})
	admin := apiCreateUser(t, in, "Hook Admin", "")
	member := apiCreateUser(t, in, "Hook Member", "")
	room := in.CreateRoom(t, admin.Token, "Hooks")
	in.AddMember(t, admin.Token, room, member.ID, "Member")
	base := "/api/v1/rooms/" + room + "/webhooks"

	// Create.
	w := apiWebhook(t, in, apiExpect(t, in.Do(t, "POST", base, admin.Token, map[string]string{"Name": " CI "}), 201))
	id, url := w["WebhookId"].(string), w["Url"].(string)
	if w["RoomId"] != room || w["Name"] != "CI" || w["LastUsedTimestamp"] != nil {
		t.Errorf("webhook %v", w)
	}

	// LastUsedTimestamp is set after the first accepted post (it may lag
	// by up to 5 seconds).
	apptest.Must(t, in.Do(t, "POST", url, "", map[string]string{"Content": "first"}), 200)
	deadline := time.Now().Add(6 * time.Second)
	var lastUsed any
	for lastUsed == nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		var list struct{ Webhooks []map[string]any }
		in.Do(t, "GET", base, admin.Token, nil).Decode(t, &list)
		for _, h := range list.Webhooks {
			if h["WebhookId"] == id {
				lastUsed = h["LastUsedTimestamp"]
			}
		}
	}
	if lastUsed == nil {
		t.Error("LastUsedTimestamp still null 6 s after an accepted post")
	} else if apiTimestamp(t, lastUsed, "LastUsedTimestamp") < w["CreatedTimestamp"].(string) {
		t.Errorf("LastUsedTimestamp %v before CreatedTimestamp %v", lastUsed, w["CreatedTimestamp"])
	}

	// List, with Url.
	second := in.CreateWebhook(t, admin.Token, room, "Alerts")
	list := apiExpect(t, in.Do(t, "GET", base, admin.Token, nil), 200)
	apiKeys(t, list, "webhook list", "Webhooks")
	hooks := list["Webhooks"].([]any)
	if len(hooks) != 2 {
		t.Fatalf("webhooks %v, want 2", hooks)
	}
	for _, h := range hooks {
		h := apiCheckWebhook(t, in, h)
		if h["WebhookId"] == id && h["Url"] != url {
			t.Errorf("listed Url %v, want the one given at creation %v", h["Url"], url)
		}
	}
	apiExpect(t, in.Do(t, "GET", base, member.Token, nil), 403)

	// Names: 1 to 64 characters (characters, not bytes).
	for _, name := range []string{"", "   ", strings.Repeat("x", 65), strings.Repeat("é", 65)} {
		r := in.Do(t, "POST", base, admin.Token, map[string]string{"Name": name})
		if r.Status != 400 {
			t.Errorf("name of %d characters: status %d, want 400", len([]rune(name)), r.Status)
			continue
		}
		apiCheckBody(t, r)
	}
	apiExpect(t, in.Do(t, "POST", base, admin.Token, map[string]any{"Name": 12}), 400)

	// Rename.
	long := strings.Repeat("é", 64)
	w = apiWebhook(t, in, apiExpect(t, in.Do(t, "PATCH", base+"/"+id, admin.Token, map[string]string{"Name": long}), 200))
	if w["Name"] != long || w["Url"] != url || w["WebhookId"] != id {
		t.Errorf("renamed webhook %v", w)
	}
	apiExpect(t, in.Do(t, "PATCH", base+"/"+id, admin.Token, map[string]string{"Name": ""}), 400)
	apiExpect(t, in.Do(t, "PATCH", base+"/"+id, admin.Token, map[string]string{"Name": strings.Repeat("x", 65)}), 400)
	apiExpect(t, in.Do(t, "PATCH", base+"/"+id, admin.Token, map[string]string{"Name": "CI"}), 200)
	apiExpect(t, in.Do(t, "PATCH", base+"/00000000-0000-4000-8000-000000000000", admin.Token, map[string]string{"Name": "X"}), 404)

	// A webhook belongs to its room: another room's path does not reach it.
	elsewhere := in.CreateRoom(t, admin.Token, "Elsewhere")
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/rooms/"+elsewhere+"/webhooks/"+id, admin.Token, map[string]string{"Name": "Moved"}), 404)
	apiExpect(t, in.Do(t, "DELETE", "/api/v1/rooms/"+elsewhere+"/webhooks/"+id, admin.Token, nil), 404)

	// Regenerate: a new Url; the old one answers 404.
	w = apiWebhook(t, in, apiExpect(t, in.Do(t, "POST", base+"/"+id+"/regenerate", admin.Token, nil), 200))
	newURL := w["Url"].(string)
	if newURL == url || w["WebhookId"] != id || w["Name"] != "CI" {
		t.Errorf("regenerated webhook %v (old Url %s)", w, url)
	}
	apiExpect(t, in.Do(t, "POST", url, "", map[string]string{"Content": "old"}), 404)
	apptest.Must(t, in.Do(t, "POST", newURL, "", map[string]string{"Content": "new"}), 200)

	// Delete: 204; the URL answers 404; the webhook is gone from the list.
	apiExpect(t, in.Do(t, "DELETE", base+"/"+id, admin.Token, nil), 204)
	apiExpect(t, in.Do(t, "POST", newURL, "", map[string]string{"Content": "gone"}), 404)
	apiExpect(t, in.Do(t, "POST", url, "", map[string]string{"Content": "gone"}), 404)
	apiExpect(t, in.Do(t, "DELETE", base+"/"+id, admin.Token, nil), 404)
	apiExpect(t, in.Do(t, "PATCH", base+"/"+id, admin.Token, map[string]string{"Name": "Back"}), 404)
	apiExpect(t, in.Do(t, "POST", base+"/"+id+"/regenerate", admin.Token, nil), 404)
	var after struct{ Webhooks []struct{ WebhookId string } }
	in.Do(t, "GET", base, admin.Token, nil).Decode(t, &after)
	if len(after.Webhooks) != 1 || after.Webhooks[0].WebhookId != second.ID {
		t.Errorf("webhooks after delete %+v, want only %s", after.Webhooks, second.ID)
	}

	// At most 10 webhooks a room; deleted ones do not count.
	for i := len(after.Webhooks); i < 10; i++ {
		in.CreateWebhook(t, admin.Token, room, fmt.Sprintf("Hook %d", i))
	}
	apiExpect(t, in.Do(t, "POST", base, admin.Token, map[string]string{"Name": "Eleventh"}), 400, "ResourceLimitExceeded")
	apiExpect(t, in.Do(t, "POST", base, in.AdminToken, map[string]string{"Name": "Eleventh"}), 400, "ResourceLimitExceeded")
	apiExpect(t, in.Do(t, "DELETE", base+"/"+second.ID, admin.Token, nil), 204)
	apiExpect(t, in.Do(t, "POST", base, admin.Token, map[string]string{"Name": "Tenth again"}), 201)
}

func TestAPIAudit(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{})
	admin := apiCreateUser(t, in, "Audit Admin", "")
	member := apiCreateUser(t, in, "Audit Member", "")
	room := in.CreateRoom(t, admin.Token, "Audited")
	base := "/api/v1/rooms/" + room

	// Each action below leaves one audit event: {Action, TargetId}.
	type event struct{ Action, TargetID string }
	var want []event
	in.AddMember(t, admin.Token, room, member.ID, "Member")
	want = append(want, event{"MemberAdded", member.ID})
	apiExpect(t, in.Do(t, "PATCH", base+"/memberships/"+member.ID, admin.Token, map[string]string{"Role": "Administrator"}), 200)
	want = append(want, event{"RoleChanged", member.ID})
	hook := in.CreateWebhook(t, admin.Token, room, "Audited hook")
	want = append(want, event{"WebhookCreated", hook.ID})
	apiExpect(t, in.Do(t, "PATCH", base+"/webhooks/"+hook.ID, admin.Token, map[string]string{"Name": "Renamed"}), 200)
	want = append(want, event{"WebhookRenamed", hook.ID})
	apiExpect(t, in.Do(t, "POST", base+"/webhooks/"+hook.ID+"/regenerate", admin.Token, nil), 200)
	want = append(want, event{"WebhookRegenerated", hook.ID})
	apiExpect(t, in.Do(t, "DELETE", base+"/webhooks/"+hook.ID, admin.Token, nil), 204)
	want = append(want, event{"WebhookDeleted", hook.ID})
	apiExpect(t, in.Do(t, "DELETE", base+"/memberships/"+member.ID, admin.Token, nil), 204)
	want = append(want, event{"MemberRemoved", member.ID})
	// Refused actions leave nothing.
	apiExpect(t, in.Do(t, "DELETE", base+"/memberships/"+admin.ID, admin.Token, nil), 409)
	// Newest first.
	slices.Reverse(want)

	check := func(events []any, from int) {
		t.Helper()
		for i, e := range events {
			e := apiKeys(t, e, "AuditEvent", "AuditEventId", "Action", "ActorId", "TargetId", "CreatedTimestamp")
			apiID(t, e["AuditEventId"], "AuditEventId")
			apiTimestamp(t, e["CreatedTimestamp"], "CreatedTimestamp")
			if w := want[from+i]; e["Action"] != w.Action || e["TargetId"] != w.TargetID || e["ActorId"] != admin.ID {
				t.Errorf("event %d: %v, want %+v by %s", from+i, e, w, admin.ID)
			}
		}
	}
	all := apiExpect(t, in.Do(t, "GET", base+"/audit", admin.Token, nil), 200)
	apiKeys(t, all, "audit", "AuditEvents", "NextToken")
	if all["NextToken"] != nil || len(all["AuditEvents"].([]any)) != len(want) {
		t.Fatalf("audit %v, want %d events and no NextToken", all, len(want))
	}
	check(all["AuditEvents"].([]any), 0)

	// Paging: 3 + 3 + 1, NextToken null on the last page.
	var seen []string
	next := ""
	for page := 0; ; page++ {
		path := base + "/audit?MaxResults=3"
		if next != "" {
			path += "&NextToken=" + next
		}
		p := apiExpect(t, in.Do(t, "GET", path, admin.Token, nil), 200)
		events := p["AuditEvents"].([]any)
		check(events, len(seen))
		for _, e := range events {
			seen = append(seen, e.(map[string]any)["AuditEventId"].(string))
		}
		if p["NextToken"] == nil {
			break
		}
		next = p["NextToken"].(string)
		if page > len(want) {
			t.Fatal("paging does not end")
		}
	}
	if len(seen) != len(want) || len(slices.Compact(slices.Sorted(slices.Values(seen)))) != len(want) {
		t.Errorf("paged through %v, want %d distinct events", seen, len(want))
	}

	for _, q := range []string{"MaxResults=0", "MaxResults=101", "MaxResults=x", "NextToken=nope",
		"NextToken=00000000-0000-4000-8000-000000000000"} {
		r := in.Do(t, "GET", base+"/audit?"+q, admin.Token, nil)
		if r.Status != 400 {
			t.Errorf("audit?%s: status %d, want 400", q, r.Status)
			continue
		}
		apiCheckBody(t, r)
	}
	// A NextToken of another room's log is not valid here.
	other := in.CreateRoom(t, admin.Token, "Other")
	in.CreateWebhook(t, admin.Token, other, "x")
	in.CreateWebhook(t, admin.Token, other, "y")
	var otherPage struct{ NextToken string }
	in.Do(t, "GET", "/api/v1/rooms/"+other+"/audit?MaxResults=1", admin.Token, nil).Decode(t, &otherPage)
	apiExpect(t, in.Do(t, "GET", base+"/audit?NextToken="+otherPage.NextToken, admin.Token, nil), 400)
}

func TestAPIMessages(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{})
	alice := apiCreateUser(t, in, "Alice Able", "")
	bob := apiCreateUser(t, in, "Bob Baker", "")
	room := in.CreateRoom(t, alice.Token, "Chat")
	in.AddMember(t, alice.Token, room, bob.ID, "Member")
	hook := in.CreateWebhook(t, alice.Token, room, "Deploys")
	base := "/api/v1/rooms/" + room + "/messages"

	// Post: 201 {MessageId, RoomId}. Seven messages, alternating senders so
	// that nobody comes near the 5-per-second limit.
	var ids []string
	for i := range 7 {
		token := alice.Token
		if i%2 == 1 {
			token = bob.Token
		}
		r := in.Do(t, "POST", base, token, map[string]string{"Content": fmt.Sprintf("message %d", i)})
		out := apiKeys(t, apiExpect(t, r, 201), "post answer", "MessageId", "RoomId")
		if out["RoomId"] != room {
			t.Errorf("RoomId %v", out["RoomId"])
		}
		ids = append(ids, apiID(t, out["MessageId"], "MessageId"))
	}

	list := func(t *testing.T, query string) ([]string, any) {
		t.Helper()
		r := in.Do(t, "GET", base+query, bob.Token, nil)
		out := apiKeys(t, apiExpect(t, r, 200), "listing", "Messages", "NextToken")
		var got []string
		for _, m := range out["Messages"].([]any) {
			got = append(got, m.(map[string]any)["MessageId"].(string))
		}
		return got, out["NextToken"]
	}
	desc := slices.Clone(ids)
	slices.Reverse(desc)

	// Default: DESCENDING, up to 50, NextToken null at the end.
	if got, next := list(t, ""); !slices.Equal(got, desc) || next != nil {
		t.Errorf("default listing %v (NextToken %v), want %v, null", got, next, desc)
	}
	if got, _ := list(t, "?SortOrder=DESCENDING&MaxResults=100"); !slices.Equal(got, desc) {
		t.Errorf("DESCENDING %v, want %v", got, desc)
	}
	if got, next := list(t, "?SortOrder=ASCENDING"); !slices.Equal(got, ids) || next != nil {
		t.Errorf("ASCENDING %v (NextToken %v), want %v, null", got, next, ids)
	}

	// Paging by 3 gives every message once, in order.
	for _, tc := range []struct {
		order string
		want  []string
	}{{"DESCENDING", desc}, {"ASCENDING", ids}} {
		var all []string
		next := ""
		pages := 0
		for {
			q := "?MaxResults=3&SortOrder=" + tc.order
			if next != "" {
				q += "&NextToken=" + next
			}
			got, tok := list(t, q)
			pages++
			if len(got) > 3 {
				t.Fatalf("%s page %d has %d messages", tc.order, pages, len(got))
			}
			all = append(all, got...)
			if tok == nil {
				break
			}
			next = tok.(string)
			if pages > 5 {
				t.Fatalf("%s: paging does not end", tc.order)
			}
		}
		if !slices.Equal(all, tc.want) || pages != 3 {
			t.Errorf("%s paging: %v in %d pages, want %v in 3", tc.order, all, pages, tc.want)
		}
	}
	// When the last page is exactly full, NextToken may be non-null once;
	// the page after it is empty and ends the listing.
	if _, tok := list(t, "?MaxResults=7"); tok != nil {
		got, next := list(t, "?MaxResults=7&NextToken="+tok.(string))
		if len(got) != 0 || next != nil {
			t.Errorf("page after a full last page: %v, NextToken %v", got, next)
		}
	}

	// Bad parameters.
	_, ascTok := list(t, "?SortOrder=ASCENDING&MaxResults=2")
	for _, q := range []string{"MaxResults=0", "MaxResults=101", "MaxResults=x", "MaxResults=-1", "MaxResults=1.5",
		"NextToken=garbage", "NextToken=!!!", "NextToken=AAAAAAAAAAAA", "SortOrder=sideways",
		"NextToken=" + ascTok.(string)} { // a token of the other order
		r := in.Do(t, "GET", base+"?"+q, bob.Token, nil)
		if r.Status != 400 {
			t.Errorf("?%s: status %d, want 400: %s", q, r.Status, r.Body)
			continue
		}
		apiCheckBody(t, r)
	}

	// The message shape, for a user message and a webhook message.
	apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "deployed"}), 200)
	// DisplayName is fixed when the message is posted.
	apiExpect(t, in.Do(t, "PATCH", "/api/v1/users/me", alice.Token, map[string]string{"FullName": "Alice Renamed"}), 200)
	msgs := in.Messages(t, bob.Token, room)
	if len(msgs) != 8 {
		t.Fatalf("%d messages, want 8", len(msgs))
	}
	prev := ""
	for i, m := range msgs {
		what := fmt.Sprintf("message %d", i)
		apiKeys(t, m, what, "MessageId", "RoomId", "Content", "Format", "Html", "Sender", "DisplayName", "Mentions", "CreatedTimestamp")
		sender := apiKeys(t, m["Sender"], what+" Sender", "SenderId", "SenderType", "Name")
		mentions := apiKeys(t, m["Mentions"], what+" Mentions", "All", "Present", "MemberIds")
		if ids, ok := mentions["MemberIds"].([]any); !ok || len(ids) != 0 || mentions["All"] != false || mentions["Present"] != false {
			t.Errorf("%s: Mentions %v, want none (MemberIds [])", what, mentions)
		}
		ts := apiTimestamp(t, m["CreatedTimestamp"], what)
		if ts < prev {
			t.Errorf("%s: CreatedTimestamp %s before the previous message's %s", what, ts, prev)
		}
		prev = ts
		if m["RoomId"] != room || m["Format"] != "Plain" || m["Html"] == "" {
			t.Errorf("%s: %v", what, m)
		}
		switch {
		case i < 7 && i%2 == 0:
			if sender["SenderId"] != alice.ID || sender["SenderType"] != "User" || sender["Name"] != "Alice Able" || m["DisplayName"] != "Alice Able" {
				t.Errorf("%s by Alice: Sender %v, DisplayName %v", what, sender, m["DisplayName"])
			}
			if m["Content"] != fmt.Sprintf("message %d", i) {
				t.Errorf("%s: Content %v", what, m["Content"])
			}
		case i < 7:
			if sender["SenderId"] != bob.ID || sender["SenderType"] != "User" || sender["Name"] != "Bob Baker" || m["DisplayName"] != "Bob Baker" {
				t.Errorf("%s by Bob: Sender %v, DisplayName %v", what, sender, m["DisplayName"])
			}
		default:
			if sender["SenderId"] != hook.ID || sender["SenderType"] != "Webhook" || sender["Name"] != "Deploys" || m["DisplayName"] != "Deploys (Webhook)" {
				t.Errorf("webhook message: Sender %v, DisplayName %v", sender, m["DisplayName"])
			}
		}
	}
	// A user message after the rename carries the new name.
	apiPost(t, in, alice.Token, room, "renamed")
	latest := in.Messages(t, bob.Token, room)
	if m := latest[len(latest)-1]; m["DisplayName"] != "Alice Renamed" || m["Sender"].(map[string]any)["Name"] != "Alice Renamed" {
		t.Errorf("message after the rename: DisplayName %v, Sender %v; want Alice Renamed", m["DisplayName"], m["Sender"])
	}

	// Content rules: 4096 bytes of UTF-8 at most, not blank.
	carol := apiCreateUser(t, in, "Carol Clark", "")
	in.AddMember(t, alice.Token, room, carol.ID, "Member")
	apiExpect(t, in.Do(t, "POST", base, carol.Token, map[string]string{"Content": strings.Repeat("x", 4097)}), 413)
	apiExpect(t, in.Do(t, "POST", base, carol.Token, map[string]string{"Content": strings.Repeat("é", 2048) + "x"}), 413)
	for _, body := range []any{
		map[string]string{"Content": ""},
		map[string]string{"Content": " \n\t "},
		map[string]string{"Content": "/md   "},
		map[string]string{"Text": "hello"},
		map[string]any{"Content": 5},
		map[string]any{"Content": nil},
		"not JSON",
		`["Content"]`,
	} {
		r := in.Do(t, "POST", base, carol.Token, body)
		if r.Status != 400 {
			t.Errorf("post %v: status %d, want 400: %s", body, r.Status, r.Body)
			continue
		}
		apiCheckBody(t, r)
	}
	apiPost(t, in, carol.Token, room, strings.Repeat("é", 2048)) // exactly 4096 bytes

	// Rate limit: 5 messages per second per user; the 6th within the
	// second → 429 with Retry-After. Timed so that a slow machine cannot
	// turn a refill into a false failure: 6 posts inside 200 ms must see a
	// 429 (a token refills every 200 ms).
	dave := apiCreateUser(t, in, "Dave Davis", "")
	in.AddMember(t, alice.Token, room, dave.ID, "Member")
	for attempt := 0; ; attempt++ {
		start := time.Now()
		var statuses []int
		var throttled *apptest.Response
		for range 6 {
			r := in.Do(t, "POST", base, dave.Token, map[string]string{"Content": "quick"})
			statuses = append(statuses, r.Status)
			if r.Status == 429 {
				throttled = r
				break
			}
		}
		elapsed := time.Since(start)
		if throttled != nil {
			apiCheckBody(t, throttled)
			if n, err := strconv.Atoi(throttled.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("Retry-After %q, want a whole number of seconds ≥ 1", throttled.Header.Get("Retry-After"))
			}
			if !slices.Equal(statuses, []int{201, 201, 201, 201, 201, 429}) {
				t.Errorf("statuses %v, want five 201 then 429", statuses)
			}
			break
		}
		if elapsed < 200*time.Millisecond || attempt == 2 {
			t.Fatalf("six posts in %v: statuses %v, want the 6th refused with 429", elapsed, statuses)
		}
		t.Logf("six posts took %v; trying again after the bucket refills", elapsed)
		time.Sleep(1100 * time.Millisecond)
	}
}
