package feed

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/fanout"
	"github.com/carillon-chat/carillon/sqlite"
)

const wait = 5 * time.Second

// clusterStandIn stands in for the cluster's broker: an in-process one
// whose subscriptions the test can drop, as Redis's does when it may have
// lost events.
type clusterStandIn struct {
	mu sync.Mutex
	f  *fanout.Broker
}

func (c *clusterStandIn) current() *fanout.Broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f
}

func (c *clusterStandIn) Publish(ctx context.Context, ev carillon.Event) error {
	return c.current().Publish(ctx, ev)
}

func (c *clusterStandIn) Subscribe(userID string) (<-chan *carillon.Event, func()) {
	return c.current().Subscribe(userID)
}

func (c *clusterStandIn) Close() { c.current().Close() }

// dropAll ends every subscription; new ones work.
func (c *clusterStandIn) dropAll() {
	c.mu.Lock()
	old := c.f
	c.f = fanout.New(64)
	c.mu.Unlock()
	old.Close()
}

// world is a SQLite store with one room of two users.
type world struct {
	store      *sqlite.DB
	room       string
	alice, bob *carillon.User
	now        time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{store: db, now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	user := func(alias string) *carillon.User {
		u := &carillon.User{UserID: uuid.NewString(), Email: alias + "@example.test", Alias: alias, FullName: alias, Active: true, CreatedAt: w.now}
		if err := db.CreateUser(ctx, u, "", nil); err != nil {
			t.Fatal(err)
		}
		return u
	}
	w.alice, w.bob = user("alice"), user("bob")
	room := &carillon.Room{RoomID: uuid.NewString(), Name: "Ops", CreatedBy: w.alice.UserID, CreatedAt: w.now}
	if err := db.CreateRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMember(ctx, &carillon.Membership{RoomID: room.RoomID, UserID: w.bob.UserID, Role: carillon.RoleMember, CreatedAt: w.now}, w.alice.UserID); err != nil {
		t.Fatal(err)
	}
	w.room = room.RoomID
	return w
}

// store commits a message of alice, notifying bob when notify is set,
// without publishing anything: what another node did.
func (w *world) post(t *testing.T, notify bool) *carillon.Message {
	t.Helper()
	w.now = w.now.Add(time.Second)
	m := &carillon.Message{MessageID: uuid.NewString(), RoomID: w.room, Content: "m", Format: carillon.FormatPlain, HTML: "<p>m</p>",
		SenderType: carillon.MemberTypeUser, SenderID: w.alice.UserID, SenderName: "alice", DisplayName: "alice",
		Mentions: carillon.Mentions{MemberIDs: []string{}}, CreatedAt: w.now}
	a := &carillon.Append{Message: m}
	if notify {
		a.Notifications = []*carillon.Notification{{NotificationID: uuid.NewString(), UserID: w.bob.UserID, Reason: carillon.ReasonAll}}
	}
	if err := w.store.AppendMessages(context.Background(), []*carillon.Append{a}); err != nil || a.Err != nil {
		t.Fatal(err, a.Err)
	}
	return m
}

func next(t *testing.T, events <-chan *carillon.Event) *carillon.Event {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("subscription closed")
		}
		return ev
	case <-time.After(wait):
		t.Fatal("no event")
	}
	return nil
}

