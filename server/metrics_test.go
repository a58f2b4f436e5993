package server_test

import (
	"strings"
	"testing"

	"github.com/carillon-chat/carillon/apptest"
)

func TestMetrics(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	room := in.CreateRoom(t, in.AdminToken, "Metrics")
	hook := in.CreateWebhook(t, in.AdminToken, room, "CI")
	apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "one"}), 200)
	apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "two"}), 429)
	user := in.CreateUser(t, "")

	if r := in.Do(t, "GET", "/metrics", "", nil); r.Status != 401 || r.Code() != "Unauthorized" {
		t.Fatalf("anonymous scrape: %d %s", r.Status, r.Body)
	}
	if r := in.Do(t, "GET", "/metrics", user.Token, nil); r.Status != 403 {
		t.Fatalf("scrape by a user: %d %s", r.Status, r.Body)
	}
	body := string(apptest.Must(t, in.Do(t, "GET", "/metrics", in.AdminToken, nil), 200).Body)
	for _, want := range []string{
		`carillon_http_requests_total{code="200",route="POST /incomingwebhooks/{WebhookId}"} 1`,
		`carillon_http_requests_total{code="429",route="POST /incomingwebhooks/{WebhookId}"} 1`,
		`carillon_messages_stored_total 1`,
		`carillon_throttled_total{sender="Webhook"} 1`,
		`carillon_commit_batch_messages_count 1`,
		`carillon_event_streams 0`,
		`carillon_http_request_duration_seconds_bucket{route="POST /incomingwebhooks/{WebhookId}",le="+Inf"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Log(body)
	}
}
