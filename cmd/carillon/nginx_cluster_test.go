package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/carillon-chat/carillon/apptest"
)

// The shipped nginx example: the proxy settings the test puts in front of
// the nodes, and the file that includes them.
const (
	nginxSnippet = "../../deploy/nginx/carillon-locations.conf"
	nginxExample = "../../deploy/nginx.conf"
)

// TestThreeNodesBehindNginx runs the scale-out layout of docs/deploy.md for
// real: a private PostgreSQL server and a private Redis (so that the test
// may stop and restart them), three `carillon serve` processes, and nginx
// balancing them round-robin with the shipped proxy settings. Its phases
// run in order on the same cluster:
//
//   - posts through nginx are spread round-robin over the three nodes, and
//     a stream through nginx gets them all;
//   - a stream on node 1 receives a message posted via node 3;
//   - one webhook hit on all three nodes at once: one 200, the rest 429;
//   - node 2 is killed mid-load: nginx routes around it and no
//     acknowledged message is lost;
//   - PostgreSQL is stopped mid-load: webhooks answer 503 with Retry-After
//     and /readyz fails; once it is back the same processes answer 200
//     and /readyz again;
//   - Redis is killed: webhooks are still accepted (each node limits them
//     on its own), /readyz stays ready, live streams end, resume from
//     PostgreSQL and stay live across nodes (each node polls storage);
//     once Redis is back, messages cross nodes live again and
//     the rate limit is the cluster's again;
//
// and at the end every acknowledged message is stored exactly once and
// nginx's access log holds no webhook token. docs/deploy.md describes
// these checks: keep the two in step.
func TestThreeNodesBehindNginx(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary, PostgreSQL, Redis and nginx")
	}
	nginxBin, err := exec.LookPath("nginx")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/nginx"); statErr == nil {
			nginxBin = "/usr/sbin/nginx"
		} else {
			missing(t, "CARILLON_REQUIRE_NGINX", "nginx is not installed")
		}
	}
	start := time.Now()
	pg := startPrivatePostgres(t)
	rds := startPrivateRedis(t)
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	var nodes []*proc
	// Registered before the nodes start, so that it runs after they were
	// killed and their logs are complete.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for i, p := range nodes {
			t.Logf("node %d (%s) log:\n%s", i+1, p.url, tail(p.logs.Bytes()))
		}
		log, _ := os.ReadFile(filepath.Join(pg.dir, "postgres.log"))
		t.Logf("PostgreSQL log:\n%s", tail(log))
	})
	for range 3 {
		nodes = append(nodes, startServer(t, t.TempDir(), "--database", pg.dsn, "--redis", rds.url,
			"--secret-key-file", keyFile, "--drain-delay", "0s", "--trusted-proxy", "127.0.0.1/32"))
	}
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	lb := startNginx(t, nginxBin, nodes)
	t.Logf("PostgreSQL, Redis, 3 nodes and nginx up in %v", time.Since(start).Round(time.Millisecond))

	// Two rooms of ten webhooks each; their URLs go through nginx.
	var rooms []string
	var hooks []string
	for range 2 {
		roomID, u := setupWebhook(t, n1.url)
		rooms = append(rooms, roomID)
		hooks = append(hooks, rebase(lb.url, u))
		for range 9 {
			_, u := setupWebhookOn(t, n1.url, roomID)
			hooks = append(hooks, rebase(lb.url, u))
		}
	}
	var ledger []string // every MessageId acknowledged with a 200
	// phase runs one phase as a subtest; a failed phase ends the test.
	phase := func(name string, f func(t *testing.T)) {
		t.Helper()
		began := time.Now()
		ok := t.Run(name, f)
		t.Logf("phase %s: %v", name, time.Since(began).Round(time.Millisecond))
		if !ok {
			t.FailNow()
		}
	}

	phase("RoundRobin", func(t *testing.T) {
		stream := openEvents(t, lb.url, "")
		defer stream.close()
		logStart := lb.logSize(t)
		var ids []string
		for i, u := range hooks {
			var ack struct{ MessageId string }
			if s := postJSON(t, u, fmt.Sprintf(`{"Content":"round robin %d"}`, i), &ack); s != 200 || ack.MessageId == "" {
				t.Fatalf("post %d through nginx: %d", i, s)
			}
			ids = append(ids, ack.MessageId)
		}
		ledger = append(ledger, ids...)
		if _, err := stream.await(ids, 10*time.Second); err != nil {
			t.Fatalf("stream through nginx: %v", err)
		}
		perNode := map[string]int{}
		for _, e := range lb.accessLog(t, logStart) {
			if e.method == "POST" && strings.HasPrefix(e.uri, "/incomingwebhooks/") {
				perNode[e.upstream]++
			}
		}
		for _, p := range nodes {
			if got := perNode[hostPort(p.url)]; got < len(hooks)/len(nodes) {
				t.Fatalf("webhook posts per node through nginx: %v; want round-robin, at least %d each", perNode, len(hooks)/len(nodes))
			}
		}
		t.Logf("%d posts through nginx, per node %v, all on the stream through nginx", len(ids), perNode)
	})

	phase("StreamOnNode1GetsPostViaNode3", func(t *testing.T) {
		stream := openEvents(t, n1.url, "")
		defer stream.close()
		id := postUntilAccepted(t, onServer(n3, hooks[0]), "posted via node 3")
		ledger = append(ledger, id)
		if _, err := stream.await([]string{id}, 10*time.Second); err != nil {
			t.Fatalf("stream on node 1: %v", err)
		}
	})

	phase("OneWebhookOnThreeNodes", func(t *testing.T) {
		counts, ids := burst(t, hooks[1], nodes, 12)
		ledger = append(ledger, ids...)
		if counts[200] != 1 || counts[429] != 11 {
			t.Fatalf("12 posts of one webhook at once across 3 nodes: %v, want one 200 and eleven 429", counts)
		}
	})

	phase("KillNode2MidLoad", func(t *testing.T) {
		logStart := lb.logSize(t)
		load := startHookLoad(hooks, 3, "kill")
		load.waitAcked(t, 20, 10*time.Second)
		n2.kill(t)
		atKill := load.ackedCount()
		// nginx sends what node 2 would have got to nodes 1 and 3.
		load.waitAcked(t, atKill+20, 10*time.Second)
		acked := load.finish()
		ledger = append(ledger, acked...)
		load.check(t)
		fromNode2 := 0
		for _, e := range lb.accessLog(t, logStart) {
			if e.method == "POST" && e.status == 200 && e.upstream == hostPort(n2.url) {
				fromNode2++
			}
		}
		if fromNode2 == 0 {
			t.Fatal("node 2 acknowledged nothing before it was killed")
		}
		checkStoredOnce(t, n1.url, rooms, acked)
		t.Logf("%d acknowledged (%d by node 2 before the kill, %d after it), statuses %v; all stored once",
			len(acked), fromNode2, len(acked)-atKill, load.statusCounts())
	})

	live := []*proc{n1, n3}
	phase("RestartPostgresMidLoad", func(t *testing.T) {
		load := startHookLoad(hooks, 1, "postgres")
		load.waitAcked(t, 20, 10*time.Second)
		pg.stop(t)
		downAt := time.Now()
		// Through nginx: 503 with Retry-After; on each node: not ready.
		waitUntil(t, 10*time.Second, "webhooks through nginx answer 503 while PostgreSQL is down", func() bool {
			resp, err := client.Post(hooks[2], "application/json", strings.NewReader(`{"Content":"while PostgreSQL is down"}`))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Fatal("a webhook was acknowledged with PostgreSQL down")
			}
			return resp.StatusCode == 503 && validRetryAfter(resp.Header.Get("Retry-After"), 503)
		})
		for _, p := range live {
			if s := getStatus(p.url + "/readyz"); s != 503 {
				t.Fatalf("/readyz with PostgreSQL down: %d, want 503", s)
			}
		}
		time.Sleep(time.Until(downAt.Add(3 * time.Second)))
		beforeRestart := load.ackedCount()
		pg.start(t)
		upAt := time.Now()
		// The same processes recover on their own.
		waitUntil(t, 30*time.Second, "/readyz ok again on nodes 1 and 3", func() bool {
			return getStatus(n1.url+"/readyz") == 200 && getStatus(n3.url+"/readyz") == 200
		})
		load.waitAcked(t, beforeRestart+20, 30*time.Second)
		recovered := time.Since(upAt)
		acked := load.finish()
		ledger = append(ledger, acked...)
		load.check(t)
		statuses := load.statusCounts()
		if statuses[503] == 0 {
			t.Fatalf("the load saw no 503 while PostgreSQL was down: %v", statuses)
		}
		for _, p := range live {
			if !running(p) {
				t.Fatalf("node %s exited\n%s", p.url, p.logs)
			}
		}
		checkStoredOnce(t, lb.url, rooms, acked)
		t.Logf("%d acknowledged (%d after the restart), statuses %v; recovered %v after PostgreSQL was back; all stored once",
			len(acked), len(acked)-beforeRestart, statuses, recovered.Round(time.Millisecond))
	})

	phase("RedisOutage", func(t *testing.T) {
		stream := openEvents(t, n1.url, "")
		defer stream.close()
		id := postUntilAccepted(t, onServer(n3, hooks[3]), "before the Redis outage")
		ledger = append(ledger, id)
		lastID, err := stream.await([]string{id}, 10*time.Second)
		if err != nil {
			t.Fatalf("stream on node 1 before the outage: %v", err)
		}

		rds.stop(t)
		// Live streams are closed ...
		if err := stream.awaitEnd(15 * time.Second); err != nil {
			t.Fatalf("stream on node 1 after Redis died: %v", err)
		}
		// ... the nodes stay ready ...
		for _, p := range live {
			if s := getStatus(p.url + "/readyz"); s != 200 {
				t.Fatalf("/readyz with Redis down: %d, want 200 (Redis is not the source of truth)", s)
			}
		}
		// ... webhooks are accepted through nginx ...
		var during []string
		for i, u := range hooks[4:10] {
			during = append(during, postUntilAccepted(t, u, fmt.Sprintf("while Redis is down %d", i)))
		}
		ledger = append(ledger, during...)
		// ... and each node still limits a webhook on its own.
		counts, ids := burst(t, hooks[10], []*proc{n1}, 4)
		ledger = append(ledger, ids...)
		if counts[200] != 1 || counts[429] != 3 {
			t.Fatalf("4 posts of one webhook at once on node 1 with Redis down: %v, want one 200 and three 429", counts)
		}
		// A client resuming on node 1 gets what it missed from PostgreSQL.
		resumed := openEvents(t, n1.url, lastID)
		if _, err := resumed.await(during, 10*time.Second); err != nil {
			t.Fatalf("stream resumed on node 1 with Redis down: %v", err)
		}
		// It stays live: each node reads new messages from PostgreSQL at
		// least once a second, so one posted via node 3 still arrives.
		id = postUntilAccepted(t, onServer(n3, hooks[4]), "via node 3 while Redis is down")
		ledger = append(ledger, id)
		if _, err := resumed.await([]string{id}, 5*time.Second); err != nil {
			t.Fatalf("stream on node 1 with Redis down, message posted via node 3: %v", err)
		}
		resumed.close()

		rds.start(t)
		upAt := time.Now()
		// Live delivery across nodes comes back: a stream opened on node 1
		// gets a message posted via node 3 without reconnecting.
		attempts := 0
		waitUntil(t, 30*time.Second, "a message posted via node 3 reaches a live stream on node 1", func() bool {
			attempts++
			s := openEvents(t, n1.url, "")
			defer s.close()
			id := postUntilAccepted(t, onServer(n3, hooks[11+attempts%9]), fmt.Sprintf("after Redis is back %d", attempts))
			ledger = append(ledger, id)
			_, err := s.await([]string{id}, 2*time.Second)
			return err == nil
		})
		crossNode := time.Since(upAt)
		// And the rate limit is the cluster's again.
		waitUntil(t, 30*time.Second, "one webhook's limit shared by nodes 1 and 3", func() bool {
			time.Sleep(1100 * time.Millisecond)
			counts, ids := burst(t, hooks[1], live, 6)
			ledger = append(ledger, ids...)
			return counts[200] == 1 && counts[429] == 5
		})
		t.Logf("with Redis down: %d webhooks accepted, stream resumed from PostgreSQL; after it came back: live across nodes in %v (%d attempts), shared limit in %v",
			len(during), crossNode.Round(time.Millisecond), attempts, time.Since(upAt).Round(time.Millisecond))
	})

	phase("EveryAcknowledgedMessageStoredOnce", func(t *testing.T) {
		stored := checkStoredOnce(t, lb.url, rooms, ledger)
		requests := len(lb.accessLog(t, 0)) // fails on a logged token
		t.Logf("%d messages acknowledged over the whole test, %d stored, each acknowledged one exactly once; no token among nginx's %d log lines",
			len(ledger), stored, requests)
	})

	phase("ShippedExampleParses", func(t *testing.T) {
		checkNginxExample(t, nginxBin)
	})
}

