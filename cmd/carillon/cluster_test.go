package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// clusterDeps returns a fresh PostgreSQL database's DSN and a Redis URL,
// or skips the test when either server is unreachable (CI requires them).
func clusterDeps(t *testing.T) (dsn, redisURL string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin := os.Getenv("CARILLON_TEST_POSTGRES")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	redisURL = os.Getenv("CARILLON_TEST_REDIS")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	skip := func(what string, err error) {
		if os.Getenv("CARILLON_REQUIRE_POSTGRES") == "1" || os.Getenv("CARILLON_REQUIRE_REDIS") == "1" {
			t.Fatalf("%s: %v", what, err)
		}
		t.Skipf("%s not reachable: %v", what, err)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		skip("PostgreSQL", err)
	}
	defer conn.Close(ctx)
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opts)
	defer rc.Close()
	if err := rc.Ping(ctx).Err(); err != nil {
		skip("Redis", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "carillon_cluster_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, admin); err == nil {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	return strings.Replace(admin, "/postgres?", "/"+name+"?", 1), redisURL
}

// TestClusterOfTwoNodes runs two nodes on one PostgreSQL database and one
// Redis: a message posted on one node reaches a stream on the other, one
// webhook's rate limit holds across both, and killing a node mid-load loses
// no acknowledged message.
func TestClusterOfTwoNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	dsn, redisURL := clusterDeps(t)
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	b := make([]byte, 5)
	rand.Read(b)
	prefix := "carillon-test-" + hex.EncodeToString(b) + ":"
	node := func(extra ...string) *proc {
		args := append([]string{"--database", dsn, "--redis", redisURL, "--redis-prefix", prefix, "--secret-key-file", keyFile, "--drain-delay", "0s"}, extra...)
		return startServer(t, t.TempDir(), args...)
	}
	n1, n2 := node(), node()

	roomID, hookURL := setupWebhook(t, n1.url)

	// A stream on node 1 receives a message posted through node 2.
	req, _ := http.NewRequest("GET", n1.url+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var ack struct{ MessageId string }
	if s := postJSON(t, onServer(n2, hookURL), `{"Content":"from node 2"}`, &ack); s != 200 {
		t.Fatalf("post via node 2: %d", s)
	}
	deadline := time.After(10 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream on node 1 ended")
			}
			if strings.HasPrefix(l, "data: ") && strings.Contains(l, ack.MessageId) {
				break wait
			}
		case <-deadline:
			t.Fatal("the message posted via node 2 did not reach node 1's stream")
		}
	}

	// One webhook hit on both nodes in the same second: one 200, the
	// rest 429 — the limit (1 per second) is the cluster's.
	time.Sleep(1100 * time.Millisecond)
	var wg sync.WaitGroup
	statuses := make(chan int, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			via := []*proc{n1, n2}[i%2]
			statuses <- postJSON(t, onServer(via, hookURL), fmt.Sprintf(`{"Content":"race %d"}`, i), nil)
		}(i)
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[200] != 1 || counts[429] != 9 {
		t.Fatalf("10 posts at once across the cluster: %v, want one 200 and nine 429", counts)
	}

	// Kill node 2 in the middle of a load through it (every webhook of the
	// room at its rate); node 1 still has every acknowledged message.
	hooks := []string{onServer(n2, hookURL)}
	for i := 0; i < 9; i++ {
		_, u := setupWebhookOn(t, n1.url, roomID)
		hooks = append(hooks, onServer(n2, u))
	}
	var mu sync.Mutex
	var acked []string
	stop := make(chan struct{})
	var load sync.WaitGroup
	for _, u := range hooks {
		load.Add(1)
		go func(u string) {
			defer load.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var ok struct{ MessageId string }
				resp, err := client.Post(u, "application/json", strings.NewReader(fmt.Sprintf(`{"Content":"load %d"}`, i)))
				if err != nil {
					continue
				}
				if resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&ok) == nil {
					mu.Lock()
					acked = append(acked, ok.MessageId)
					mu.Unlock()
				}
				resp.Body.Close()
				time.Sleep(100 * time.Millisecond)
			}
		}(u)
	}
	time.Sleep(2500 * time.Millisecond)
	n2.kill(t)
	close(stop)
	load.Wait()
	if len(acked) == 0 {
		t.Fatal("nothing acknowledged by node 2 before it was killed")
	}
	seen := allMessageIDs(t, n1.url, roomID)
	for _, id := range acked {
		if seen[id] != 1 {
			t.Fatalf("acknowledged message %s stored %d times after its node was killed", id, seen[id])
		}
	}
	t.Logf("%d messages acknowledged by the killed node, all readable through the other", len(acked))

	// The survivor, with a live stream open, stops cleanly on SIGTERM.
	n1.stop(t)
}

// setupWebhookOn creates a webhook in an existing room.
func setupWebhookOn(t *testing.T, base, roomID string) (string, string) {
	t.Helper()
	var hook struct{ Webhook struct{ Url string } }
	if s := apiDo(t, "POST", base+"/api/v1/rooms/"+roomID+"/webhooks", map[string]string{"Name": "Fast"}, &hook); s != 201 {
		t.Fatalf("create webhook: %d", s)
	}
	return roomID, hook.Webhook.Url
}

func postJSON(t *testing.T, url, body string, out any) int {
	resp, err := client.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Errorf("post: %v", err)
		return 0
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}
