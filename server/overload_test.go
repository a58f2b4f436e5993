package server_test

import (
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/carillon-chat/carillon/apptest"
)

// TestOverloadShedsFastAndStaysBounded offers five times the rate the
// server sustains (measured first, on this machine) and checks that every
// answer is a 200 or a 503 with Retry-After, that shedding happens, and that
// the process's goroutines and heap stay bounded. Latencies are logged, not
// asserted: speed belongs to benchmarks.
func TestOverloadShedsFastAndStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const hooks = 40
	in := apptest.Start(t, apptest.Options{WebhookRate: 1e6, WebhookBurst: 1e6, MaxInFlight: 64})
	var urls []string
	for r := 0; r < hooks/10; r++ {
		room := in.CreateRoom(t, in.AdminToken, fmt.Sprintf("Load %d", r))
		for i := 0; i < 10; i++ {
			urls = append(urls, in.CreateWebhook(t, in.AdminToken, room, fmt.Sprintf("h%d", i)).URL)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512}, Timeout: 30 * time.Second}
	post := func(i int) (int, string, time.Duration) {
		start := time.Now()
		resp, err := client.Post(urls[i%len(urls)], "application/json", strings.NewReader(`{"Content":"load"}`))
		if err != nil {
			return 0, err.Error(), time.Since(start)
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start)
	}

	// Sustainable rate: a closed loop of 16 clients for one second.
	var done int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := time.Now().Add(time.Second)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Now().Before(stop); i += 16 {
				if s, _, _ := post(i); s == 200 {
					mu.Lock()
					done++
					mu.Unlock()
				}
			}
		}(w)
	}
	wg.Wait()
	sustainable := max(done, 100)
	offered := 5 * sustainable
	t.Logf("sustainable ≈ %d posts/s; offering %d/s for 2 s", sustainable, offered)

	// Open loop: arrivals at 5× that rate, served by a bounded pool of
	// client connections; arrivals finding every connection busy are counted
	// as not sent, so the client itself stays bounded on this small machine.
	const clients = 256
	baseGoroutines := runtime.NumGoroutine()
	statuses := map[int]int{}
	var okLatencies, shedLatencies []time.Duration
	var notSent, peakGoroutines int
	arrivals := make(chan int, clients)
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range arrivals {
				status, retry, lat := post(i)
				mu.Lock()
				statuses[status]++
				switch status {
				case 200:
					okLatencies = append(okLatencies, lat)
				case 503, 429:
					if secs, err := strconv.Atoi(retry); err != nil || secs < 1 {
						t.Errorf("%d without a valid Retry-After (%q)", status, retry)
					}
					shedLatencies = append(shedLatencies, lat)
				default:
					t.Errorf("status %d (%s) under overload", status, retry)
				}
				mu.Unlock()
			}
		}()
	}
	interval := time.Second / time.Duration(offered)
	begin := time.Now()
	for i := 0; i < int(2*offered); i++ {
		if d := time.Until(begin.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		select {
		case arrivals <- i:
		default:
			notSent++
		}
		if i%100 == 0 {
			peakGoroutines = max(peakGoroutines, runtime.NumGoroutine())
		}
	}
	close(arrivals)
	wg.Wait()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("answers %v, %d arrivals found every client busy; 200 latency %s; 503 latency %s; goroutines base %d peak %d; heap in use %d MiB",
		statuses, notSent, percentiles(okLatencies), percentiles(shedLatencies), baseGoroutines, peakGoroutines, ms.HeapInuse>>20)
	if statuses[200] == 0 {
		t.Fatal("nothing accepted under overload")
	}
	// Goroutines: the clients (three each: the worker and its transport's
	// reader and writer) and, in the server, one per connection (plus
	// a reader each), never one queued per request.
	if limit := baseGoroutines + 6*clients + 100; peakGoroutines > limit {
		t.Fatalf("%d goroutines under overload, more than %d", peakGoroutines, limit)
	}
	if ms.HeapInuse > 256<<20 {
		t.Fatalf("heap in use %d MiB under overload", ms.HeapInuse>>20)
	}
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "n/a"
	}
	slices.Sort(d)
	at := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %v p99 %v max %v (n=%d)", at(0.5), at(0.99), d[len(d)-1].Round(time.Millisecond), len(d))
}
