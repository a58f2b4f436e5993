package server_test

// Secrets never reach the log (issue 5, item 8; SPEC §1 "The token never
// appears in logs"). A server logs to a buffer, at debug level, while it
// sees every kind of secret on the wire: webhook tokens (valid, invalid,
// regenerated), API tokens (valid and not), passwords and session cookies,
// in successful requests, refused ones and 503s (the requests that are
// logged). Afterwards the log must hold none of them, in any of the forms
// they travelled in.
//
// Helpers here are prefixed "lr".

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/carillon-chat/carillon/apptest"
	"github.com/carillon-chat/carillon/secret"
	"github.com/carillon-chat/carillon/sqlite"
)

// lrBuffer is a log destination safe for the server's concurrent writes.
type lrBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lrBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lrBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lrLockDatabase holds the database's write lock from another connection
// until the returned function is called (see TestStorageLockedAnswers503AndRecovers).
func lrLockDatabase(t *testing.T, in *apptest.Instance) (unlock func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(in.DataDir, sqlite.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	var log lrBuffer
	in := apptest.Start(t, apptest.Options{WebhookRate: 100, WebhookBurst: 100, LogWriter: &log})

	// Every secret the server will see.
	var secrets []string
	keep := func(s ...string) { secrets = append(secrets, s...) }
	const password = "correct horse battery staple"
	const newPassword = "tr0ub4dor&3 but longer"
	user := in.CreateUser(t, password)
	keep(in.AdminToken, user.Token, password, newPassword)
	room := in.CreateRoom(t, user.Token, "Secrets")
	h := whAddHook(t, in, room, "Secret hook")
	old := h
	h = whRegenerate(t, in, h)
	wrongToken := secret.NewWebhookToken() // token-shaped, never issued
	wrongAPIToken := "not-a-valid-token-" + secret.RandomString(32)
	keep(old.Token, h.Token, wrongToken, wrongAPIToken)

	// Webhook posts: accepted, forbidden, gone, token in odd places.
	whWantOK(t, whPost(t, in, h.Path(), whContent("hello")), room)
	whWantError(t, whPost(t, in, whPath(h.ID, wrongToken), whContent("x")), 403, "Forbidden")
	whWantError(t, whPost(t, in, old.Path(), whContent("x")), 404, "NotFound")
	whWantError(t, whPost(t, in, h.Path(), "not json"), 400, "BadRequest")
	whPost(t, in, "/incomingwebhooks/"+h.ID+"/"+h.Token, whContent("token in the path"))
	whPost(t, in, "/incomingwebhooks/"+h.ID+"?x=1&token="+h.Token+"&again="+h.Token, whContent("token twice"))
	in.Do(t, "GET", h.Path(), "", nil)

	// The API with bearer tokens, good and bad.
	apptest.Must(t, in.Do(t, "GET", "/api/v1/users/me", user.Token, nil), 200)
	apptest.Must(t, in.Do(t, "GET", "/api/v1/users/me", wrongAPIToken, nil), 401)
	apptest.Must(t, in.Do(t, "GET", "/api/v1/rooms/"+room+"/webhooks", in.AdminToken, nil), 200)
	apptest.Must(t, in.Do(t, "GET", "/api/v1/no-such-endpoint?token="+h.Token, user.Token, nil), 404)

	// Logging in with a password, using and ending the session.
	login := in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": user.Email, "Password": password})
	apptest.Must(t, login, 200)
	var session string
	for _, c := range (&http.Response{Header: login.Header}).Cookies() {
		if c.Value != "" {
			session = c.Value
		}
	}
	if session == "" {
		t.Fatal("no session cookie")
	}
	keep(session)
	cookie := "carillon_session=" + session
	apptest.Must(t, in.Do(t, "GET", "/api/v1/users/me", "", nil, "Cookie", cookie), 200)
	apptest.Must(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": user.Email, "Password": newPassword}), 401)
	apptest.Must(t, in.Do(t, "PATCH", "/api/v1/users/me", user.Token, map[string]string{"CurrentPassword": password, "Password": newPassword}), 200)

	// 503s, which are logged: the database's write lock is held. Each
	// waits out the store's busy timeout, so they run side by side.
	unlock := lrLockDatabase(t, in)
	var wg sync.WaitGroup
	for _, req := range []struct {
		method, path, token string
		body                any
		headers             []string
	}{
		{"POST", h.Path() + "&also=" + h.Token, "", whContent("while locked"), nil},
		{"POST", "/api/v1/sessions", "", map[string]string{"Email": user.Email, "Password": newPassword}, nil},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := in.Try(req.method, req.path, req.token, req.body, req.headers...)
			if err != nil || r.Status != 503 {
				t.Errorf("%s %s while locked: %v %v, want 503", req.method, req.path, err, r)
			}
		}()
	}
	wg.Wait()
	unlock()

	in.Stop() // flushes nothing but ends every writer of the log
	got := log.String()
	// The test means something only if requests were logged at all.
	for _, want := range []string{"webhook post not stored", "service unavailable", "/incomingwebhooks/" + h.ID} {
		if !strings.Contains(got, want) {
			t.Fatalf("the log lacks %q, so this test proves nothing; the log:\n%s", want, got)
		}
	}
	for _, s := range secrets {
		for _, form := range []string{s, url.QueryEscape(s), s[:len(s)/2], s[len(s)/2:]} {
			if strings.Contains(got, form) {
				t.Errorf("the log holds a secret (or half of one), %q:\n%s", form, got)
			}
		}
	}
	t.Logf("%d secrets checked against %d lines of log", len(secrets), strings.Count(got, "\n"))
}
