package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestScheduleMath(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, rate := range []float64{1, 3, 100, 15000, 33333.3} {
		s := Schedule{Start: start, Rate: rate}
		if s.Due(start.Add(-time.Nanosecond)) != 0 || s.Due(start) != 1 {
			t.Fatalf("rate %v: request 0 is not due exactly at the start", rate)
		}
		for _, k := range []uint64{1, 2, 7, 1000, 123457} {
			at := s.At(k)
			if s.Due(at) != k+1 || s.Due(at.Add(-time.Nanosecond)) != k {
				t.Fatalf("rate %v: k=%d due at %v: Due(at)=%d Due(at-1ns)=%d", rate, k, at, s.Due(at), s.Due(at.Add(-time.Nanosecond)))
			}
			// Fixed intervals: At(k) is k/rate after the start (to the ns).
			want := time.Duration(float64(k) / rate * 1e9)
			if d := at.Sub(start) - want; d < -time.Nanosecond || d > time.Nanosecond {
				t.Fatalf("rate %v: At(%d) = start+%v, want +%v", rate, k, at.Sub(start), want)
			}
		}
		// Over one second exactly rate requests are due (plus request 0).
		if got, want := s.Due(start.Add(time.Second-time.Nanosecond)), uint64(rate); got != want && got != want+1 {
			t.Fatalf("rate %v: %d due in the first second", rate, got)
		}
	}
}

func TestOpenLoopKeepsRate(t *testing.T) {
	var calls atomic.Int64
	cfg := LoadConfig{Workers: 64, Rate: 2000, Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond}
	res := RunLoad(context.Background(), cfg, func(ctx context.Context, c Call) Outcome {
		calls.Add(1)
		time.Sleep(2 * time.Millisecond)
		return Outcome{OK: true, Status: 200}
	})
	// 2000/s × 0.5 s in the window, 200 more in the warm-up.
	if res.Scheduled < 998 || res.Scheduled > 1002 {
		t.Errorf("scheduled %d in the window, want 1000", res.Scheduled)
	}
	if res.Dropped != 0 || res.Requests != res.Scheduled || res.OK != res.Requests {
		t.Errorf("dropped %d, requests %d, ok %d of %d scheduled", res.Dropped, res.Requests, res.OK, res.Scheduled)
	}
	if n := calls.Load(); n < 1195 || n > 1205 {
		t.Errorf("%d calls, want 1200 (window + warm-up)", n)
	}
	if res.WarmupReqs < 195 || res.WarmupReqs > 205 {
		t.Errorf("warm-up requests %d, want 200", res.WarmupReqs)
	}
	if p50 := res.Hist.Quantile(0.5); p50 < 2*time.Millisecond || p50 > 50*time.Millisecond {
		t.Errorf("p50 %v for a 2 ms request", p50)
	}
	if res.Mode != "open" || res.Window < 450*time.Millisecond || res.Window > 550*time.Millisecond {
		t.Errorf("mode %s, window %v", res.Mode, res.Window)
	}
}

// A server that stalls must show up as latency counted from the
// schedule, as dropped requests once the in-flight bound is reached, and
// not as a lower request rate with low latency.
func TestOpenLoopCountsStallFromSchedule(t *testing.T) {
	var inflight, peak atomic.Int64
	cfg := LoadConfig{Workers: 10, Rate: 1000, Duration: 300 * time.Millisecond}
	res := RunLoad(context.Background(), cfg, func(ctx context.Context, c Call) Outcome {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer inflight.Add(-1)
		time.Sleep(100 * time.Millisecond)
		return Outcome{OK: true, Status: 200}
	})
	if peak.Load() > 10 {
		t.Errorf("%d requests in flight, limit 10", peak.Load())
	}
	// 10 in flight for 100 ms each: ~30 served plus ≤10 backlogged; the
	// rest of the ~300 scheduled are dropped.
	if res.Dropped < 200 {
		t.Errorf("dropped %d of %d scheduled", res.Dropped, res.Scheduled)
	}
	if res.Requests+res.Dropped != res.Scheduled {
		t.Errorf("requests %d + dropped %d != scheduled %d", res.Requests, res.Dropped, res.Scheduled)
	}
	// Backlogged requests waited for a slot: their latency from the
	// schedule is well above the 100 ms service time.
	if res.Hist.Quantile(0.99) < 150*time.Millisecond || res.Hist.Min() < 100*time.Millisecond {
		t.Errorf("latency min %v p99 %v: the wait for a slot is not counted", res.Hist.Min(), res.Hist.Quantile(0.99))
	}
	if res.Late == 0 {
		t.Error("no request counted as late")
	}
}

