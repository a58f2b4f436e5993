package server_test

// Slow and broken clients (issue 5, item 4): each is bounded by a timeout
// and cannot hold the server's connections, goroutines or publishers.
//
//   - slowloris headers: cut off by ReadHeaderTimeout (net/http closes the
//     connection without an answer);
//   - a body that trickles in: cut off by the webhook endpoint's per-request
//     body deadline (server.Config.BodyTimeout) with a JSON 400;
//   - event streams whose clients never read: publishers do not wait for
//     them (the fan-out never blocks) and other streams keep receiving;
//   - connections dropped mid-request: nothing piles up.
//
// The instances here run with short timeouts (apptest.Options) so that the
// tests take seconds; production keeps app's defaults (10 s headers, 10 s
// webhook body, 60 s whole request).
//
// Helpers here are prefixed "sc".

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carillon-chat/carillon/apptest"
)

// scTimeout is the short header and body timeout of these tests' servers.
const scTimeout = time.Second

func scDial(t testing.TB, in *apptest.Instance) net.Conn {
	t.Helper()
	u, _ := url.Parse(in.URL)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestSlowlorisHeadersCutOff: clients that send their headers one byte a
// second, or nothing at all, are disconnected once ReadHeaderTimeout has
// passed, while the server goes on serving others.
func TestSlowlorisHeadersCutOff(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{ReadHeaderTimeout: scTimeout, BodyTimeout: scTimeout})
	h := whNewHook(t, in, "Slowloris")
	head := "POST " + h.Path() + " HTTP/1.1\r\nHost: carillon.test\r\nContent-Type: application/json\r\nX-Slow: "

	const clients = 20
	var wg sync.WaitGroup
	errs := make(chan error, clients+1)
	start := time.Now()
	for i := range clients {
		conn := scDial(t, in)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One client in five connects and sends nothing; the others
			// send a byte a second, never reaching the end of the headers.
			if i%5 != 0 {
				go func() {
					for j := 0; ; j++ {
						if _, err := conn.Write([]byte{head[j%len(head)]}); err != nil {
							return
						}
						time.Sleep(time.Second)
					}
				}()
			}
			conn.SetReadDeadline(time.Now().Add(scTimeout + 3*time.Second))
			data, err := io.ReadAll(conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				errs <- fmt.Errorf("client %d: still connected after %v (read %q)", i, time.Since(start), data)
				return
			}
			// net/http hangs up, without an answer or with its own plain
			// "400 Bad Request" (408 in some versions): never with a
			// handler's answer.
			if len(data) > 0 && !bytes.HasPrefix(data, []byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain")) &&
				!bytes.HasPrefix(data, []byte("HTTP/1.1 408")) {
				errs <- fmt.Errorf("client %d: answered %q", i, data)
			}
		}()
	}
	// Meanwhile the server serves everyone else at once.
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	whWantOK(t, whPost(t, in, h.Path(), whContent("served during the attack")), h.Room)
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("a normal post took %v during the attack", d)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := time.Since(start); d > scTimeout+3*time.Second {
		t.Errorf("cutting off %d slow clients took %v", clients, d)
	}
}

