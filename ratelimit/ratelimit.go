// Package ratelimit is the in-process RateLimiter: one token bucket per key
// (golang.org/x/time/rate), with idle buckets evicted so that memory follows
// the number of recently active keys, not of all keys ever seen.
package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/carillon-chat/carillon"
)

const shards = 64

// Limiter limits each key to a rate with a burst.
type Limiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time
	seed  maphash.Seed

	shards [shards]shard
}

type shard struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

var _ carillon.RateLimiter = (*Limiter)(nil)

// New returns a Limiter allowing perSecond events per key with the given
// burst. now is the clock (time.Now when nil).
func New(perSecond float64, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{limit: rate.Limit(perSecond), burst: max(burst, 1), now: now, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].buckets = make(map[string]*rate.Limiter)
	}
	return l
}

// Reserve takes one unit of key's budget if one is free now.
func (l *Limiter) Reserve(_ context.Context, key string) (carillon.Reservation, error) {
	s := &l.shards[maphash.String(l.seed, key)%shards]
	now := l.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	if b == nil {
		b = rate.NewLimiter(l.limit, l.burst)
		s.buckets[key] = b
	}
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return carillon.Reservation{RetryAfter: time.Duration(math.MaxInt64)}, nil
	}
	if wait := r.DelayFrom(now); wait > 0 {
		// Spend nothing on a refused request.
		r.CancelAt(now)
		return carillon.Reservation{RetryAfter: wait}, nil
	}
	return carillon.Reservation{OK: true, Cancel: func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		// Cancel as of the reservation's own time: x/time/rate restores
		// nothing for a reservation whose time to act has passed.
		r.CancelAt(now)
	}}, nil
}

// Run evicts full (idle) buckets every interval until ctx ends.
func (l *Limiter) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.Evict()
		}
	}
}

// Evict drops the buckets that are full again: forgetting them changes
// nothing, as a new bucket starts full.
func (l *Limiter) Evict() {
	now := l.now()
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, b := range s.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(s.buckets, k)
			}
		}
		s.mu.Unlock()
	}
}

// Len returns the number of buckets held.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