// missing fails the test when env is "1" (CI requires the tool), and
// skips it otherwise.
func missing(t *testing.T, env, what string) {
	t.Helper()
	if os.Getenv(env) == "1" {
		t.Fatalf("%s (%s=1)", what, env)
	}
	t.Skip(what)
}

// freePort returns a loopback TCP port nobody listens on right now. It
// picks one below the ephemeral range when it can: no outgoing connection
// takes such a port as its source, so a server stopped on it can listen on
// it again.
func freePort(t *testing.T) int {
	t.Helper()
	low := 32768
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(data), &low)
	}
	for range 100 {
		if low <= 11000 {
			break
		}
		port := 10000 + mrand.IntN(low-10000)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			l.Close()
			return port
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// hostPort is the host:port of a base URL.
func hostPort(base string) string {
	return strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://")
}

// tail is the end of a log, at most 4 KiB.
func tail(log []byte) []byte {
	if len(log) > 4096 {
		return log[len(log)-4096:]
	}
	return log
}

// running reports whether p has not exited.
func running(p *proc) bool {
	select {
	case err := <-p.done:
		p.done <- err // for kill and the cleanup
		return false
	default:
		return true
	}
}

// getStatus answers the status of GET url, 0 if there was no answer.
func getStatus(url string) int {
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitUntil polls cond every 100 ms until it holds, or fails the test.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// validRetryAfter checks a Retry-After header as the contract states it.
func validRetryAfter(v string, status int) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 1 && (status != 503 || n <= 30)
}

// postUntilAccepted posts content until it is accepted, waiting out 429s
// as their Retry-After says; any other answer fails the test.
func postUntilAccepted(t *testing.T, url, content string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"Content": content})
	for range 10 {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("post %q: %v", content, err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch resp.StatusCode {
		case 200:
			var ack struct{ MessageId string }
			if json.Unmarshal(data, &ack) != nil || ack.MessageId == "" {
				t.Fatalf("post %q: 200 without a MessageId: %s", content, data)
			}
			return ack.MessageId
		case 429:
			ra := resp.Header.Get("Retry-After")
			if !validRetryAfter(ra, 429) {
				t.Fatalf("post %q: 429 with Retry-After %q", content, ra)
			}
			n, _ := strconv.Atoi(ra)
			time.Sleep(time.Duration(n) * time.Second)
		default:
			t.Fatalf("post %q: %d %s", content, resp.StatusCode, data)
		}
	}
	t.Fatalf("post %q: still throttled after 10 attempts", content)
	return ""
}

