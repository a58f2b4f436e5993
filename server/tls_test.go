package server_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

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
	// An HTTP/1.1 stream (its connection hijacked) and an HTTP/2 one (kept
	// in the handler) both get the message.
	h1 := in.OpenStream(t, in.AdminToken, "")
	h2 := openHTTP2Stream(t, in)
	posted := apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "over TLS"}), 200)
	var ack struct{ MessageId string }
	posted.Decode(t, &ack)
	if ev := h1.Next(t, eventWait, "message"); !strings.Contains(ev.Data, ack.MessageId) {
		t.Fatalf("HTTP/1.1 stream got %s", ev.Data)
	}
	select {
	case data := <-h2:
		if !strings.Contains(data, ack.MessageId) {
			t.Fatalf("HTTP/2 stream got %s", data)
		}
	case <-time.After(eventWait):
		t.Fatal("the HTTP/2 stream did not get the message")
	}

	u := in.CreateUser(t, "correct horse battery")
	r := apptest.Must(t, in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": u.Email, "Password": "correct horse battery"}), 200)
	cookie := r.Header.Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(cookie, attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
}

// openHTTP2Stream opens the admin's event stream over HTTP/2 and sends the
// data of its message events.
func openHTTP2Stream(t *testing.T, in *apptest.Instance) <-chan string {
	t.Helper()
	tr := in.Client.Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = true
	t.Cleanup(tr.CloseIdleConnections)
	req, _ := http.NewRequest("GET", in.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+in.AdminToken)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("event stream over TLS: %d %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	out := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		message := false
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "event: message":
				message = true
			case message && strings.HasPrefix(line, "data: "):
				out <- line
				message = false
			}
		}
	}()
	return out
}