// TestTricklingBodyCutOff: a webhook body that arrives too slowly is
// answered 400 (JSON) once the body deadline passes, counted from when the
// handler starts reading it; nothing is stored. A body sent in pieces
// within the deadline is read normally.
func TestTricklingBodyCutOff(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{WebhookRate: 100, WebhookBurst: 100, BodyTimeout: scTimeout})
	h := whNewHook(t, in, "Trickle")
	body := string(whContent("trickled in"))

	trickle := func(t *testing.T, head, body string, every time.Duration) *hxResp {
		conn := scDial(t, in)
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for i := 0; i < len(body); i++ {
				select {
				case <-stop:
					return
				case <-time.After(every):
				}
				if _, err := conn.Write([]byte{body[i]}); err != nil {
					return
				}
			}
		}()
		start := time.Now()
		conn.SetReadDeadline(start.Add(scTimeout + 4*time.Second))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		for err == nil && resp.StatusCode == http.StatusContinue {
			resp, err = http.ReadResponse(br, nil) // the final answer follows
		}
		if err != nil {
			t.Fatalf("no answer to a trickling body after %v: %v", time.Since(start), err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return &hxResp{status: resp.StatusCode, header: resp.Header, body: data, took: time.Since(start)}
	}
	cut := func(t *testing.T, r *hxResp) {
		t.Helper()
		if r.status != http.StatusBadRequest {
			t.Fatalf("trickling body: %d %s, want 400", r.status, r.body)
		}
		hxJSON(t, r)
		if r.took < scTimeout/2 || r.took > scTimeout+3*time.Second {
			t.Fatalf("answered after %v; the body deadline is %v", r.took, scTimeout)
		}
	}
	t.Run("Content-Length, one byte every 300 ms", func(t *testing.T) {
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", h.Path(), len(body))
		cut(t, trickle(t, head, body, 300*time.Millisecond))
	})
	t.Run("chunked, one byte every 300 ms", func(t *testing.T) {
		head := "POST " + h.Path() + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
		cut(t, trickle(t, head, hxChunks(body, 1), 300*time.Millisecond))
	})
	t.Run("Expect: 100-continue, then nothing", func(t *testing.T) {
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", h.Path(), len(body))
		cut(t, trickle(t, head, "", 0))
	})
	t.Run("in two pieces within the deadline", func(t *testing.T) {
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", h.Path(), len(body), body[:10])
		conn := scDial(t, in)
		io.WriteString(conn, head)
		time.Sleep(scTimeout / 3)
		io.WriteString(conn, body[10:])
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		whWantOK(t, &apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, h.Room)
	})
	// Only the last post was stored.
	msgs := in.Messages(t, in.AdminToken, h.Room)
	if len(msgs) != 1 || msgs[0]["Content"] != "trickled in" {
		t.Fatalf("stored %d messages, want only the one sent in time", len(msgs))
	}
}

// scSmallRecvBuffer makes a connection's receive window tiny, so that a
// client that does not read stalls the server's writes after a few KB.
func scSmallRecvBuffer(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	if err != nil {
		return err
	}
	return serr
}

// TestStalledStreamsDoNotBlockPublishers: clients open the event stream
// and never read it. Webhook posts to their room still succeed quickly,
// and a client that does read gets every message once. Like a browser's
// EventSource it reconnects with Last-Event-ID if the server drops it:
// where posting outruns its reading (on a fast disk the posts come at
// thousands a second), it is a slow client too (SPEC §4).
//
// For the stall to be real, a stalled stream must be sent more than the
// kernel buffers (the server's send buffer grows to about 4 MB on loopback)
// and then more events than its fan-out buffer holds (fanout.New(1024) in
// app): the first posts are big, the rest small. The stalled streams are
// then dropped by the fan-out (or by their write deadline), which shows
// when one of them finally reads: it gets fewer events than were posted.
func TestStalledStreamsDoNotBlockPublishers(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{WebhookRate: 1e6, WebhookBurst: 1e6})
	h := whNewHook(t, in, "Stalled")
	u, _ := url.Parse(in.URL)

	const stalled = 10
	dialer := net.Dialer{Timeout: 5 * time.Second, Control: scSmallRecvBuffer}
	var conns []net.Conn
	for range stalled {
		conn, err := dialer.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		fmt.Fprintf(conn, "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", in.AdminToken)
		conns = append(conns, conn) // never read (until the end)
	}
	live := in.OpenStream(t, in.AdminToken, "")
	// Read the live stream as the posts go, as a browser would.
	const posts, bigPosts = 1600, 600
	type liveResult struct {
		seen                   map[string]bool
		duplicates, reconnects int
		err                    error
	}
	got := make(chan liveResult, 1)
	go func() {
		r := liveResult{seen: make(map[string]bool, posts)}
		defer func() { got <- r }()
		timeout := time.After(60 * time.Second)
		stream, lastID := live, ""
		for len(r.seen) < posts {
			select {
			case ev, ok := <-stream.Events():
				if !ok {
					r.reconnects++
					if stream, r.err = in.TryOpenStream(in.AdminToken, lastID); r.err != nil {
						return
					}
					defer stream.Close()
					continue
				}
				if ev.ID != "" {
					lastID = ev.ID
				}
				if i := strings.Index(ev.Data, `"Content":"post-`); ev.Type == "message" && i >= 0 {
					key := ev.Data[i+11 : i+23]
					if r.seen[key] {
						r.duplicates++
					}
					r.seen[key] = true
				}
			case <-timeout:
				return
			}
		}
	}()

	big := strings.Repeat("filler ", 560) // ~3.9 KB of Content, ~8.5 KB of event
	var mu sync.Mutex
	var slowest time.Duration
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				content := fmt.Sprintf("post-%07d ", i)
				if i < bigPosts {
					content += big
				}
				t0 := time.Now()
				r, err := in.Try("POST", h.Path(), "", whContent(content))
				d := time.Since(t0)
				if err != nil || r.Status != 200 {
					t.Errorf("post %d: %v %v", i, err, r)
					continue
				}
				mu.Lock()
				slowest = max(slowest, d)
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i := range posts {
		next <- i
	}
	close(next)
	wg.Wait()
	took := time.Since(start)
	if slowest > 3*time.Second {
		t.Errorf("the slowest post took %v with %d stalled streams", slowest, stalled)
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("reconnecting the live stream: %v", r.err)
	}
	if len(r.seen) != posts || r.duplicates != 0 {
		t.Fatalf("the live stream got %d of %d messages, %d twice (%d reconnects)", len(r.seen), posts, r.duplicates, r.reconnects)
	}

	// A stalled client that reads at last: its stream ends (dropped), short
	// of the messages posted.
	conn := conns[0]
	conn.(*net.TCPConn).SetReadBuffer(1 << 20) // read the backlog quickly
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The stream ends cleanly (dropped by the fan-out) or the connection
	// is cut mid-stream (its write deadline passed first, as happens when
	// the posts take long, under the race detector).
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the stalled stream was not ended by the server: %v after %d bytes", err, len(data))
	}
	n := bytes.Count(data, []byte("event: message\n"))
	if n >= posts {
		t.Fatalf("the stalled stream got all %d messages: it was waited for, not dropped", n)
	}
	t.Logf("%d posts in %v with %d stalled streams: slowest %v; the live stream got them all (%d reconnects), a stalled one %d before it was dropped",
		posts, took, stalled, slowest, r.reconnects, n)
}