func start(t *testing.T, w *world) (*Broker, *clusterStandIn) {
	t.Helper()
	cluster := &clusterStandIn{f: fanout.New(64)}
	b, err := New(context.Background(), cluster, w.store, 64, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, cluster
}

func TestStreamsGetMessagesInCommitOrderFromStorage(t *testing.T) {
	w := newWorld(t)
	b, cluster := start(t, w)
	bob, cancel := b.Subscribe(w.bob.UserID)
	defer cancel()

	// Two messages committed by "other nodes", their signals arriving
	// late and in reverse order: the stream gets both, in commit order,
	// each with its notification after it.
	m1, m2 := w.post(t, true), w.post(t, false)
	cluster.Publish(context.Background(), carillon.Event{Type: carillon.EventMessage, RoomID: w.room, Seq: m2.Seq})
	for _, want := range []struct {
		typ string
		seq int64
	}{{carillon.EventMessage, m1.Seq}, {carillon.EventNotification, m1.Seq}, {carillon.EventMessage, m2.Seq}} {
		ev := next(t, bob)
		if ev.Type != want.typ || ev.Seq != want.seq || ev.RoomID != w.room {
			t.Fatalf("got %s %d, want %s %d", ev.Type, ev.Seq, want.typ, want.seq)
		}
		if ev.Type == carillon.EventMessage {
			var got carillon.Message
			if err := json.Unmarshal(ev.Data, &got); err != nil || got.MessageID == "" {
				t.Fatalf("message event data %s: %v", ev.Data, err)
			}
		}
	}

	// A signal lost on the way: the poll finds the message all the same.
	m3 := w.post(t, false)
	if ev := next(t, bob); ev.Seq != m3.Seq {
		t.Fatalf("got %d, want %d", ev.Seq, m3.Seq)
	}

	// Events storage does not hold go through as published.
	cluster.Publish(context.Background(), carillon.Event{Type: carillon.EventPresence, UserIDs: []string{w.bob.UserID}, Data: []byte(`{}`)})
	if ev := next(t, bob); ev.Type != carillon.EventPresence {
		t.Fatalf("got %s, want presence", ev.Type)
	}
}

func TestStreamsAreDroppedWhenTheClusterSubscriptionIs(t *testing.T) {
	w := newWorld(t)
	b, cluster := start(t, w)
	bob, _ := b.Subscribe(w.bob.UserID)
	// The cluster's broker drops its subscribers (as Redis's does when it
	// may have lost events): the node's streams must reload.
	time.Sleep(50 * time.Millisecond) // the feed has subscribed
	cluster.dropAll()
	select {
	case _, ok := <-bob:
		if ok {
			t.Fatal("an event instead of the end of the stream")
		}
	case <-time.After(wait):
		t.Fatal("the stream stayed open")
	}
	// A stream opened afterwards still gets messages, from storage.
	again, cancel := b.Subscribe(w.bob.UserID)
	defer cancel()
	m := w.post(t, false)
	if ev := next(t, again); ev.Seq != m.Seq {
		t.Fatalf("got %d, want %d", ev.Seq, m.Seq)
	}
}

// countingReplays counts the store's replays.
type countingReplays struct {
	*sqlite.DB
	mu      sync.Mutex
	replays int
}

func (c *countingReplays) Replay(ctx context.Context, userID string, after carillon.EventPosition, limit int) ([]carillon.ReplayItem, error) {
	c.mu.Lock()
	c.replays++
	c.mu.Unlock()
	return c.DB.Replay(ctx, userID, after, limit)
}

func (c *countingReplays) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.replays
}

func TestNodeWithoutStreamsDoesNotReadMessages(t *testing.T) {
	w := newWorld(t)
	store := &countingReplays{DB: w.store}
	cluster := &clusterStandIn{f: fanout.New(64)}
	b, err := New(context.Background(), cluster, store, 64, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	// Messages committed and signalled while the node has no stream are
	// not read from storage.
	var last *carillon.Message
	for range 3 {
		last = w.post(t, true)
		cluster.Publish(context.Background(), carillon.Event{Type: carillon.EventMessage, RoomID: w.room, Seq: last.Seq})
	}
	time.Sleep(300 * time.Millisecond) // the signals are handled
	if n := store.count(); n != 0 {
		t.Fatalf("%d replays from storage with no stream open, want 0", n)
	}
	if pos := (carillon.EventPosition{}); !b.skipWhileIdle(&pos) || pos.Seq != last.Seq || !pos.Notification {
		t.Fatalf("idle skip moved the position to %+v, want past message %d", pos, last.Seq)
	}

	// A stream opened afterwards gets what is committed after it, and
	// nothing from before.
	bob, cancel := b.Subscribe(w.bob.UserID)
	m := w.post(t, false)
	cluster.Publish(context.Background(), carillon.Event{Type: carillon.EventMessage, RoomID: w.room, Seq: m.Seq})
	if ev := next(t, bob); ev.Type != carillon.EventMessage || ev.Seq != m.Seq {
		t.Fatalf("got %s %d, want message %d", ev.Type, ev.Seq, m.Seq)
	}
	if store.count() == 0 {
		t.Fatal("no replay from storage with a stream open")
	}

	// Once it is gone, the node stops reading again.
	cancel()
	cancel() // a second cancel changes nothing
	before := store.count()
	m = w.post(t, false)
	cluster.Publish(context.Background(), carillon.Event{Type: carillon.EventMessage, RoomID: w.room, Seq: m.Seq})
	time.Sleep(200 * time.Millisecond)
	if n := store.count(); n != before {
		t.Fatalf("%d replays after the last stream closed, want none", n-before)
	}
}
