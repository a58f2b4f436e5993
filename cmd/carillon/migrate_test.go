package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// postWithKey posts to a webhook with an Idempotency-Key.
func postWithKey(t *testing.T, url, content, key string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"Content": content})
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Idempotency-Key", key)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	var ack struct{ MessageId string }
	json.NewDecoder(resp.Body).Decode(&ack)
	return resp.StatusCode, ack.MessageId
}

// TestMigrateStorageToPostgres runs a single node on SQLite, fills it
// (users with passwords and tokens, rooms, webhooks regenerated and
// deleted, a deleted room, messages with mentions, notifications read and
// unread, idempotency keys, audit events), copies it into PostgreSQL with
// `carillon migrate-storage`, starts a server on PostgreSQL with the same
// secret key, and checks that everything reads back the same: messages in
// the same order with the same ids and seqs, the API's answers byte for
// byte, old webhook URLs still posting (and the next message getting the
// next seq), tombstones still 404, tokens and passwords still working.
// The copy is refused while the server runs and into a database that is
// not empty.
func TestMigrateStorageToPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dsn, _ := clusterDeps(t)
	dataDir := t.TempDir()
	rate := []string{"--webhook-rate", "100000", "--webhook-burst", "100000", "--drain-delay", "0s"}
	p := startServer(t, dataDir, rate...)
	api := p.url + "/api/v1"

	const annPassword = "correct horse battery staple"
	var ann struct {
		User  struct{ UserId string }
		Token string
	}
	if s := apiDo(t, "POST", api+"/users", map[string]string{"Email": "Ann@Example.com", "FullName": "Ann Example", "Alias": "ann", "Password": annPassword}, &ann); s != 201 {
		t.Fatalf("create user: %d", s)
	}
	var bob struct{ Token string }
	if s := apiDo(t, "POST", api+"/users", map[string]string{"Email": "bob@example.com", "FullName": "Bob"}, &bob); s != 201 {
		t.Fatalf("create user: %d", s)
	}
	roomID, hookURL := setupWebhook(t, p.url)
	room := api + "/rooms/" + roomID
	for _, email := range []string{"Ann@Example.com", "bob@example.com"} {
		if s := apiDo(t, "POST", room+"/memberships", map[string]string{"Email": email, "Role": "Member"}, nil); s != 201 {
			t.Fatalf("add member: %d", s)
		}
	}
	// Tombstones: a regenerated webhook, a deleted one, a deleted room.
	webhookID := func(url string) string {
		return strings.TrimPrefix(url[strings.Index(url, "/incomingwebhooks/"):strings.Index(url, "?")], "/incomingwebhooks/")
	}
	_, regenerated := setupWebhookOn(t, p.url, roomID)
	if s := apiDo(t, "POST", room+"/webhooks/"+webhookID(regenerated)+"/regenerate", nil, nil); s != 200 {
		t.Fatalf("regenerate: %d", s)
	}
	_, deleted := setupWebhookOn(t, p.url, roomID)
	if s := apiDo(t, "DELETE", room+"/webhooks/"+webhookID(deleted), nil, nil); s != 204 {
		t.Fatalf("delete webhook: %d", s)
	}
	goneRoom, goneHook := setupWebhook(t, p.url)
	if s := apiDo(t, "DELETE", api+"/rooms/"+goneRoom, nil, nil); s != 204 {
		t.Fatalf("delete room: %d", s)
	}

	// Messages: through the webhook, with mentions, and by users.
	for i := 0; i < 25; i++ {
		if s := postJSON(t, hookURL, fmt.Sprintf(`{"Content":"alert %d :)"}`, i), nil); s != 200 {
			t.Fatalf("post: %d", s)
		}
	}
	if s := postJSON(t, hookURL, `{"Content":"/md **deploy** done, @ann please check :tada:"}`, nil); s != 200 {
		t.Fatalf("post: %d", s)
	}
	s, keyed := postWithKey(t, hookURL, "exactly once", "retry-key-1")
	if s != 200 {
		t.Fatalf("post with an idempotency key: %d", s)
	}
	if s, body := apiAs(t, bob.Token, "POST", room+"/messages", map[string]string{"Content": "@All standup in 5, @ann@example.com too"}); s != 201 {
		t.Fatalf("bob posts: %d %s", s, body)
	}
	var last struct{ MessageId string }
	if s := postJSON(t, hookURL, `{"Content":"/code exit 1"}`, &last); s != 200 {
		t.Fatalf("post: %d", s)
	}
	// Ann reads her first notification and the room up to the last message
	// but one: read flags and unread counts must survive.
	var notes struct {
		Notifications []struct{ NotificationId string }
	}
	if s, body := apiAs(t, ann.Token, "GET", api+"/notifications", nil); s != 200 || json.Unmarshal(body, &notes) != nil || len(notes.Notifications) != 2 {
		t.Fatalf("ann's notifications: %d %s", s, body)
	}
	if s, _ := apiAs(t, ann.Token, "POST", api+"/notifications/read", map[string]any{"NotificationIds": []string{notes.Notifications[1].NotificationId}}); s != 204 {
		t.Fatalf("mark read: %d", s)
	}
	var page struct{ Messages []struct{ MessageId string } }
	if s := apiDo(t, "GET", room+"/messages?MaxResults=2", nil, &page); s != 200 || len(page.Messages) != 2 {
		t.Fatalf("messages: %d", s)
	}
	if s, _ := apiAs(t, ann.Token, "POST", room+"/read", map[string]string{"MessageId": page.Messages[1].MessageId}); s != 204 {
		t.Fatalf("read room: %d", s)
	}
	// Ann is also signed in to the web app.
	cookie := passwordLogin(t, p, "ann@example.com", annPassword)
	if cookie == nil {
		t.Fatal("ann's password login failed")
	}

	// What the API answers, to compare after the move. Webhook URLs are
	// compared without the server's address (it changes); their
	// LastUsedTimestamp may lag and is left out.
	snapshot := func(p *proc) map[string]string {
		t.Helper()
		api := p.url + "/api/v1"
		out := map[string]string{}
		for _, c := range []struct{ who, token, path string }{
			{"admin", adminToken, "/users/me"},
			{"admin", adminToken, "/rooms"},
			{"admin", adminToken, "/rooms/" + roomID + "/messages?SortOrder=ASCENDING&MaxResults=100"},
			{"admin", adminToken, "/rooms/" + roomID + "/memberships"},
			{"admin", adminToken, "/rooms/" + roomID + "/audit?MaxResults=100"},
			{"admin", adminToken, "/rooms/" + roomID + "/webhooks"},
			{"ann", ann.Token, "/users/me"},
			{"ann", ann.Token, "/rooms"},
			{"ann", ann.Token, "/notifications"},
			{"bob", bob.Token, "/rooms"},
		} {
			s, body := apiAs(t, c.token, "GET", api+c.path, nil)
			if s != 200 {
				t.Fatalf("%s GET %s: %d %s", c.who, c.path, s, body)
			}
			if strings.HasSuffix(c.path, "/webhooks") {
				var v struct{ Webhooks []map[string]any }
				json.Unmarshal(body, &v)
				for _, w := range v.Webhooks {
					delete(w, "LastUsedTimestamp")
					if u, ok := w["Url"].(string); ok {
						w["Url"] = u[strings.Index(u, "/incomingwebhooks/"):]
					}
				}
				body, _ = json.Marshal(v)
			}
			out[c.who+" "+c.path] = string(body)
		}
		return out
	}
	before := snapshot(p)
	total := len(allMessageIDs(t, p.url, roomID))
	messages := replayMessages(t, p.url, adminToken, roomID, 0, total)
	if messages[len(messages)-1].ID != last.MessageId {
		t.Fatalf("the newest message is %v, want %s", messages[len(messages)-1], last.MessageId)
	}

	// Refused while the server has the database open.
	_, errOut, err := runCLI(t, "", "migrate-storage", "--data", dataDir, "--database", dsn)
	if err == nil || !strings.Contains(errOut, "stop the carillon server first") {
		t.Fatalf("migrate-storage while the server runs: err %v, stderr %q", err, errOut)
	}
	p.stop(t)

	start := time.Now()
	out, errOut, err := runCLI(t, "", "migrate-storage", "--data", dataDir, "--database", dsn)
	if err != nil {
		t.Fatalf("migrate-storage: %v\n%s%s", err, out, errOut)
	}
	t.Logf("migrate-storage took %v:\n%s", time.Since(start), out)
	if !regexp.MustCompile(fmt.Sprintf(`(?m)^\s*messages\s+%d$`, total)).MatchString(out) || !strings.Contains(out, fmt.Sprintf("next message gets seq %d.", messages[len(messages)-1].Seq+1)) {
		t.Fatalf("summary does not match %d messages:\n%s", total, out)
	}
	// A second copy into the same database is refused, and changes nothing.
	if _, errOut, err := runCLI(t, "", "migrate-storage", "--data", dataDir, "--database", dsn); err == nil || !strings.Contains(errOut, "not empty") {
		t.Fatalf("second migrate-storage: err %v, stderr %q", err, errOut)
	}

	// The same secret key, given as every node of a cluster gets it.
	p = startServer(t, t.TempDir(), append([]string{"--database", dsn, "--secret-key-file", filepath.Join(dataDir, "secret.key")}, rate...)...)
	after := snapshot(p)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s after the move:\n%s\nbefore:\n%s", k, after[k], v)
		}
	}
	moved := replayMessages(t, p.url, adminToken, roomID, 0, total)
	for i := range messages {
		if moved[i] != messages[i] {
			t.Fatalf("message %d is %v after the move, was %v", i, moved[i], messages[i])
		}
	}

	// Old webhook URLs: the current one posts and the message gets the
	// next seq; tombstones still answer 404, a token that never matched 403.
	newest := messages[len(messages)-1].Seq
	if _, seq := postAndSeq(t, p, hookURL, roomID, newest); seq != newest+1 {
		t.Fatalf("the first message on PostgreSQL got seq %d, want %d", seq, newest+1)
	}
	for what, u := range map[string]string{"regenerated": regenerated, "deleted": deleted, "in a deleted room": goneHook} {
		if s := postJSON(t, onServer(p, u), `{"Content":"x"}`, nil); s != 404 {
			t.Errorf("old URL of a webhook %s: %d, want 404", what, s)
		}
	}
	forged := onServer(p, hookURL)
	forged = forged[:strings.Index(forged, "token=")+len("token=")] + strings.Repeat("A", 72)
	if s := postJSON(t, forged, `{"Content":"x"}`, nil); s != 403 {
		t.Errorf("a token that never matched: %d, want 403", s)
	}
	// The idempotency key holds across the move.
	if s, id := postWithKey(t, onServer(p, hookURL), "exactly once", "retry-key-1"); s != 200 || id != keyed {
		t.Errorf("repeat of an idempotency key: %d %s, want 200 %s", s, id, keyed)
	}

	// Tokens and passwords.
	if s := apiDo(t, "GET", p.url+"/api/v1/users/me", nil, nil); s != 200 {
		t.Errorf("admin token: %d", s)
	}
	if s, _ := apiAs(t, bob.Token, "GET", p.url+"/api/v1/users/me", nil); s != 200 {
		t.Errorf("bob's API token: %d", s)
	}
	if passwordLogin(t, p, "ann@example.com", annPassword) == nil {
		t.Errorf("ann's password login failed")
	}
	if passwordLogin(t, p, "ann@example.com", "not her password") != nil {
		t.Errorf("a wrong password was accepted")
	}
	// Her web session goes on.
	req, _ := http.NewRequest("GET", p.url+"/api/v1/users/me", nil)
	req.AddCookie(cookie)
	if resp, err := client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("ann's session cookie after the move: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// passwordLogin signs in with a password and returns the session cookie, or nil
// when the login is refused.
func passwordLogin(t *testing.T, p *proc, email, password string) *http.Cookie {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"Email": email, "Password": password})
	resp, err := client.Post(p.url+"/api/v1/sessions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil
	}
	if c := resp.Cookies(); len(c) > 0 {
		return c[0]
	}
	t.Fatal("login answered 200 without a cookie")
	return nil
}