// burst posts n messages to one webhook at once, spread over nodes, after
// its budget had a second to refill. It answers the count of each status
// and the MessageIds accepted.
func burst(t *testing.T, hookURL string, nodes []*proc, n int) (map[int]int, []string) {
	t.Helper()
	time.Sleep(1100 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	var ids []string
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ack struct{ MessageId string }
			s := postJSON(t, onServer(nodes[i%len(nodes)], hookURL), fmt.Sprintf(`{"Content":"burst %d"}`, i), &ack)
			mu.Lock()
			defer mu.Unlock()
			counts[s]++
			if s == 200 && ack.MessageId != "" {
				ids = append(ids, ack.MessageId)
			}
		}()
	}
	wg.Wait()
	return counts, ids
}

// checkStoredOnce reads the rooms through base and fails the test unless
// each of acked is stored exactly once. It answers how many are stored.
func checkStoredOnce(t *testing.T, base string, rooms, acked []string) int {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rooms {
		for id, n := range allMessageIDs(t, base, r) {
			seen[id] += n
		}
	}
	for _, id := range acked {
		if seen[id] != 1 {
			t.Fatalf("acknowledged message %s stored %d times", id, seen[id])
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("message %s listed %d times", id, n)
		}
	}
	return len(seen)
}

// hookLoad posts to each of a set of webhook URLs from workers goroutines
// of its own, each waiting a second after a 200 (the webhook's rate) and a
// quarter of one after a refusal, until finish.
type hookLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	acked    []string
	statuses map[int]int // 0: no answer
	problems []string
}