// scGoroutines is the goroutine count once it has settled (it may take a
// moment for closed connections' goroutines to end).
func scGoroutines(atMost int, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	n := runtime.NumGoroutine()
	for n > atMost && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

// TestDroppedConnectionsLeaveNoGoroutines: clients that hang up in the
// middle of a request (half the headers, half a body, an event stream
// just opened) leave no goroutines behind in the (in-process) server. Not
// parallel: it counts the process's goroutines.
func TestDroppedConnectionsLeaveNoGoroutines(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: 1000, WebhookBurst: 1000})
	h := whNewHook(t, in, "Dropped")
	body := string(whContent("never finished"))
	requests := []string{
		// Half a webhook body.
		fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", h.Path(), len(body), body[:len(body)/2]),
		// Half a chunked webhook body.
		"POST " + h.Path() + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + hxChunks(body, 5)[:20],
		// Half an API body.
		fmt.Sprintf("POST /api/v1/rooms HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 40\r\n\r\n{\"Name\":", in.AdminToken),
		// Half the headers.
		"POST " + h.Path() + " HTTP/1.1\r\nHost: x\r\nContent-Le",
		// An event stream, dropped once open.
		fmt.Sprintf("GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", in.AdminToken),
	}
	// Warm up every path once, so that lazily started goroutines (pools,
	// timers) are in the baseline.
	drop := func(raw string) {
		conn := scDial(t, in)
		io.WriteString(conn, raw)
		time.Sleep(5 * time.Millisecond)
		conn.Close()
	}
	for _, raw := range requests {
		drop(raw)
	}
	whWantOK(t, whPost(t, in, h.Path(), whContent("warm")), h.Room)
	in.Client.CloseIdleConnections()
	time.Sleep(300 * time.Millisecond)
	before := runtime.NumGoroutine()

	const rounds = 40 // × 5 kinds = 200 dropped connections
	var wg sync.WaitGroup
	for range rounds {
		for _, raw := range requests {
			wg.Add(1)
			go func() { defer wg.Done(); drop(raw) }()
		}
	}
	wg.Wait()
	// Still serving, and nothing left behind (a tolerance for goroutines
	// that come and go on their own).
	whWantOK(t, whPost(t, in, h.Path(), whContent("after the drops")), h.Room)
	in.Client.CloseIdleConnections()
	const tolerance = 10
	after := scGoroutines(before+tolerance, 5*time.Second)
	t.Logf("goroutines: %d before, %d after %d dropped connections", before, after, rounds*len(requests))
	if after > before+tolerance {
		var dump strings.Builder
		pprof.Lookup("goroutine").WriteTo(&dump, 1)
		t.Fatalf("%d goroutines before, %d after %d dropped connections:\n%s", before, after, rounds*len(requests), dump.String())
	}
}
