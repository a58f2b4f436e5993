package server_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carillon-chat/carillon/apptest"
)

// TestDiskFullAnswers503AndRecovers runs the server on a tiny filesystem
// (a size-limited tmpfs; mounting needs root, as in CI), fills the disk,
// and checks that posts get 503 with Retry-After, never a 200 for an
// unsaved message nor a 500, and that service resumes once space is freed.
func TestDiskFullAnswers503AndRecovers(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Geteuid() == 0 {
			t.Fatalf("mount a tmpfs: %v %s", err, out)
		}
		t.Skipf("mounting a tmpfs needs root: %s", strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })

	in := apptest.Start(t, apptest.Options{DataDir: filepath.Join(dir, "data"), WebhookRate: 1e6, WebhookBurst: 1e6})
	room := in.CreateRoom(t, in.AdminToken, "Full")
	hook := in.CreateWebhook(t, in.AdminToken, room, "CI")
	apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "before"}), 200)

	// Fill the filesystem but for a little room for the database to grow.
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := filler.Write(buf); err != nil {
			break
		}
	}
	// Give back a little, so that some posts fit before the disk is full.
	if st, err := filler.Stat(); err == nil && st.Size() > 256<<10 {
		filler.Truncate(st.Size() - 256<<10)
	}
	filler.Close()

	big := strings.Repeat("x", 4000)
	var acked []string
	saw503 := false
	for i := 0; i < 400 && !saw503; i++ {
		r := in.Do(t, "POST", hook.URL, "", map[string]string{"Content": fmt.Sprintf("%d %s", i, big)})
		switch r.Status {
		case 200:
			acked = append(acked, r.JSON(t)["MessageId"].(string))
		case 503:
			if r.Header.Get("Retry-After") == "" || r.Code() != "ServiceUnavailable" {
				t.Fatalf("503 without Retry-After or Code: %s", r.Body)
			}
			saw503 = true
		default:
			t.Fatalf("post on a full disk: %d %s", r.Status, r.Body)
		}
	}
	if !saw503 {
		t.Fatal("the disk never filled up")
	}
	if r := in.Do(t, "GET", "/readyz", "", nil); r.Status != 503 {
		t.Errorf("/readyz on a full disk: %d", r.Status)
	}

	os.Remove(filepath.Join(dir, "filler"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "after"})
		if r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after space was freed: %d %s", r.Status, r.Body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	apptest.Must(t, in.Do(t, "GET", "/readyz", "", nil), 200)

	stored := map[string]bool{}
	next := ""
	for {
		var page struct {
			Messages  []struct{ MessageId string }
			NextToken *string
		}
		path := "/api/v1/rooms/" + room + "/messages?MaxResults=100"
		if next != "" {
			path += "&NextToken=" + next
		}
		apptest.Must(t, in.Do(t, "GET", path, in.AdminToken, nil), 200).Decode(t, &page)
		for _, m := range page.Messages {
			stored[m.MessageId] = true
		}
		if page.NextToken == nil {
			break
		}
		next = *page.NextToken
	}
	for _, id := range acked {
		if !stored[id] {
			t.Fatalf("acknowledged message %s lost on a full disk", id)
		}
	}
	t.Logf("%d posts acknowledged before the disk filled; all stored", len(acked))
}
