package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/fanout"
)

// Broker defaults.
const (
	DefaultBrokerChannel  = "carillon:events"
	DefaultBrokerBuffer   = 1024
	DefaultPublishTimeout = 2 * time.Second
	DefaultHealthCheck    = 5 * time.Second
)

// Timings of the loss handling.
const (
	// gapRetry: how often a node that lost a publish retries telling the
	// others. Until that gets through, its publishes fail at once.
	gapRetry = 500 * time.Millisecond
	// Resubscription backoff.
	minBackoff = 50 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// BrokerOptions tunes a Broker. The zero value is ready to use.
type BrokerOptions struct {
	// Channel is the pub/sub channel (DefaultBrokerChannel when empty).
	// Every node of a cluster uses the same.
	Channel string
	// Buffer is how many events a local subscriber may fall behind before
	// it is dropped (DefaultBrokerBuffer when 0), as fanout.New's buffer.
	Buffer int
	// NodeID names this node's publications (random when empty). Two live
	// processes must never share one.
	NodeID string
	// PublishTimeout bounds one publish (DefaultPublishTimeout when 0).
	PublishTimeout time.Duration
	// HealthCheck: a subscription silent for this long is pinged, and
	// given up when the pong does not come within as long again
	// (DefaultHealthCheck when 0).
	HealthCheck time.Duration
	// Logger receives the loss, degraded and recovered notices
	// (slog.Default() when nil).
	Logger *slog.Logger
}

// Broker carries live events between nodes over one Redis pub/sub channel.
// Publish sends the event to Redis only; every node, the publisher's own
// included, has one subscriber goroutine that receives the channel and
// fans the events out to its local subscribers exactly like fanout (a
// buffered channel each, a subscriber that falls behind is dropped).
//
// Redis pub/sub is fire-and-forget: a message sent while a subscriber is
// disconnected is gone. Live events are only a fast path, storage is the
// truth (a stream subscribes, then replays from storage after its
// Last-Event-ID), so the rule here is that a loss is never silent: whenever
// an event may have been missed, every local subscriber that may have
// missed it is dropped (its channel closed), its client reconnects with
// Last-Event-ID, and the replay fills the hole. That happens:
//   - when the subscription's connection fails or a health-check ping goes
//     unanswered: the local subscribers are dropped at once, the
//     subscription is made anew (with backoff), and the subscribers that
//     registered while it was down are dropped again when it is confirmed,
//     as they too may have missed events;
//   - when a publish fails: the publishing node drops its own local
//     subscribers and, every 500 ms until it gets through, publishes a
//     control message with a "gap" flag, on which every node drops its
//     subscribers. Meanwhile its publishes fail at once (they too are
//     covered by that notice), so that no caller waits on an outage;
//   - when the per-node counter carried by each message skips a number
//     (defence in depth: Redis itself does not lose messages of a live
//     connection).
//
// Dropping everything on a hiccup makes the streams of the cluster
// reconnect together; their replays are keyset reads of what they missed,
// so the cost is a burst of small queries. While Redis stays down, streams
// still open and replay from storage, but get no live events until it is
// back (they are then dropped to replay again).
//
// Publishes of one node are serialized, so the events of one node reach
// every other node in the order they were published. Events of different
// nodes may interleave in any order.
type Broker struct {
	client         redis.UniversalClient
	channel        string
	buffer         int
	node           string
	publishTimeout time.Duration
	healthCheck    time.Duration
	log            *slog.Logger
	health         *health

	mu     sync.RWMutex
	local  *fanout.Broker // replaced (and the old one closed) on each drop
	ps     *redis.PubSub  // the current subscription
	closed bool
	live   atomic.Bool // the subscription is confirmed and healthy

	// The publishing side, under pubMu.
	pubMu      sync.Mutex
	counter    uint64
	gapPending bool // a publish failed; the others have not been told
	gapTimer   *time.Timer

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// envelope is one message on the channel.
type envelope struct {
	Node  string          `json:"n"`
	Count uint64          `json:"c"`           // per node, +1 for each publish attempted
	Gap   bool            `json:"g,omitempty"` // an earlier publish of the node failed
	Event *carillon.Event `json:"e,omitempty"` // nil for a control message
	// Signal: sent by Signal, outside the node's count; its loss is no gap.
	Signal bool `json:"s,omitempty"`
}

var _ carillon.Broker = (*Broker)(nil)

// NewBroker returns a Broker and starts its subscriber goroutine; Close
// stops it. Subscribers registered before the subscription is confirmed
// (see Healthy) are dropped when it is.
func NewBroker(client redis.UniversalClient, opts BrokerOptions) *Broker {
	if opts.Channel == "" {
		opts.Channel = DefaultBrokerChannel
	}
	if opts.Buffer <= 0 {
		opts.Buffer = DefaultBrokerBuffer
	}
	if opts.NodeID == "" {
		opts.NodeID = newNodeID()
	}
	if opts.PublishTimeout <= 0 {
		opts.PublishTimeout = DefaultPublishTimeout
	}
	if opts.HealthCheck <= 0 {
		opts.HealthCheck = DefaultHealthCheck
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	b := &Broker{
		client: client, channel: opts.Channel, buffer: opts.Buffer, node: opts.NodeID,
		publishTimeout: opts.PublishTimeout, healthCheck: opts.HealthCheck, log: opts.Logger,
		health: newHealth(opts.Logger, 0, nil,
			"redis unreachable: live events paused, streams replay from storage when it is back",
			"redis reachable again: live events flowing across nodes"),
		local: fanout.New(opts.Buffer),
		done:  make(chan struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	go b.run()
	return b
}

// Healthy reports whether the subscription is confirmed and working: only
// then do new subscribers get every event.
func (b *Broker) Healthy() bool { return b.live.Load() }

// Subscribe registers a local subscriber.
func (b *Broker) Subscribe(userID string) (<-chan *carillon.Event, func()) {
	b.mu.RLock()
	f := b.local
	b.mu.RUnlock()
	// If f is replaced and closed meanwhile, fanout either closes the new
	// subscription with the rest or returns it closed.
	return f.Subscribe(userID)
}

// Publish sends ev to the subscribers of every node, waiting at most
// PublishTimeout whatever ctx says. An error means the event did not reach
// Redis; the streams that missed it are dropped (see Broker). Publish still works after Close, so that what a node commits
// while shutting down reaches the other nodes.
func (b *Broker) Publish(ctx context.Context, ev carillon.Event) error {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	return b.send(ctx, &ev)
}

// errNotLive fails a Signal while the subscription is down.
var errNotLive = errors.New("redisstore: signal: redis unreachable")

// Signal sends ev to the subscribers of every node without Publish's
// promise: it takes no place in the node's count, and its loss drops no
// stream. For events a receiver can do without, such as the wake-ups of
// package feed, which reads the messages themselves from storage. While
// Redis is known to be down it fails at once.
func (b *Broker) Signal(ctx context.Context, ev carillon.Event) error {
	if !b.live.Load() {
		return errNotLive
	}
	data, err := json.Marshal(envelope{Node: b.node, Signal: true, Event: &ev})
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.publishTimeout)
	defer cancel()
	if err := b.client.Publish(pctx, b.channel, data).Err(); err != nil {
		return fmt.Errorf("redisstore: signal: %w", err)
	}
	return nil
}

// errGapPending fails the publishes made before the other nodes have
// heard of an earlier failure.
var errGapPending = errors.New("redisstore: publish: redis failed moments ago")

// send publishes one envelope (the gap notice when ev is nil). Under pubMu.
func (b *Broker) send(ctx context.Context, ev *carillon.Event) error {
	b.counter++
	if b.gapPending && ev != nil {
		b.publishFailed(errGapPending)
		return errGapPending
	}
	env := envelope{Node: b.node, Count: b.counter, Gap: b.gapPending, Event: ev}
	data, err := json.Marshal(env)
	if err == nil {
		// A caller that leaves does not cancel the publish: half-sent
		// events would cost every stream of the cluster a reconnection.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.publishTimeout)
		err = b.client.Publish(pctx, b.channel, data).Err()
		cancel()
	}
	if err != nil {
		b.publishFailed(err)
		return fmt.Errorf("redisstore: publish: %w", err)
	}
	b.gapPending = false
	return nil
}

// publishFailed handles a lost publish: this node's subscribers missed the
// event, so they go now; the other nodes' go when the gap flag reaches
// them. Under pubMu.
func (b *Broker) publishFailed(err error) {
	if !b.gapPending {
		b.log.Warn("live event lost in publishing: streams dropped to replay from storage", "err", err)
	}
	b.gapPending = true
	b.dropAll()
	if b.gapTimer == nil && !errors.Is(err, redis.ErrClosed) {
		b.gapTimer = time.AfterFunc(gapRetry, b.sendGap)
	}
}

// sendGap tells the other nodes that this one lost a publish.
func (b *Broker) sendGap() {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	b.gapTimer = nil
	if b.gapPending {
		b.send(context.Background(), nil) // on failure, retries later
	}
}

// Close ends every local subscription and stops receiving. Publish still
// works.
func (b *Broker) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	f, ps := b.local, b.ps
	b.mu.Unlock()
	b.cancel()
	if ps != nil {
		ps.Close() // unblocks the receiving goroutine
	}
	<-b.done
	b.live.Store(false)
	f.Close()
}

// dropAll closes every local subscription: their clients reconnect and
// replay what they missed from storage.
func (b *Broker) dropAll() {
	b.mu.Lock()
	old := b.local
	if !b.closed {
		b.local = fanout.New(b.buffer)
	}
	b.mu.Unlock()
	old.Close()
}

// run is the subscriber goroutine: it (re)subscribes until Close.
func (b *Broker) run() {
	defer close(b.done)
	backoff := minBackoff
	for {
		confirmed, err := b.receive()
		if b.ctx.Err() != nil {
			return
		}
		// Whatever was in flight while the connection failed is lost for
		// the local subscribers: drop them.
		b.live.Store(false)
		b.dropAll()
		b.health.fail(err)
		if confirmed {
			backoff = minBackoff
		}
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// receive runs one subscription until it fails, and reports whether it
// was confirmed.
func (b *Broker) receive() (confirmed bool, err error) {
	ps := b.client.Subscribe(b.ctx, b.channel)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		ps.Close()
		return false, redis.ErrClosed
	}
	b.ps = ps
	b.mu.Unlock()
	defer ps.Close()

	last := make(map[string]uint64) // the last count seen of each node
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(b.ctx, b.healthCheck)
		if err != nil {
			if isTimeout(err) && !pinged {
				if err := ps.Ping(b.ctx); err != nil {
					return confirmed, err
				}
				pinged = true
				continue
			}
			return confirmed, err
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Channel != b.channel {
				continue
			}
			if m.Kind != "subscribe" {
				return confirmed, fmt.Errorf("redisstore: unexpected %s of %s", m.Kind, m.Channel)
			}
			// From now on every event published reaches this node. The
			// subscribers that came before may have missed some.
			confirmed = true
			b.dropAll()
			b.health.ok() // logged before anyone can see the broker healthy
			b.live.Store(true)
		case *redis.Message:
			b.deliver(m.Payload, last)
		case *redis.Pong:
		}
	}
}

// deliver fans one message out to the local subscribers, first dropping
// them all if it reveals a loss.
func (b *Broker) deliver(payload string, last map[string]uint64) {
	var env envelope
	if err := json.Unmarshal([]byte(payload), &env); err != nil || env.Node == "" {
		b.log.Warn("ignoring a malformed message on the live events channel", "channel", b.channel)
		return
	}
	if !env.Signal {
		prev, known := last[env.Node]
		last[env.Node] = env.Count
		if env.Gap || (known && env.Count != prev+1) {
			b.log.Warn("live events lost: streams dropped to replay from storage", "node", env.Node)
			b.dropAll()
		}
	}
	if env.Event == nil {
		return
	}
	b.mu.RLock()
	f := b.local
	b.mu.RUnlock()
	f.Publish(b.ctx, *env.Event)
}
