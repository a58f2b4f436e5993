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
	closed bool
}

type subscriber struct {
	ch   chan *carillon.Event
	once sync.Once
}

var _ carillon.Broker = (*Broker)(nil)

// New returns a Broker whose subscribers may fall behind by buffer events.
func New(buffer int) *Broker {
	return &Broker{buffer: buffer, subs: make(map[*subscriber]struct{})}
}

// Publish delivers ev to every subscriber without blocking.
func (b *Broker) Publish(_ context.Context, ev carillon.Event) error {
	var slow []*subscriber
	shared := &ev // one copy for every subscriber: a pointer per buffer slot
	b.mu.RLock()
	for s := range b.subs {
		select {
		case s.ch <- shared:
		default:
			slow = append(slow, s)
		}
	}
	b.mu.RUnlock()
	for _, s := range slow {
		b.drop(s)
	}
	return nil
}

// Subscribe registers a subscriber.
func (b *Broker) Subscribe() (<-chan *carillon.Event, func()) {
	s := &subscriber{ch: make(chan *carillon.Event, b.buffer)}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s.ch, func() { b.drop(s) }
}

// Close ends every subscription (at shutdown).
func (b *Broker) Close() {
	b.mu.Lock()
	b.closed = true
	subs := b.subs
	b.subs = make(map[*subscriber]struct{})
	b.mu.Unlock()
	for s := range subs {
		s.once.Do(func() { close(s.ch) })
	}
}

func (b *Broker) drop(s *subscriber) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
	s.once.Do(func() { close(s.ch) })
}
