package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carillon-chat/carillon/sqlite"
)

// storedMessage is a message as the event stream replays it: its id and
// its seq (the SSE id), in commit order.
type storedMessage struct {
	ID  string
	Seq int64
}

// replayMessages reads the messages of roomID committed after seq after,
// in commit order, from the replay of an event stream opened with
// lastEventId; it stops at want messages and fails if they do not come.
func replayMessages(t *testing.T, base, token, roomID string, after int64, want int) []storedMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/v1/events?lastEventId=%d", base, after), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("event stream: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("event stream: %s", resp.Status)
	}
	var got []storedMessage
	var id, event string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for len(got) < want && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "message":
			var m struct{ MessageId, RoomId string }
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m); err != nil {
				t.Fatalf("message event %q: %v", line, err)
			}
			seq, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				t.Fatalf("message event with id %q", id)
			}
			if m.RoomId == roomID {
				got = append(got, storedMessage{m.MessageId, seq})
			}
		case line == "":
			id, event = "", ""
		}
	}
	if len(got) < want {
		t.Fatalf("replay after %d: %d of %d messages (%v)", after, len(got), want, sc.Err())
	}
	return got
}

// postAndSeq posts through a webhook and returns the new message's seq,
// read from the event stream after the newest seq known.
func postAndSeq(t *testing.T, p *proc, hookURL, roomID string, newest int64) (string, int64) {
	t.Helper()
	var ack struct{ MessageId string }
	if s := postJSON(t, onServer(p, hookURL), `{"Content":"after the restore"}`, &ack); s != 200 {
		t.Fatalf("post through the old webhook URL: %d\n%s", s, p.logs)
	}
	got := replayMessages(t, p.url, adminToken, roomID, newest, 1)
	if got[0].ID != ack.MessageId {
		t.Fatalf("the message after seq %d is %v, want %s", newest, got[0], ack.MessageId)
	}
	return ack.MessageId, got[0].Seq
}

// TestBackupRestoreSQLite backs the SQLite database up with `carillon
// backup` while webhook posts are being written, wipes the data
// directory, restores the backup as docs/deploy.md says, and checks that
// the restored messages are exactly the first ones in commit order (a
// consistent snapshot), with their ids and seqs, including every message
// acknowledged before the backup started, and that the webhook URL keeps
// working with the next seq.
func TestBackupRestoreSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dataDir := t.TempDir()
	rate := []string{"--webhook-rate", "100000", "--webhook-burst", "100000", "--drain-delay", "0s"}
	p := startServer(t, dataDir, rate...)
	roomID, hookURL := setupWebhook(t, p.url)
	// The operator keeps the secret key apart from the database backups.
	key, err := os.ReadFile(filepath.Join(dataDir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}

	var before []string
	for i := 0; i < 20; i++ {
		var ack struct{ MessageId string }
		if s := postJSON(t, hookURL, fmt.Sprintf(`{"Content":"before the backup %d"}`, i), &ack); s != 200 {
			t.Fatalf("post: %d", s)
		}
		before = append(before, ack.MessageId)
	}

	// The backup runs in the middle of a load of posts.
	stop, result, firstAck := make(chan struct{}), make(chan []string), make(chan struct{})
	go func() { result <- postLoad(hookURL, 4, stop, firstAck) }()
	select {
	case <-firstAck:
	case <-time.After(20 * time.Second):
		t.Fatalf("no post acknowledged\n%s", p.logs)
	}
	time.Sleep(100 * time.Millisecond)
	backup := filepath.Join(t.TempDir(), "carillon-backup.db")
	start := time.Now()
	out, errOut, err := runCLI(t, "", "backup", "--data", dataDir, "--to", backup)
	if err != nil {
		t.Fatalf("carillon backup: %v\n%s%s", err, out, errOut)
	}
	t.Logf("backup under load took %v: %s", time.Since(start), strings.TrimSpace(out))
	// At least this one is stored after the backup (the first of the load
	// was acknowledged before it).
	if s := postJSON(t, hookURL, `{"Content":"after the backup"}`, nil); s != 200 {
		t.Fatalf("post: %d", s)
	}
	close(stop)
	during := <-result
	m := regexp.MustCompile(`(\d+) messages`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("backup output: %q", out)
	}
	inBackup, _ := strconv.Atoi(m[1])

	if _, errOut, err := runCLI(t, "", "backup", "--data", dataDir, "--to", backup); err == nil || !strings.Contains(errOut, "already exists") {
		t.Fatalf("a second backup to the same file: err %v, stderr %q", err, errOut)
	}

	total := len(allMessageIDs(t, p.url, roomID))
	full := replayMessages(t, p.url, adminToken, roomID, 0, total)
	p.kill(t)
	if inBackup <= len(before) || inBackup >= total {
		t.Fatalf("the backup holds %d messages: want more than the %d posted before it and fewer than all %d (it ran during a load of %d posts)",
			inBackup, len(before), total, len(during))
	}

	// Wipe, then restore: the backup as the database, the key from its
	// own copy.
	if err := os.RemoveAll(dataDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, sqlite.FileName), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "secret.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}

	p = startServer(t, dataDir, rate...)
	if n := len(allMessageIDs(t, p.url, roomID)); n != inBackup {
		t.Fatalf("restored %d messages, the backup said %d", n, inBackup)
	}
	restored := replayMessages(t, p.url, adminToken, roomID, 0, inBackup)
	for i, m := range restored {
		if m != full[i] {
			t.Fatalf("restored message %d is %v, was %v: not the first %d messages in commit order", i, m, full[i], inBackup)
		}
	}
	for i, id := range before {
		if restored[i].ID != id {
			t.Fatalf("message %d posted before the backup: %s restored as %s", i, id, restored[i].ID)
		}
	}
	newest := restored[len(restored)-1].Seq
	if _, seq := postAndSeq(t, p, hookURL, roomID, newest); seq != newest+1 {
		t.Fatalf("the first message after the restore got seq %d, want %d", seq, newest+1)
	}
	t.Logf("%d of %d messages in the backup, restored with their ids and seqs", inBackup, total)
}

