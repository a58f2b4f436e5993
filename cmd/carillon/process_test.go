package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run the real binary as a separate process, so that it can be
// killed the way a crash or an operator would.

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// binary builds carillon once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "carillon-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "carillon")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

const adminToken = "process-test-admin-token-0123456789abcdef"

type proc struct {
	cmd  *exec.Cmd
	url  string
	done chan error
	logs *bytes.Buffer
}

// startServer runs `carillon serve` on dataDir and waits until it listens.
func startServer(t *testing.T, dataDir string, extraArgs ...string) *proc {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dataDir}, extraArgs...)
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "CARILLON_ADMIN_TOKEN="+adminToken, "CARILLON_ADMIN_EMAIL=admin@example.com")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), logs: &bytes.Buffer{}}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "Carillon is running at "); ok {
				urls <- u
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { p.done <- cmd.Wait() }()
	select {
	case p.url = <-urls:
	case err := <-p.done:
		t.Fatalf("server exited before listening: %v\n%s", err, p.logs)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("server did not start\n%s", p.logs)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and fails the test unless the server exits cleanly
// within 10 seconds.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("still running 10s after SIGTERM\n%s", p.logs)
	}
}

var client = &http.Client{Timeout: 20 * time.Second}

// apiDo calls the API as the instance admin and decodes the answer into
// out (when not nil); it returns the status.
func apiDo(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	status, data := apiAs(t, adminToken, method, url, body)
	if out != nil {
		json.Unmarshal(data, out)
	}
	return status
}

// apiAs calls the API with the given token; it returns the status and the
// raw body.
func apiAs(t *testing.T, token, method, url string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, _ := json.Marshal(body)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// setupWebhook creates a room and a webhook and returns their ids and URL.
func setupWebhook(t *testing.T, base string) (roomID, hookURL string) {
	t.Helper()
	var room struct{ Room struct{ RoomId string } }
	if s := apiDo(t, "POST", base+"/api/v1/rooms", map[string]string{"Name": "Durability"}, &room); s != 201 {
		t.Fatalf("create room: %d", s)
	}
	var hook struct{ Webhook struct{ Url string } }
	if s := apiDo(t, "POST", base+"/api/v1/rooms/"+room.Room.RoomId+"/webhooks", map[string]string{"Name": "Load"}, &hook); s != 201 {
		t.Fatalf("create webhook: %d", s)
	}
	return room.Room.RoomId, hook.Webhook.Url
}

// allMessageIDs pages through a room and counts each message id.
func allMessageIDs(t *testing.T, base, roomID string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	next := ""
	for {
		url := base + "/api/v1/rooms/" + roomID + "/messages?SortOrder=ASCENDING&MaxResults=100"
		if next != "" {
			url += "&NextToken=" + next
		}
		var page struct {
			Messages  []struct{ MessageId string }
			NextToken *string
		}
		if s := apiDo(t, "GET", url, nil, &page); s != 200 {
			t.Fatalf("list messages: %d", s)
		}
		for _, m := range page.Messages {
			seen[m.MessageId]++
		}
		if page.NextToken == nil {
			return seen
		}
		next = *page.NextToken
	}
}

// postLoad posts from several goroutines until stop closes and returns the
// MessageIds answered 200. firstAck, when not nil, is closed at the first
// 200.
func postLoad(hookURL string, workers int, stop <-chan struct{}, firstAck chan<- struct{}) []string {
	var mu sync.Mutex
	var acked []string
	var once sync.Once
	var wg sync.WaitGroup
	c := &http.Client{Timeout: 5 * time.Second}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Post(hookURL, "application/json", strings.NewReader(fmt.Sprintf(`{"Content":"worker %d message %d"}`, w, i)))
				if err != nil {
					continue // the server died mid-request: not acknowledged
				}
				var ok struct{ MessageId string }
				if resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&ok) == nil && ok.MessageId != "" {
					mu.Lock()
					acked = append(acked, ok.MessageId)
					mu.Unlock()
					if firstAck != nil {
						once.Do(func() { close(firstAck) })
					}
				}
				resp.Body.Close()
			}
		}(w)
	}
	<-stop
	wg.Wait()
	return acked
}

// TestKillKeepsAcknowledgedMessages kills the server with SIGKILL at random
// moments in the middle of a load of webhook posts, restarts it on the same
// data each time, and checks that every acknowledged message is there
// exactly once.
func TestKillKeepsAcknowledgedMessages(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dataDir := t.TempDir()
	rate := []string{"--webhook-rate", "100000", "--webhook-burst", "100000"}
	p := startServer(t, dataDir, rate...)
	roomID, hookURL := setupWebhook(t, p.url)

	const rounds = 20
	var acked []string
	for round := 0; round < rounds; round++ {
		stop := make(chan struct{})
		result := make(chan []string)
		firstAck := make(chan struct{})
		go func() { result <- postLoad(hookURL, 16, stop, firstAck) }()
		select {
		case <-firstAck:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: no post acknowledged within 20 s\n%s", round, p.logs)
		}
		// A random kill point within the load: up to 500 ms after the
		// first acknowledgement.
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		p.kill(t) // mid-load: some requests are in flight
		close(stop)
		got := <-result
		if len(got) == 0 {
			t.Fatalf("round %d: no message was acknowledged before the kill\n%s", round, p.logs)
		}
		acked = append(acked, got...)

		p = startServer(t, dataDir, rate...)
		// The URL keeps its host and port only by chance; use the new one.
		hookURL = p.url + hookURL[strings.Index(hookURL, "/incomingwebhooks/"):]
		seen := allMessageIDs(t, p.url, roomID)
		for _, id := range acked {
			if seen[id] != 1 {
				t.Fatalf("round %d: acknowledged message %s stored %d times after kill -9", round, id, seen[id])
			}
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("message %s listed %d times", id, n)
			}
		}
		t.Logf("round %d: %d acknowledged so far, %d stored", round, len(acked), len(seen))
	}
	t.Logf("survived %d kill points; %d acknowledged messages all stored once", rounds, len(acked))
}

// TestSIGTERMDrains stops the server with SIGTERM under load: it must exit
// within 10 seconds, cleanly, with every acknowledged message stored.
func TestSIGTERMDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dataDir := t.TempDir()
	rate := []string{"--webhook-rate", "100000", "--webhook-burst", "100000"}
	p := startServer(t, dataDir, rate...)
	roomID, hookURL := setupWebhook(t, p.url)

	stop := make(chan struct{})
	result := make(chan []string)
	go func() { result <- postLoad(hookURL, 8, stop, nil) }()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	go func() {
		// While it drains, it still answers, but is not ready.
		time.Sleep(200 * time.Millisecond)
		if resp, err := client.Get(p.url + "/readyz"); err != nil || resp.StatusCode != 503 {
			t.Errorf("/readyz while draining: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
	}()
	p.stop(t)
	t.Logf("drained in %v", time.Since(start))
	close(stop)
	acked := <-result

	p = startServer(t, dataDir, rate...)
	seen := allMessageIDs(t, p.url, roomID)
	for _, id := range acked {
		if seen[id] != 1 {
			t.Fatalf("acknowledged message %s stored %d times after SIGTERM", id, seen[id])
		}
	}
}

// rebase points a webhook URL at another server.
func rebase(base, hookURL string) string {
	return base + hookURL[strings.Index(hookURL, "/incomingwebhooks/"):]
}

// onServer points a webhook URL at one running server.
func onServer(p *proc, hookURL string) string { return rebase(p.url, hookURL) }
