// Package redisstore holds the Redis-backed services of a multi-node
// deployment (SPEC §6 "Scale-out"): a RateLimiter whose budget is shared by
// every node, a Presence that sees the streams of every node, and a Broker
// that carries live events from the node that stores a message to the
// streams of every node.
//
// Every constructor takes a client the caller owns (and closes, after the
// services are done with it); nothing here opens or closes clients.
//
// Redis is a helper here, never the source of truth, and each service says
// what it does while Redis is unreachable:
//   - RateLimiter falls back to a per-node in-process limiter (SPEC §1:
//     getting alerts through matters more than exact throttling);
//   - Presence answers Present from this node's own streams and fails
//     Changes until Redis is back;
//   - Broker drops its local subscribers, whose clients reconnect and replay
//     from storage with Last-Event-ID, so that a lost pub/sub message is
//     never a lost message.
//
// Each logs once when it starts degrading and once when it recovers.
//
// The Lua scripts read the clock with TIME, so every node measures time on
// the Redis server's clock and node clocks may drift freely. That needs
// Redis 5 or later (scripts replicated by effects). The keys of one script
// call are declared in KEYS; with Redis Cluster they would also have to
// share a hash slot (a prefix with a hash tag such as "{carillon}:"), which
// the default prefixes do not do: a single Redis (with replicas and
// Sentinel if wanted) is the supported layout.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults shared by the services.
const (
	// DefaultTimeout bounds one call to Redis made on a request's behalf.
	DefaultTimeout = 500 * time.Millisecond
	// DefaultProbeInterval is how often a degraded service checks whether
	// Redis is back.
	DefaultProbeInterval = time.Second
)

// health tracks whether a service reaches Redis. It logs the transitions
// only, once each way. While Redis is unreachable, requests do not call it
// at all (an outage, or a host that swallows packets, would otherwise cost
// each of them a timeout): they use the service's fallback, and a PING in
// the background, at most once per probe interval, detects the recovery.
type health struct {
	log      *slog.Logger
	down, up string // the messages logged on each transition
	probe    time.Duration
	ping     func(context.Context) error // nil: no background probe

	degraded  atomic.Bool
	nextProbe atomic.Int64 // unix nanoseconds; no probe before then
}

func newHealth(log *slog.Logger, probe time.Duration, ping func(context.Context) error, down, up string) *health {
	if log == nil {
		log = slog.Default()
	}
	if probe <= 0 {
		probe = DefaultProbeInterval
	}
	return &health{log: log, probe: probe, ping: ping, down: down, up: up}
}

// try reports whether to call Redis now: while healthy, yes; while
// degraded, no, and it starts a background probe when one is due.
func (h *health) try() bool {
	if !h.degraded.Load() {
		return true
	}
	next := h.nextProbe.Load()
	now := time.Now().UnixNano()
	if h.ping != nil && now >= next && h.nextProbe.CompareAndSwap(next, now+int64(h.probe)) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), max(h.probe, DefaultTimeout))
			defer cancel()
			if err := h.ping(ctx); err != nil {
				h.fail(err)
			} else {
				h.ok()
			}
		}()
	}
	return false
}

// fail records a failed call to Redis.
func (h *health) fail(err error) {
	h.nextProbe.Store(time.Now().Add(h.probe).UnixNano())
	if h.degraded.CompareAndSwap(false, true) {
		h.log.Warn(h.down, "err", err)
	}
}

// ok records a successful call to Redis.
func (h *health) ok() {
	if h.degraded.CompareAndSwap(true, false) {
		h.log.Info(h.up)
	}
}

// pinger returns the background probe of client.
func pinger(client redis.UniversalClient) func(context.Context) error {
	return func(ctx context.Context) error { return client.Ping(ctx).Err() }
}

// newNodeID returns a random id for this process, so that a restarted node
// never passes for the one it replaces.
func newNodeID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
