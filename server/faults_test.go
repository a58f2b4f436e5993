package server_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/carillon-chat/carillon/apptest"
	"github.com/carillon-chat/carillon/sqlite"
)

// TestStorageLockedAnswers503AndRecovers holds the database's write lock from
// another connection (as another process would): webhook posts get 503 with
// Retry-After and a clear message, never a 200 or a 500, /readyz fails; once
// the lock is released the server serves again without a restart.
func TestStorageLockedAnswers503AndRecovers(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: 100, WebhookBurst: 100})
	room := in.CreateRoom(t, in.AdminToken, "Faults")
	hook := in.CreateWebhook(t, in.AdminToken, room, "CI")
	apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "before"}), 200)

	other, err := sql.Open("sqlite", "file:"+filepath.Join(in.DataDir, sqlite.FileName)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}

	r := in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "while locked"})
	if r.Status != 503 || r.Code() != "ServiceUnavailable" || r.JSON(t)["Message"] == "" {
		t.Fatalf("post while the database is locked: %d %s", r.Status, r.Body)
	}
	if secs, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 30 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	if r := in.Do(t, "GET", "/readyz", "", nil); r.Status != 503 {
		t.Fatalf("/readyz while locked: %d", r.Status)
	}
	if r := in.Do(t, "GET", "/healthz", "", nil); r.Status != 200 {
		t.Fatalf("/healthz while locked: %d", r.Status)
	}

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "after"})
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after the lock was released: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	apptest.Must(t, in.Do(t, "GET", "/readyz", "", nil), 200)
	var contents []string
	for _, m := range in.Messages(t, in.AdminToken, room) {
		contents = append(contents, m["Content"].(string))
	}
	if len(contents) != 2 || contents[0] != "before" || contents[1] != "after" {
		t.Fatalf("stored %q, want before and after only", contents)
	}
}
