// Package fanout is the in-process Broker: every published event goes to
// every subscriber's queue. A subscriber more than its buffer behind is
// dropped (its channel closed) so that a slow client never slows the
// publisher or the other clients.
//
// A subscriber's channel is small (channelSize); events beyond it wait in
// a slice that a goroutine feeds into the channel, started only while the
// subscriber lags. Memory then follows the actual backlog: 10,000 idle
// streams do not each hold a 1,024-slot channel.
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

// channelSize is the capacity of a subscriber's channel.
const channelSize = 32

type subscriber struct {
	user  string
	limit int // events it may lag behind before it is dropped
	ch    chan *carillon.Event

	mu       sync.Mutex
	overflow []*carillon.Event // waiting for room in ch, oldest first
	pumping  bool              // a pump goroutine owns sending to ch
	dropped  bool
	done     chan struct{} // closed when dropped
}

// offer queues ev; false means the subscriber is too far behind.
func (s *subscriber) offer(ev *carillon.Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return true
	}
	if !s.pumping {
		select {
		case s.ch <- ev:
			return true
		default:
		}
	}
	if len(s.ch)+len(s.overflow) >= s.limit {
		return false
	}
	s.overflow = append(s.overflow, ev)
	if !s.pumping {
		s.pumping = true
		go s.pump()
	}
	return true
}

// pump moves overflowed events into the channel in order, then exits.
func (s *subscriber) pump() {
	for {
		s.mu.Lock()
		if s.dropped || len(s.overflow) == 0 {
			s.pumping = false
			s.overflow = nil
			if s.dropped {
				close(s.ch)
			}
			s.mu.Unlock()
			return
		}
		ev := s.overflow[0]
		s.overflow[0] = nil
		s.overflow = s.overflow[1:]
		s.mu.Unlock()
		select {
		case s.ch <- ev:
		case <-s.done:
		}
	}
}

// drop ends the subscription: its channel is closed once what is already
// in it has been read.
func (s *subscriber) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped {
		return
	}
	s.dropped = true
	close(s.done)
	if !s.pumping {
		close(s.ch) // else the pump closes it, being its only sender
	}
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
			if !s.offer(shared) {
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
	s := &subscriber{user: userID, limit: b.buffer, ch: make(chan *carillon.Event, min(b.buffer, channelSize)), done: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		s.drop()
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
		s.drop()
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
	s.drop()
}