func TestClosedLoop(t *testing.T) {
	var seqs sync.Map
	cfg := LoadConfig{Workers: 4, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond}
	res := RunLoad(context.Background(), cfg, func(ctx context.Context, c Call) Outcome {
		if _, dup := seqs.LoadOrStore(c.Seq, true); dup {
			t.Errorf("sequence number %d given twice", c.Seq)
		}
		time.Sleep(time.Millisecond)
		if c.Seq%10 == 0 {
			return Outcome{Status: 503}
		}
		return Outcome{OK: true, Status: 200}
	})
	// 4 workers × ~1 ms per request × 200 ms: a few hundred requests.
	if res.Requests < 100 || res.Requests > 900 {
		t.Errorf("%d requests", res.Requests)
	}
	if res.Status[503] == 0 || res.Status[200] != res.OK || res.Status[503]+res.OK != res.Requests {
		t.Errorf("status %v, ok %d, requests %d", res.Status, res.OK, res.Requests)
	}
	if res.Hist.Quantile(0.5) < time.Millisecond {
		t.Errorf("p50 %v below the 1 ms request", res.Hist.Quantile(0.5))
	}

	capped := RunLoad(context.Background(), LoadConfig{Workers: 3, Duration: 10 * time.Second, MaxRequests: 50},
		func(ctx context.Context, c Call) Outcome { return Outcome{OK: true, Status: 200} })
	if capped.Requests != 50 || capped.Window > 5*time.Second {
		t.Errorf("MaxRequests 50: %d requests in %v", capped.Requests, capped.Window)
	}
}

// The poster keeps each target at most once per gap, round-robin, and
// verifies answers.
func TestPosterPacingAndVerification(t *testing.T) {
	var mu sync.Mutex
	last := map[string]time.Time{}
	var tooSoon atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		id := strings.TrimPrefix(r.URL.Path, "/incomingwebhooks/")
		mu.Lock()
		if prev, ok := last[id]; ok && time.Since(prev) < 35*time.Millisecond {
			tooSoon.Add(1)
		}
		last[id] = time.Now()
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if id == "bad" {
			fmt.Fprint(w, `{"MessageId":"nope"}`)
			return
		}
		fmt.Fprintf(w, `{"MessageId":"%s","RoomId":"%s"}`, "11111111-2222-4333-8444-555555555555", baselineRoomID)
	}))
	defer srv.Close()
	p := &poster{client: srv.Client(), body: contentBody(sampleContent), gap: 50 * time.Millisecond}
	for _, id := range []string{"a", "b", "c"} {
		p.targets = append(p.targets, &postTarget{url: srv.URL + "/incomingwebhooks/" + id, roomID: baselineRoomID, status: 200})
	}
	res := RunLoad(context.Background(), LoadConfig{Workers: 8, Duration: 300 * time.Millisecond}, p.shot)
	// 3 targets at 20/s each: ~18 posts in 300 ms, never two within 50 ms
	// as sent (the server side allows for arrival jitter).
	if res.OK < 6 || res.OK > 21 || res.OK != res.Requests {
		t.Errorf("%d OK of %d requests, want ~18", res.OK, res.Requests)
	}
	if tooSoon.Load() > 0 {
		t.Errorf("%d posts came less than the gap after the previous one to the same target", tooSoon.Load())
	}
	if p.paceWaits.Load() == 0 {
		t.Error("no request waited for its target")
	}

	bad := &poster{client: srv.Client(), body: contentBody("x"),
		targets: []*postTarget{{url: srv.URL + "/incomingwebhooks/bad", status: 200}}}
	if o := bad.shot(context.Background(), Call{}); o.OK || !strings.Contains(o.Bad, "MessageId") {
		t.Errorf("a 200 without MessageId: %+v", o)
	}
	wrongRoom := &poster{client: srv.Client(), body: contentBody("x"),
		targets: []*postTarget{{url: srv.URL + "/incomingwebhooks/a", roomID: "00000000-0000-4000-8000-00000000abcd", status: 200}}}
	if o := wrongRoom.shot(context.Background(), Call{}); o.OK || !strings.Contains(o.Bad, "room") {
		t.Errorf("a 200 naming another room: %+v", o)
	}
	refused := &poster{client: srv.Client(), body: contentBody("x"),
		targets: []*postTarget{{url: "http://127.0.0.1:1/incomingwebhooks/a?token=secret", status: 200}}}
	o := refused.shot(context.Background(), Call{})
	if o.Err == "" || strings.Contains(o.Err, "secret") {
		t.Errorf("transport error %q (must be set and must not hold the URL)", o.Err)
	}
}

func TestSSEReader(t *testing.T) {
	long := strings.Repeat("x", 40<<10)
	stream := ": connected\n\n" +
		"event: presence\ndata: {\"MemberId\":\"u\",\"Present\":true}\n\n" +
		"id: 7\nevent: message\ndata: {\"MessageId\":\"11111111-2222-4333-8444-555555555555\",\"Content\":\"\\\"MessageId\\\":\\\"\"}\n\n" +
		": keep-alive\n\n" +
		"id: 8\r\nevent:message\r\ndata: {\"MessageId\":\"aaaaaaaa-2222-4333-8444-555555555555\",\"Html\":\"" + long + "\"}\r\n\r\n" +
		"event: notification\ndata: {\"MessageId\":\"bbbbbbbb-2222-4333-8444-555555555555\"}\n\n"
	var got []string
	err := newSSEReader(strings.NewReader(stream)).run(func(id []byte, at time.Time) { got = append(got, string(id)) })
	if err != io.EOF {
		t.Fatalf("run: %v", err)
	}
	want := []string{"11111111-2222-4333-8444-555555555555", "aaaaaaaa-2222-4333-8444-555555555555"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
