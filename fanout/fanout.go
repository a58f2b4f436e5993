// Package fanout is the in-process Broker: every published event goes to
// every subscriber's buffered channel. A subscriber whose buffer is full is
// dropped (its channel closed) so that a slow client never slows the
// publisher or the other clients.
package fanout

import (
	"context"
	"sync"

	"github.com/carillon-chat/carillon"
)

// Broker fans events out within one process.
type Broker struct {
	buffer int

	mu     sync.RWMutex
	subs   map[*subscriber]struct{}
	byUser map[string]map[*subscriber]struct{} // "" holds subscribers of everything
	closed bool
}

type subscriber struct {
	user string
	ch   chan *carillon.Event
	once sync.Once
}

var _ carillon.Broker = (*Broker)(nil)

// New returns a Broker whose subscribers may fall behind by buffer events.
func New(buffer int) *Broker {
	return &Broker{buffer: buffer, subs: make(map[*subscriber]struct{}), byUser: make(map[string]map[*subscriber]struct{})}
}

// Publish delivers ev without blocking: an event for given users only to
// their subscribers (and to subscribers of everything), any other to every
// subscriber.
func (b *Broker) Publish(_ context.Context, ev carillon.Event) error {
	var slow []*subscriber
	shared := &ev // one copy for every subscriber: a pointer per buffer slot
	send := func(subs map[*subscriber]struct{}) {
		for s := range subs {
			select {
			case s.ch <- shared:
			default:
				slow = append(slow, s)
			}
		}
	}
	b.mu.RLock()
	if ev.UserIDs == nil {
		send(b.subs)
	} else {
		seen := make(map[string]bool, len(ev.UserIDs))
		for _, id := range ev.UserIDs {
			if id != "" && !seen[id] {
				seen[id] = true
				send(b.byUser[id])
			}
		}
		send(b.byUser[""])
	}
	b.mu.RUnlock()
	for _, s := range slow {
		b.drop(s)
	}
	return nil
}

// Subscribe registers a subscriber for userID's events ("" for every
// event).
func (b *Broker) Subscribe(userID string) (<-chan *carillon.Event, func()) {
	s := &subscriber{user: userID, ch: make(chan *carillon.Event, b.buffer)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	b.subs[s] = struct{}{}
	if b.byUser[userID] == nil {
		b.byUser[userID] = make(map[*subscriber]struct{})
	}
	b.byUser[userID][s] = struct{}{}
	b.mu.Unlock()
	return s.ch, func() { b.drop(s) }
}

// Close ends every subscription (at shutdown).
func (b *Broker) Close() {
	b.mu.Lock()
	b.closed = true
	subs := b.subs
	b.subs = make(map[*subscriber]struct{})
	b.byUser = make(map[string]map[*subscriber]struct{})
	b.mu.Unlock()
	for s := range subs {
		s.once.Do(func() { close(s.ch) })
	}
}

func (b *Broker) drop(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	if u := b.byUser[s.user]; u != nil {
		delete(u, s)
		if len(u) == 0 {
			delete(b.byUser, s.user)
		}
	}
	b.mu.Unlock()
	s.once.Do(func() { close(s.ch) })
}
