package redisstore

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// twoLimiters returns two limiters sharing a prefix, each with a client of
// its own, as on two nodes.
func twoLimiters(t *testing.T, perSecond float64, burst int) (a, b *RateLimiter, prefix string) {
	prefix = testPrefix(t)
	opts := RateLimiterOptions{Prefix: prefix}
	a = NewRateLimiter(newClient(t, ""), perSecond, burst, opts)
	b = NewRateLimiter(newClient(t, ""), perSecond, burst, opts)
	return a, b, prefix
}

func TestRateLimiterExactlyBurstAcrossNodes(t *testing.T) {
	nodes := [2]*RateLimiter{}
	nodes[0], nodes[1], _ = twoLimiters(t, 0.1, 5)
	var wg sync.WaitGroup
	var ok atomic.Int32
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := nodes[i%2].Reserve(context.Background(), "w:1")
			if err != nil {
				errs <- err
				return
			}
			if r.OK {
				ok.Add(1)
			} else if r.RetryAfter <= 0 || r.RetryAfter > 10*time.Second {
				t.Errorf("refused with RetryAfter %v, want within the 10 s interval", r.RetryAfter)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if ok.Load() != 5 {
		t.Fatalf("%d of 50 concurrent reservations on two nodes accepted, want the burst of 5", ok.Load())
	}
	if r, _ := nodes[0].Reserve(context.Background(), "w:2"); !r.OK {
		t.Fatal("another key shares the budget")
	}
	if nodes[0].Degraded() || nodes[1].Degraded() {
		t.Fatal("degraded with Redis up")
	}
}

func TestRateLimiterRefusalSpendsNothing(t *testing.T) {
	a, b, _ := twoLimiters(t, 1, 1)
	ctx := context.Background()
	if r, _ := a.Reserve(ctx, "k"); !r.OK {
		t.Fatal("first reservation refused")
	}
	var last time.Duration
	for i := 0; i < 50; i++ {
		r, err := []*RateLimiter{a, b}[i%2].Reserve(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if r.OK {
			t.Fatalf("reservation %d accepted beyond the burst", i)
		}
		if r.Cancel != nil {
			t.Fatal("a refusal carries a Cancel")
		}
		if r.RetryAfter <= 0 || r.RetryAfter > time.Second {
			t.Fatalf("RetryAfter %v, want within the 1 s interval", r.RetryAfter)
		}
		last = r.RetryAfter
	}
	// Had the refusals spent anything, the wait would now be 50 s.
	time.Sleep(last + 20*time.Millisecond)
	if r, _ := b.Reserve(ctx, "k"); !r.OK {
		t.Fatal("refused after the announced RetryAfter: refusals spent budget")
	}
}

func TestRateLimiterCancelRefunds(t *testing.T) {
	a, b, prefix := twoLimiters(t, 0.1, 1)
	ctx := context.Background()
	r, _ := a.Reserve(ctx, "k")
	if !r.OK {
		t.Fatal("first reservation refused")
	}
	if r2, _ := b.Reserve(ctx, "k"); r2.OK {
		t.Fatal("second reservation accepted with a burst of 1")
	}
	r.Cancel()
	r2, _ := b.Reserve(ctx, "k")
	if !r2.OK {
		t.Fatal("the cancelled unit was not given back")
	}
	r.Cancel() // a second Cancel gives nothing more back
	if r3, _ := a.Reserve(ctx, "k"); r3.OK {
		t.Fatal("cancelling twice gave two units back")
	}
	// The key expires when its bucket is full again: within the interval.
	ttl := newClient(t, "").PTTL(ctx, prefix+"k").Val()
	if ttl <= 0 || ttl > 10*time.Second {
		t.Fatalf("key TTL %v, want within the 10 s interval", ttl)
	}
}

func TestRateLimiterIdleKeysExpire(t *testing.T) {
	a, _, prefix := twoLimiters(t, 20, 1) // full again 50 ms after a unit
	ctx := context.Background()
	a.Reserve(ctx, "k")
	admin := newClient(t, "")
	if admin.Exists(ctx, prefix+"k").Val() != 1 {
		t.Fatal("no key after a reservation")
	}
	eventually(t, 2*time.Second, "the idle key still exists", func() bool {
		return admin.Exists(ctx, prefix+"k").Val() == 0
	})
}

func TestRateLimiterDegradedLimitsPerNode(t *testing.T) {
	log, logs := newLogger()
	l := NewRateLimiter(deadClient(t), 0.1, 2, RateLimiterOptions{
		Prefix: testPrefix(t), Logger: log, ProbeInterval: 5 * time.Millisecond})
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		r, err := l.Reserve(ctx, "k")
		if err != nil || !r.OK {
			t.Fatalf("reservation %d within the burst: %+v, %v", i, r, err)
		}
	}
	for i := 0; i < 5; i++ {
		r, err := l.Reserve(ctx, "k")
		if err != nil {
			t.Fatalf("degraded Reserve failed: %v", err)
		}
		if r.OK || r.RetryAfter <= 0 {
			t.Fatalf("degraded limiter let %+v through beyond the burst", r)
		}
		time.Sleep(6 * time.Millisecond) // let it probe Redis again
	}
	if r, _ := l.Reserve(ctx, "other"); !r.OK {
		t.Fatal("another key refused")
	}
	if !l.Degraded() {
		t.Fatal("Degraded() false with Redis unreachable")
	}
	if n := logs.count("degraded"); n != 1 {
		t.Fatalf("logged degraded %d times, want once:\n%s", n, logs)
	}
}

func TestRateLimiterRecovers(t *testing.T) {
	client, dialer := flakyClient(t)
	log, logs := newLogger()
	l := NewRateLimiter(client, 0.1, 1, RateLimiterOptions{
		Prefix: testPrefix(t), Logger: log, ProbeInterval: 20 * time.Millisecond})
	ctx := context.Background()
	if r, _ := l.Reserve(ctx, "k"); !r.OK {
		t.Fatal("first reservation refused")
	}
	dialer.setDown(true)
	// The node limits alone: its own bucket is fresh, then spent.
	if r, err := l.Reserve(ctx, "k"); err != nil || !r.OK {
		t.Fatalf("first degraded reservation: %+v, %v", r, err)
	}
	if r, _ := l.Reserve(ctx, "k"); r.OK {
		t.Fatal("degraded limiter did not limit")
	}
	if !l.Degraded() {
		t.Fatal("not degraded while Redis is cut off")
	}
	dialer.setDown(false)
	// Back on Redis, where the budget was spent before the outage.
	eventually(t, 2*time.Second, "still degraded after Redis came back", func() bool {
		l.Reserve(ctx, "k")
		return !l.Degraded()
	})
	if r, _ := l.Reserve(ctx, "k"); r.OK {
		t.Fatal("after recovery the shared budget was not used")
	}
	if logs.count("degraded") != 1 || logs.count("reachable again") != 1 {
		t.Fatalf("want one degraded and one recovered notice:\n%s", logs)
	}
}

func TestRateLimiterUnlimited(t *testing.T) {
	l := NewRateLimiter(deadClient(t), math.Inf(1), 1, RateLimiterOptions{})
	for i := 0; i < 10; i++ {
		if r, _ := l.Reserve(context.Background(), "k"); !r.OK || r.Cancel == nil {
			t.Fatal("an infinite rate refused")
		}
	}
}
