// Package presence is the in-process Presence: a member is present while at
// least one of their event streams is open, and for a grace period after
// the last one closes. Changes are merged and reported at most once per
// flush interval.
package presence

import (
	"context"
	"sync"
	"time"

	"github.com/carillon-chat/carillon"
)

// Tracker tracks presence within one process.
type Tracker struct {
	grace time.Duration
	now   func() time.Time

	mu    sync.Mutex
	users map[string]*state
}

type state struct {
	streams   int
	lastClose time.Time
	announced bool // the presence last reported
}

var _ carillon.Presence = (*Tracker)(nil)

// New returns a Tracker with the given grace period after the last stream
// closes. now is the clock (time.Now when nil).
func New(grace time.Duration, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{grace: grace, now: now, users: make(map[string]*state)}
}

// Connect records an open stream of userID; the returned function records
// its close.
func (t *Tracker) Connect(_ context.Context, userID string) (func(), error) {
	t.mu.Lock()
	st := t.users[userID]
	if st == nil {
		st = &state{}
		t.users[userID] = st
	}
	st.streams++
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			st.streams--
			if st.streams == 0 {
				st.lastClose = t.now()
			}
			t.mu.Unlock()
		})
	}, nil
}

func (t *Tracker) present(st *state, now time.Time) bool {
	return st != nil && (st.streams > 0 || now.Sub(st.lastClose) < t.grace)
}

// Present reports which of the given users are present now.
func (t *Tracker) Present(_ context.Context, userIDs []string) (map[string]bool, error) {
	now := t.now()
	out := make(map[string]bool, len(userIDs))
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range userIDs {
		if t.present(t.users[id], now) {
			out[id] = true
		}
	}
	return out, nil
}

// Changes returns the users whose presence differs from what was last
// reported, with their presence now, and forgets users who are gone. A
// stream closed and reopened within the grace period changes nothing.
func (t *Tracker) Changes(_ context.Context) (map[string]bool, error) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]bool{}
	for id, st := range t.users {
		p := t.present(st, now)
		if p != st.announced {
			out[id] = p
			st.announced = p
		}
		if !p && st.streams == 0 {
			delete(t.users, id)
		}
	}
	return out, nil
}