func startHookLoad(hooks []string, workers int, tag string) *hookLoad {
	l := &hookLoad{stop: make(chan struct{}), statuses: map[int]int{}}
	c := &http.Client{Timeout: 10 * time.Second}
	for w := range len(hooks) * workers {
		u := hooks[w%len(hooks)]
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				pause := l.post(c, u, fmt.Sprintf("%s %d-%d", tag, w, i))
				select {
				case <-l.stop:
					return
				case <-time.After(pause):
				}
			}
		}()
	}
	return l
}

// post makes one request and answers how long to wait before the next.
func (l *hookLoad) post(c *http.Client, url, content string) time.Duration {
	body, _ := json.Marshal(map[string]string{"Content": content})
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		l.mu.Lock()
		l.statuses[0]++
		l.mu.Unlock()
		return 100 * time.Millisecond
	}
	defer resp.Body.Close()
	var ack struct{ MessageId string }
	decodeErr := json.NewDecoder(resp.Body).Decode(&ack)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[resp.StatusCode]++
	switch resp.StatusCode {
	case 200:
		if decodeErr != nil || ack.MessageId == "" {
			l.problems = append(l.problems, fmt.Sprintf("200 without a MessageId (%v)", decodeErr))
		} else {
			l.acked = append(l.acked, ack.MessageId)
		}
		return time.Second
	case 429, 503:
		if ra := resp.Header.Get("Retry-After"); !validRetryAfter(ra, resp.StatusCode) {
			l.problems = append(l.problems, fmt.Sprintf("%d with Retry-After %q", resp.StatusCode, ra))
		}
		return 250 * time.Millisecond
	case 502:
		return 100 * time.Millisecond // nginx: the node died mid-request
	default:
		l.problems = append(l.problems, fmt.Sprintf("unexpected status %d", resp.StatusCode))
		return 250 * time.Millisecond
	}
}

