package carillon

import (
	"context"
	"time"
)

// RateLimiter enforces a rate per key (a webhook, a user). Implementations:
// in-process (package ratelimit) and, for clusters, a shared one.
type RateLimiter interface {
	// Reserve takes one unit of key's budget. When none is left it returns
	// a Reservation with OK false and the wait until one is, having spent
	// nothing.
	Reserve(ctx context.Context, key string) (Reservation, error)
}

// Reservation is the outcome of RateLimiter.Reserve.
type Reservation struct {
	OK         bool
	RetryAfter time.Duration
	// Cancel gives a taken unit back (the request then failed). Nil when
	// nothing was taken.
	Cancel func()
}

// Event is one live event for the streams of the users it concerns.
type Event struct {
	Type   string // "message", "membership", "webhook", ...
	RoomID string // the room it belongs to, "" when not room-bound
	// Seq orders replayable events (messages); 0 for others.
	Seq int64
	// UserIDs restricts delivery to these users when not nil.
	UserIDs []string
	// Data is the event's JSON, serialized once for every stream.
	Data []byte
}

// Broker fans events out to live subscribers. Implementations: in-process
// (package fanout) and, for clusters, one spanning all nodes.
type Broker interface {
	Publish(ctx context.Context, ev Event) error
	// Subscribe delivers every published event to the returned channel
	// until cancel is called. A subscriber that falls behind by more than
	// the channel's buffer is dropped: its channel is closed.
	Subscribe() (events <-chan Event, cancel func())
}
