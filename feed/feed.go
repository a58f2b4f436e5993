// Package feed is the Broker of a cluster node's event streams. Messages
// and notifications committed by any node are read from storage by one
// goroutine per node, in commit order, and handed to the node's streams
// through an in-process broker; the cluster's broker (Redis) only says
// that there is something new, and carries the events that storage does
// not hold (presence, rooms, members).
//
// Without it every stream of a node read its own catch-up from storage on
// every live message, one query per stream and message: with 2,000 streams
// in a room, PostgreSQL spent most of a core on two messages a second.
package feed

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/fanout"
)

const (
	// readPage is how many messages and notifications one read returns.
	readPage = 500
	// pollInterval reads storage even without a signal: a signal lost by
	// the cluster's broker delays messages by at most this long.
	pollInterval = time.Second
	// resubscribeWait paces resubscribing while the cluster's broker is
	// down.
	resubscribeWait = 100 * time.Millisecond
)

// ClusterBroker is the broker that spans the nodes.
type ClusterBroker interface {
	carillon.Broker
	Close()
}

// Broker orders a node's live events by storage.
type Broker struct {
	cluster ClusterBroker
	store   carillon.Store
	buffer  int
	log     *slog.Logger

	mu     sync.Mutex
	local  *fanout.Broker // replaced (the old one closed) when the cluster's subscription drops
	closed bool
	// streams is how many of the node's streams are subscribed, and
	// subscribed how many ever were: while none is, the reader only keeps
	// its position current instead of reading every message.
	streams, subscribed int64

	poke   chan struct{} // something new was committed
	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
}

var _ carillon.Broker = (*Broker)(nil)

// New starts the node's feed. Streams then read messages from storage
// after the newest one committed now.
func New(ctx context.Context, cluster ClusterBroker, store carillon.Store, buffer int, log *slog.Logger) (*Broker, error) {
	newest, err := store.NewestSeq(ctx)
	if err != nil {
		return nil, err
	}
	b := &Broker{cluster: cluster, store: store, buffer: buffer, log: log, local: fanout.New(buffer), poke: make(chan struct{}, 1)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.done.Add(2)
	go b.listen()
	go b.read(carillon.EventPosition{Seq: newest, Notification: true})
	return b, nil
}

// signaler is a cluster broker that can send an event whose loss is
// harmless (redisstore.Broker): a lost wake-up only waits for the poll,
// where a lost Publish would drop every stream to make it reload.
type signaler interface {
	Signal(ctx context.Context, ev carillon.Event) error
}

// Publish sends ev to every node. A message or notification wakes this
// node's reader at once, and the other nodes' by a signal.
func (b *Broker) Publish(ctx context.Context, ev carillon.Event) error {
	if stored(ev.Type) {
		b.wake()
		if s, ok := b.cluster.(signaler); ok {
			// The other nodes read the event itself from storage.
			return s.Signal(ctx, carillon.Event{Type: ev.Type, RoomID: ev.RoomID, Seq: ev.Seq})
		}
	}
	return b.cluster.Publish(ctx, ev)
}

// Subscribe registers one of this node's streams.
func (b *Broker) Subscribe(userID string) (<-chan *carillon.Event, func()) {
	b.mu.Lock()
	local := b.local
	b.streams++
	b.subscribed++
	b.mu.Unlock()
	events, cancel := local.Subscribe(userID)
	var once sync.Once
	return events, func() {
		once.Do(func() {
			cancel()
			b.mu.Lock()
			b.streams--
			b.mu.Unlock()
		})
	}
}

// skipWhileIdle moves pos past everything committed when the node has no
// stream: nothing would read the events, and reading every message of a
// busy cluster from storage on every node doubled PostgreSQL's work per
// message in an ingest run. The newest position is read before checking
// that no stream subscribed meanwhile, so that a stream subscribing at any
// point still gets every message committed after it did. It reports
// whether pos was moved.
func (b *Broker) skipWhileIdle(pos *carillon.EventPosition) bool {
	b.mu.Lock()
	streams, subscribed := b.streams, b.subscribed
	b.mu.Unlock()
	if streams > 0 {
		return false
	}
	newest, err := b.store.NewestSeq(b.ctx)
	if err != nil {
		return false // read as usual
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subscribed != subscribed {
		return false
	}
	if newest > pos.Seq || (newest == pos.Seq && !pos.Notification) {
		*pos = carillon.EventPosition{Seq: newest, Notification: true}
	}
	return true
}

// Close ends every stream of the node and stops the feed.
func (b *Broker) Close() {
	b.mu.Lock()
	b.closed = true
	local := b.local
	b.mu.Unlock()
	local.Close()
	b.cancel()
	b.done.Wait()
	b.cluster.Close()
}

func stored(eventType string) bool {
	return eventType == carillon.EventMessage || eventType == carillon.EventNotification
}

func (b *Broker) wake() {
	select {
	case b.poke <- struct{}{}:
	default:
	}
}

// listen follows the cluster's events: stored ones wake the reader, the
// others go to the streams as they are.
func (b *Broker) listen() {
	defer b.done.Done()
	for b.ctx.Err() == nil {
		events, cancel := b.cluster.Subscribe("")
		n, open := 0, true
		for open {
			var ev *carillon.Event
			select {
			case <-b.ctx.Done():
				cancel()
				return
			case ev, open = <-events:
			}
			if !open {
				break
			}
			n++
			if stored(ev.Type) {
				b.wake()
				continue
			}
			b.localBroker().Publish(b.ctx, *ev)
		}
		cancel()
		// The cluster's broker dropped us (it lost events or is down):
		// the streams may have missed presence or room events, so they
		// reconnect and reload; messages they get from storage anyway.
		b.dropStreams()
		b.wake()
		if n == 0 {
			select {
			case <-b.ctx.Done():
			case <-time.After(resubscribeWait):
			}
		}
	}
}

func (b *Broker) localBroker() *fanout.Broker {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.local
}

func (b *Broker) dropStreams() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	old := b.local
	b.local = fanout.New(b.buffer)
	b.mu.Unlock()
	old.Close()
}

// read hands the streams, in commit order, what was committed after pos,
// whenever woken and at least every pollInterval.
func (b *Broker) read(pos carillon.EventPosition) {
	defer b.done.Done()
	poll := time.NewTicker(pollInterval)
	defer poll.Stop()
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.poke:
		case <-poll.C:
		}
		if b.skipWhileIdle(&pos) {
			continue
		}
		for {
			items, err := b.store.Replay(b.ctx, "", pos, readPage)
			if err != nil {
				if b.ctx.Err() == nil {
					b.log.Warn("live messages not read from storage", "err", err)
				}
				break // tried again at the next signal or poll
			}
			local := b.localBroker()
			for _, it := range items {
				ev, next := event(it)
				local.Publish(b.ctx, ev)
				pos = next
			}
			if len(items) < readPage {
				break
			}
		}
	}
}

// event is the live event of a stored message or notification and the
// position after it.
func event(it carillon.ReplayItem) (carillon.Event, carillon.EventPosition) {
	if m := it.Message; m != nil {
		return carillon.MessageEvent(m), carillon.EventPosition{Seq: m.Seq}
	}
	n := it.Notification
	return carillon.NotificationEvent(n), carillon.EventPosition{Seq: n.MessageSeq, Notification: true}
}
