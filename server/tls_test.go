package server_test

import (
	"strings"
	"testing"

	"github.com/carillon-chat/carillon/apptest"
)

// TestServesTLS runs the server on HTTPS with a self-signed certificate:
// webhook URLs use https, posts work, and the session cookie is Secure.
func TestServesTLS(t *testing.T) {
	in := apptest.Start(t, apptest.Options{TLS: true})
	if !strings.HasPrefix(in.URL, "https://") {
		t.Fatalf("URL %s", in.URL)
	}
	room := in.CreateRoom(t, in.AdminToken, "Secure")
	hook := in.CreateWebhook(t, in.AdminToken, room, "CI")
	if !strings.HasPrefix(hook.URL, "https://") {
		t.Fatalf("webhook URL %s is not https", hook.URL)
	}
	apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "over TLS"}), 200)

	u := in.CreateUser(t, "correct horse battery")
	r := apptest.Must(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": u.Email, "Password": "correct horse battery"}), 200)
	cookie := r.Header.Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
}