// TestBackupRestorePostgres backs a PostgreSQL deployment up with pg_dump
// while the server runs, drops and recreates the database, restores it
// with pg_restore (into the fresh database, and once more with --clean
// over a used one), and checks every message is back with its id and seq.
func TestBackupRestorePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dsn, _ := clusterDeps(t)
	var tools []string
	for _, name := range []string{"pg_dump", "pg_restore"} {
		path, err := exec.LookPath(name)
		if err != nil {
			if os.Getenv("CARILLON_REQUIRE_POSTGRES") == "1" {
				t.Fatalf("%s: %v", name, err)
			}
			t.Skipf("%s: %v", name, err)
		}
		tools = append(tools, path)
	}
	pgDump, pgRestore := tools[0], tools[1]
	run := func(name string, args ...string) {
		t.Helper()
		start := time.Now()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
		}
		t.Logf("%s took %v", filepath.Base(name), time.Since(start))
	}

	args := []string{"--database", dsn, "--secret-key-file", filepath.Join(t.TempDir(), "secret.key"),
		"--webhook-rate", "100000", "--webhook-burst", "100000", "--drain-delay", "0s"}
	p := startServer(t, t.TempDir(), args...)
	roomID, hookURL := setupWebhook(t, p.url)
	for i := 0; i < 30; i++ {
		if s := postJSON(t, hookURL, fmt.Sprintf(`{"Content":"before the dump %d @All"}`, i), nil); s != 200 {
			t.Fatalf("post: %d", s)
		}
	}
	dump := filepath.Join(t.TempDir(), "carillon.dump")
	run(pgDump, "--format=custom", "--file="+dump, "--dbname="+dsn) // online
	if s := postJSON(t, hookURL, `{"Content":"after the dump"}`, nil); s != 200 {
		t.Fatalf("post: %d", s)
	}
	all := replayMessages(t, p.url, adminToken, roomID, 0, 31)
	dumped := all[:30]
	p.stop(t)

	// Wipe: drop the database and create it again, empty.
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := cfg.Database
	cfg.Database = "postgres"
	ctx := context.Background()
	admin, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, q := range []string{"DROP DATABASE " + name + " WITH (FORCE)", "CREATE DATABASE " + name} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	check := func(p *proc) {
		t.Helper()
		ids := allMessageIDs(t, p.url, roomID)
		if len(ids) != len(dumped) {
			t.Fatalf("%d messages after the restore, want the %d dumped", len(ids), len(dumped))
		}
		got := replayMessages(t, p.url, adminToken, roomID, 0, len(dumped))
		for i := range got {
			if got[i] != dumped[i] {
				t.Fatalf("restored message %d is %v, was %v", i, got[i], dumped[i])
			}
		}
		newest := dumped[len(dumped)-1].Seq
		if _, seq := postAndSeq(t, p, hookURL, roomID, newest); seq != newest+1 {
			t.Fatalf("the first message after the restore got seq %d, want %d", seq, newest+1)
		}
	}

	// Into the fresh database.
	run(pgRestore, "--no-owner", "--exit-on-error", "--single-transaction", "--dbname="+dsn, dump)
	p = startServer(t, t.TempDir(), args...)
	check(p)
	p.stop(t)

	// Over the database in use since (one message more): --clean drops
	// what is there first.
	run(pgRestore, "--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction", "--dbname="+dsn, dump)
	p = startServer(t, t.TempDir(), args...)
	check(p)
}