func (l *hookLoad) ackedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *hookLoad) statusCounts() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[int]int, len(l.statuses))
	for k, v := range l.statuses {
		m[k] = v
	}
	return m
}

// waitAcked waits until n posts in all were acknowledged.
func (l *hookLoad) waitAcked(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	waitUntil(t, limit, fmt.Sprintf("%d posts acknowledged (statuses so far %v)", n, l.statusCounts()), func() bool {
		return l.ackedCount() >= n
	})
}

// finish stops the load and answers the MessageIds acknowledged.
func (l *hookLoad) finish() []string {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked
}

// check fails the test if an answer broke the contract.
func (l *hookLoad) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.problems) > 0 {
		t.Fatalf("%d answers broke the contract, first: %s", len(l.problems), l.problems[0])
	}
}

// sseEvent is one event of a live stream.
type sseEvent struct{ ID, Name, Data string }

// eventStream is the admin's live event stream on one server.
type eventStream struct {
	events chan sseEvent // closed when the stream ends
	close  func()
}

// openEvents opens the admin's event stream at base, resuming after lastID
// when it is not empty, and returns once the server says it is connected.
func openEvents(t *testing.T, base, lastID string) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open stream at %s: %v", base, err)
	}
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("open stream at %s: %d %s", base, resp.StatusCode, data)
	}
	var once sync.Once
	s := &eventStream{events: make(chan sseEvent, 4096), close: func() {
		once.Do(func() { cancel(); resp.Body.Close() })
	}}
	t.Cleanup(s.close)
	connected := make(chan bool, 1)
	go func() {
		defer close(s.events)
		said := false
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Name != "" {
					select {
					case s.events <- ev:
					case <-ctx.Done():
						return
					}
				}
				ev = sseEvent{}
			case line == ": connected" && !said:
				said = true
				connected <- true
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data = line[6:]
			}
		}
		if !said {
			connected <- false
		}
	}()
	select {
	case ok := <-connected:
		if !ok {
			t.Fatalf("stream at %s ended before it was connected", base)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("stream at %s: not connected within 10 s", base)
	}
	return s
}

