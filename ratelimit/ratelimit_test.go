package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func TestBurstThenRate(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	l := New(1, 2, c.Now)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if r, _ := l.Reserve(ctx, "a"); !r.OK {
			t.Fatalf("reservation %d refused within the burst", i)
		}
	}
	r, _ := l.Reserve(ctx, "a")
	if r.OK || r.RetryAfter <= 0 || r.RetryAfter > time.Second {
		t.Fatalf("third reservation: %+v, want refused with a wait up to 1s", r)
	}
	if r, _ := l.Reserve(ctx, "b"); !r.OK {
		t.Fatal("another key shares the budget")
	}
	c.Advance(time.Second)
	if r, _ := l.Reserve(ctx, "a"); !r.OK {
		t.Fatal("no unit free after a second")
	}
}

func TestRefusalsSpendNothing(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	l := New(1, 1, c.Now)
	ctx := context.Background()
	l.Reserve(ctx, "a")
	for i := 0; i < 100; i++ {
		if r, _ := l.Reserve(ctx, "a"); r.OK {
			t.Fatal("accepted beyond the burst")
		}
	}
	c.Advance(time.Second)
	if r, _ := l.Reserve(ctx, "a"); !r.OK {
		t.Fatal("refused requests spent budget")
	}
}

func TestCancelGivesTheUnitBack(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	l := New(1, 1, c.Now)
	ctx := context.Background()
	r, _ := l.Reserve(ctx, "a")
	c.Advance(200 * time.Millisecond) // the write failed a little later
	r.Cancel()
	if r, _ := l.Reserve(ctx, "a"); !r.OK {
		t.Fatal("a cancelled reservation was not given back")
	}
}

func TestConcurrentExactlyBurst(t *testing.T) {
	l := New(1, 3, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, _ := l.Reserve(context.Background(), "a"); r.OK {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 3 {
		t.Fatalf("%d accepted, want 3", ok)
	}
}

func TestEvictForgetsFullBuckets(t *testing.T) {
	c := &clock{now: time.Unix(1000, 0)}
	l := New(1, 1, c.Now)
	for _, k := range []string{"a", "b", "c"} {
		l.Reserve(context.Background(), k)
	}
	l.Evict()
	if l.Len() != 3 {
		t.Fatalf("%d buckets after evicting busy ones, want 3", l.Len())
	}
	c.Advance(2 * time.Second)
	l.Evict()
	if l.Len() != 0 {
		t.Fatalf("%d buckets left after they refilled", l.Len())
	}
}

func BenchmarkReserve(b *testing.B) {
	l := New(1e9, 1e9, nil)
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Reserve(ctx, "webhook")
		}
	})
}
