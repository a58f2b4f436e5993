package carillon

import (
	"context"
	"encoding/json"
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
	Type string // "message", "notification", "presence", "membership", "webhook"
	// RoomID routes the event to the streams of the room's members; "" for
	// events routed by UserIDs only.
	RoomID string
	// UserIDs, when not nil, are the only users whose streams get it.
	UserIDs []string
	// Seq is the commit position of message and notification events (the
	// message's Seq); 0 for others.
	Seq int64
	// Joined and Left name a user whose streams must start or stop
	// following RoomID (membership changes), before the event is routed.
	Joined, Left string
	// Data is the event's JSON, serialized once for every stream.
	Data []byte
	// Batch, when not nil, stands for Data: several events of Type, each
	// written as an event of its own, in order (presence changes announced
	// together go to their recipients in one publish).
	Batch [][]byte
}

// Event types (SPEC §4).
const (
	EventMessage      = "message"
	EventNotification = "notification"
	EventPresence     = "presence"
	EventMembership   = "membership"
	EventWebhook      = "webhook"
	EventReset        = "reset"
)

// Broker fans events out to live subscribers. Implementations: in-process
// (package fanout) and, for clusters, one spanning all nodes.
type Broker interface {
	Publish(ctx context.Context, ev Event) error
	// Subscribe delivers the events published for userID (those without
	// UserIDs, and those whose UserIDs name the user; every event when
	// userID is "") to the returned channel until cancel is called. A
	// subscriber that falls behind by more than the channel's buffer is
	// dropped: its channel is closed. Every subscriber receives the same
	// *Event, which nobody may modify.
	Subscribe(userID string) (events <-chan *Event, cancel func())
}

// Presence tracks which members have a live event stream open (SPEC §2:
// present while a stream is open and for 30 seconds after the last one
// closes). Implementations: in-process (package presence) and, for
// clusters, one shared by all nodes.
type Presence interface {
	// Connect records an open stream; the returned function records its
	// close.
	Connect(ctx context.Context, userID string) (disconnect func(), err error)
	// Present reports which of the given users are present.
	Present(ctx context.Context, userIDs []string) (map[string]bool, error)
	// Changes returns the users whose presence changed since the last call,
	// with their presence now. Called about once a second.
	Changes(ctx context.Context) (map[string]bool, error)
}

// MessageEvent is the live event of a committed message, the same whether
// the node that stored it publishes it or a node reads it back.
func MessageEvent(m *Message) Event {
	// m.JSON(), not m: encoding/json re-scans and compacts what a
	// MarshalJSON method returns, which cost twice the encoding itself.
	data, _ := json.Marshal(m.JSON())
	return Event{Type: EventMessage, RoomID: m.RoomID, Seq: m.Seq, Data: data}
}

// NotificationEvent is the live event of a committed notification, for
// its user only.
func NotificationEvent(n *Notification) Event {
	data, _ := json.Marshal(n.JSON())
	return Event{Type: EventNotification, RoomID: n.RoomID, UserIDs: []string{n.UserID}, Seq: n.MessageSeq, Data: data}
}