// await reads the stream until a message event has arrived for each of ids
// and answers the event id of the last one.
func (s *eventStream) await(ids []string, limit time.Duration) (string, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	last := ""
	timeout := time.After(limit)
	for len(want) > 0 {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return "", fmt.Errorf("ended with %d of %d messages missing", len(want), len(ids))
			}
			var m struct{ MessageId string }
			if ev.Name == "message" && json.Unmarshal([]byte(ev.Data), &m) == nil && want[m.MessageId] {
				delete(want, m.MessageId)
				last = ev.ID
			}
		case <-timeout:
			return "", fmt.Errorf("%d of %d messages missing after %v", len(want), len(ids), limit)
		}
	}
	return last, nil
}

// awaitEnd waits until the server ends the stream.
func (s *eventStream) awaitEnd(limit time.Duration) error {
	timeout := time.After(limit)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return nil
			}
		case <-timeout:
			return fmt.Errorf("still open after %v", limit)
		}
	}
}

// privatePostgres is a PostgreSQL server of the test's own, which it may
// stop and start (the shared one on 5432 serves other tests meanwhile).
type privatePostgres struct {
	bin, dir string
	port     int
	dsn      string
	asUser   string // run the server as this OS user (when the test is root)
}

func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	sort.Slice(found, func(i, j int) bool { return pgVersion(found[i]) < pgVersion(found[j]) })
	p := &privatePostgres{}
	if len(found) > 0 {
		p.bin = filepath.Dir(found[len(found)-1])
	} else if path, err := exec.LookPath("pg_ctl"); err == nil {
		p.bin = filepath.Dir(path)
	} else {
		missing(t, "CARILLON_REQUIRE_POSTGRES", "PostgreSQL server binaries (initdb, pg_ctl) not found")
	}
	// Not t.TempDir: its parent is private to this user, and the server
	// may have to run as another.
	dir, err := os.MkdirTemp("", "carillon-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p.dir = dir
	if os.Geteuid() == 0 { // PostgreSQL refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			missing(t, "CARILLON_REQUIRE_POSTGRES", "running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.asUser = u.Username
	}
	if out, err := p.command("initdb", "-D", p.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.port = freePort(t)
	p.dsn = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/carillon?sslmode=disable", p.port)
	p.start(t)
	t.Cleanup(func() { p.command("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop").Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, strings.Replace(p.dsn, "/carillon?", "/postgres?", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE carillon"); err != nil {
		t.Fatal(err)
	}
	return p
}

func pgVersion(path string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(filepath.Dir(path))), 64)
	return v
}

func (p *privatePostgres) data() string { return filepath.Join(p.dir, "data") }

func (p *privatePostgres) command(name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if p.asUser != "" {
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			runuser = "/usr/sbin/runuser" // util-linux; /usr/sbin may not be on PATH
		}
		cmd = exec.Command(runuser, append([]string{"-u", p.asUser, "--", filepath.Join(p.bin, name)}, args...)...)
	} else {
		cmd = exec.Command(filepath.Join(p.bin, name), args...)
	}
	cmd.Dir = p.dir
	return cmd
}

