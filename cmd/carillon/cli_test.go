package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runCLI runs the carillon binary with the admin token in its environment.
func runCLI(t *testing.T, server string, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "CARILLON_SERVER="+server, "CARILLON_TOKEN="+adminToken)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestAdminCommandsAndPost drives the scriptable subcommands against a
// running server: create a room and a webhook, post to it with `carillon
// post`, regenerate it, and see the old URL refused with the server's
// message and a non-zero exit.
func TestAdminCommandsAndPost(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	p := startServer(t, t.TempDir())
	out, errOut, err := runCLI(t, p.url, "rooms", "create", "Scripts")
	if err != nil {
		t.Fatalf("rooms create: %v\n%s", err, errOut)
	}
	var room struct{ Room struct{ RoomId string } }
	json.Unmarshal([]byte(out), &room)
	out, errOut, err = runCLI(t, p.url, "webhooks", "create", room.Room.RoomId, "Nightly")
	if err != nil {
		t.Fatalf("webhooks create: %v\n%s", err, errOut)
	}
	var hook struct {
		Webhook struct{ WebhookId, Url string }
	}
	json.Unmarshal([]byte(out), &hook)
	if !strings.Contains(hook.Webhook.Url, "/incomingwebhooks/") {
		t.Fatalf("webhook %s", out)
	}

	out, errOut, err = runCLI(t, p.url, "post", hook.Webhook.Url, "build passed :tada:")
	if err != nil || !strings.Contains(out, `"MessageId"`) {
		t.Fatalf("post: %v\n%s%s", err, out, errOut)
	}

	if _, errOut, err = runCLI(t, p.url, "webhooks", "regenerate", room.Room.RoomId, hook.Webhook.WebhookId); err != nil {
		t.Fatalf("regenerate: %v\n%s", err, errOut)
	}
	_, errOut, err = runCLI(t, p.url, "post", hook.Webhook.Url, "after regenerate")
	if err == nil || !strings.Contains(errOut, "regenerated or deleted") {
		t.Fatalf("post to the old URL: err %v, stderr %q", err, errOut)
	}

	if _, errOut, err = runCLI(t, p.url, "users", "create", "ops@example.com", "--name", "Ops"); err != nil {
		t.Fatalf("users create: %v\n%s", err, errOut)
	}
	if _, errOut, err = runCLI(t, p.url, "rooms", "add-member", room.Room.RoomId, "ops@example.com"); err != nil {
		t.Fatalf("rooms add-member: %v\n%s", err, errOut)
	}
}