// start starts the server (again) on its port, the socket in its directory.
func (p *privatePostgres) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=50 -c shared_buffers=32MB", p.port, p.dir)
	if out, err := p.command("pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "postgres.log"), "-o", opts, "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "postgres.log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// stop stops the server as a crash would: no checkpoint, connections cut.
func (p *privatePostgres) stop(t *testing.T) {
	t.Helper()
	if out, err := p.command("pg_ctl", "-D", p.data(), "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// privateRedis is a redis-server of the test's own, which it may kill and
// start again on the same port.
type privateRedis struct {
	bin, dir string
	port     int
	url      string
	cmd      *exec.Cmd
	done     chan error
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "CARILLON_REQUIRE_REDIS", "redis-server is not installed")
	}
	r := &privateRedis{bin: bin, dir: t.TempDir(), port: freePort(t)}
	r.url = fmt.Sprintf("redis://127.0.0.1:%d/0", r.port)
	r.start(t)
	t.Cleanup(func() {
		if r.cmd != nil {
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

func (r *privateRedis) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.done = make(chan error, 1)
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(r.cmd, r.done)
	opts, _ := redis.ParseURL(r.url)
	c := redis.NewClient(opts)
	defer c.Close()
	waitUntil(t, 10*time.Second, "redis-server answers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
}

// stop kills the server: every connection to it breaks at once.
func (r *privateRedis) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// nginxLB is nginx balancing the nodes round-robin with the shipped proxy
// settings, run as a child process with everything in a directory of its
// own.
type nginxLB struct {
	url, dir string
}

// shippedNginxConfig returns the absolute path of the shipped locations
// snippet and the text of the shipped example site.
func shippedNginxConfig(t *testing.T) (snippet string, example []byte) {
	t.Helper()
	snippet, err := filepath.Abs(nginxSnippet)
	if err != nil {
		t.Fatal(err)
	}
	example, err = os.ReadFile(nginxExample)
	if err != nil {
		t.Fatal(err)
	}
	return snippet, example
}

func startNginx(t *testing.T, bin string, nodes []*proc) *nginxLB {
	t.Helper()
	snippet, example := shippedNginxConfig(t)
	// The log format of the example: it must leave webhook tokens out.
	logFormat := regexp.MustCompile(`(?m)^log_format carillon .*;$`).Find(example)
	if logFormat == nil {
		t.Fatalf("%s has no `log_format carillon` line", nginxExample)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "temp"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	var conf strings.Builder
	if os.Geteuid() == 0 {
		// Workers would otherwise run as nobody, who cannot enter dir.
		conf.WriteString("user root;\n")
	}
	fmt.Fprintf(&conf, `worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log notice;
events { worker_connections 1024; }
http {
    client_body_temp_path %[1]s/temp/client_body;
    proxy_temp_path %[1]s/temp/proxy;
    fastcgi_temp_path %[1]s/temp/fastcgi;
    uwsgi_temp_path %[1]s/temp/uwsgi;
    scgi_temp_path %[1]s/temp/scgi;
    %[2]s
    access_log %[1]s/access.log carillon;
    upstream carillon {
`, dir, logFormat)
	for _, p := range nodes {
		fmt.Fprintf(&conf, "        server %s;\n", hostPort(p.url))
	}
	fmt.Fprintf(&conf, `        keepalive 16;
    }
    server {
        listen 127.0.0.1:%d;
        include %s;
    }
}
`, port, snippet)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", confPath, "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error log:\n%s", tail(log))
		}
	})
	lb := &nginxLB{url: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir}
	deadline := time.Now().Add(10 * time.Second)
	for getStatus(lb.url+"/healthz") != 200 {
		select {
		case err := <-done:
			done <- err
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s\n%s\n%s", err, &stderr, log, conf.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not answer on %s\n%s", lb.url, &stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return lb
}

func (lb *nginxLB) logSize(t *testing.T) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(lb.dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// accessEntry is one request in nginx's access log.
type accessEntry struct {
	method, uri string
	status      int
	upstream    string // the node that answered
}

var accessLine = regexp.MustCompile(`^\S+ - \[[^\]]*\] "(\S+) (\S*)" (\d{3}) \d+ \S+ (.*)$`)

// accessLog parses the access log from offset on. It also checks that no
// webhook token made it into the log.
func (lb *nginxLB) accessLog(t *testing.T, offset int64) []accessEntry {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(lb.dir, "access.log"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []accessEntry
	for _, line := range strings.Split(string(data[offset:]), "\n") {
		if line == "" {
			continue
		}
		if strings.Contains(line, "token") || strings.Contains(line, "?") {
			t.Fatalf("access log shows a query string (webhook tokens): %s", line)
		}
		m := accessLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("unexpected access log line: %s", line)
		}
		status, _ := strconv.Atoi(m[3])
		// With a retry on another node, the last address answered.
		addrs := strings.Split(m[4], ", ")
		entries = append(entries, accessEntry{method: m[1], uri: m[2], status: status, upstream: addrs[len(addrs)-1]})
	}
	return entries
}

// checkNginxExample checks that deploy/nginx.conf, with its certificate,
// log and snippet paths and its ports replaced, passes `nginx -t`.
func checkNginxExample(t *testing.T, bin string) {
	dir := t.TempDir()
	snippet, example := shippedNginxConfig(t)
	cert, key := apptest.SelfSignedPEM(t, []string{"chat.example.com"}, nil)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, cert, 0o644)
	os.WriteFile(keyPath, key, 0o600)
	conf := string(example)
	for _, r := range [][2]string{
		{"/etc/ssl/chat.example.com/fullchain.pem", certPath},
		{"/etc/ssl/chat.example.com/privkey.pem", keyPath},
		{"/var/log/nginx/carillon.log", filepath.Join(dir, "carillon.log")},
		{"/etc/nginx/snippets/carillon-locations.conf", snippet},
		{"listen 443 ", fmt.Sprintf("listen 127.0.0.1:%d ", freePort(t))},
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", freePort(t))},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("%s no longer contains %q; update this test", nginxExample, r[0])
		}
		conf = strings.ReplaceAll(conf, r[0], r[1])
	}
	site := filepath.Join(dir, "carillon.conf")
	os.WriteFile(site, []byte(conf), 0o644)
	main := filepath.Join(dir, "nginx.conf")
	os.WriteFile(main, []byte(fmt.Sprintf("pid %[1]s/nginx.pid;\nevents {}\nhttp {\n    access_log off;\n    include %[2]s;\n}\n", dir, site)), 0o644)
	out, err := exec.Command(bin, "-t", "-q", "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", main).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t on %s: %v\n%s", nginxExample, err, out)
	}
}
