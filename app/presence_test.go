package app

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/fanout"
	"github.com/carillon-chat/carillon/presence"
)

// roomsStore knows rooms and their members, and fails its first reads
// of either, as a store during a short outage does.
type roomsStore struct {
	carillon.Store
	rooms                                map[string][]string // room → member user ids
	roomReadFailures, memberReadFailures atomic.Int32
}

func (s *roomsStore) RoomIDsOfUser(_ context.Context, userID string) ([]string, error) {
	if s.roomReadFailures.Add(-1) >= 0 {
		return nil, errors.New("storage unreachable")
	}
	var ids []string
	for roomID, members := range s.rooms {
		if slices.Contains(members, userID) {
			ids = append(ids, roomID)
		}
	}
	return ids, nil
}

func (s *roomsStore) Members(_ context.Context, roomID string) ([]carillon.Membership, error) {
	if s.memberReadFailures.Add(-1) >= 0 {
		return nil, errors.New("storage unreachable")
	}
	var ms []carillon.Membership
	for _, userID := range s.rooms[roomID] {
		ms = append(ms, carillon.Membership{RoomID: roomID, UserID: userID})
	}
	return ms, nil
}

// countingBroker counts publishes.
type countingBroker struct {
	*fanout.Broker
	publishes atomic.Int32
}

func (b *countingBroker) Publish(ctx context.Context, ev carillon.Event) error {
	b.publishes.Add(1)
	return b.Broker.Publish(ctx, ev)
}

type presenceEvent struct {
	MemberId string
	Present  bool
}

// received returns the presence events waiting in a subscription.
func received(t *testing.T, events <-chan *carillon.Event) []presenceEvent {
	t.Helper()
	var got []presenceEvent
	for {
		select {
		case ev := <-events:
			if ev.Type != carillon.EventPresence || ev.Batch == nil {
				t.Fatalf("got a %s event with Batch %v", ev.Type, ev.Batch)
			}
			for _, data := range ev.Batch {
				var p presenceEvent
				if err := json.Unmarshal(data, &p); err != nil {
					t.Fatalf("presence event %s: %v", data, err)
				}
				got = append(got, p)
			}
		default:
			return got
		}
	}
}

var discardLog = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestPresenceChangesGoOncePerRoommateGroupedByRooms(t *testing.T) {
	store := &roomsStore{rooms: map[string][]string{
		"r1": {"alice", "bob", "carol"},
		"r2": {"carol", "dave"},
		"r3": {"erin"},
	}}
	broker := &countingBroker{Broker: fanout.New(16)}
	events := map[string]<-chan *carillon.Event{}
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin"} {
		ch, cancel := broker.Subscribe(u)
		defer cancel()
		events[u] = ch
	}
	pending := map[string]*presenceChange{
		"alice": {present: true},
		"carol": {present: false},
		"dave":  {present: true},
	}
	announceChanges(context.Background(), store, broker, discardLog, pending)

	alice, carol, dave := presenceEvent{"alice", true}, presenceEvent{"carol", false}, presenceEvent{"dave", true}
	want := map[string][]presenceEvent{
		"alice": {alice, carol},
		"bob":   {alice, carol},
		"carol": {alice, carol, dave}, // carol shares both rooms with herself: once
		"dave":  {carol, dave},
		"erin":  nil,
	}
	for u, w := range want {
		if got := received(t, events[u]); !slices.Equal(got, w) {
			t.Errorf("%s received %v, want %v", u, got, w)
		}
	}
	// alice and bob share exactly r1: one publish for both.
	if n := broker.publishes.Load(); n != 3 {
		t.Errorf("%d publishes, want 3 (alice and bob, carol, dave)", n)
	}
	if len(pending) != 0 {
		t.Errorf("announced changes still pending: %v", pending)
	}
}

func TestPresenceChangeIsAnnouncedAfterAStorageOutage(t *testing.T) {
	store := &roomsStore{rooms: map[string][]string{"r1": {"alice", "bob"}}}
	store.roomReadFailures.Store(2)
	store.memberReadFailures.Store(2)
	broker := fanout.New(16)
	bobEvents, cancel := broker.Subscribe("bob")
	defer cancel()
	pending := map[string]*presenceChange{"alice": {present: true}}
	for tick := 1; tick <= 4; tick++ {
		announceChanges(context.Background(), store, broker, discardLog, pending)
		if got := received(t, bobEvents); len(got) != 0 {
			t.Fatalf("tick %d, during the outage: bob received %v", tick, got)
		}
		if pending["alice"] == nil {
			t.Fatalf("tick %d, during the outage: alice's change was dropped", tick)
		}
	}
	announceChanges(context.Background(), store, broker, discardLog, pending)
	if got := received(t, bobEvents); !slices.Equal(got, []presenceEvent{{"alice", true}}) {
		t.Fatalf("after the outage bob received %v", got)
	}
	if len(pending) != 0 {
		t.Errorf("announced change still pending: %v", pending)
	}
}

func TestPresenceChangeIsGivenUpAfterAnnounceTries(t *testing.T) {
	store := &roomsStore{rooms: map[string][]string{"r1": {"alice", "bob"}}}
	store.roomReadFailures.Store(1000)
	pending := map[string]*presenceChange{"alice": {present: true}}
	for tick := 1; tick < announceTries; tick++ {
		announceChanges(context.Background(), store, fanout.New(16), discardLog, pending)
		if pending["alice"] == nil {
			t.Fatalf("given up after %d ticks, want %d", tick, announceTries)
		}
	}
	announceChanges(context.Background(), store, fanout.New(16), discardLog, pending)
	if pending["alice"] != nil {
		t.Fatalf("still pending after %d ticks", announceTries)
	}
}

func TestPresenceIsAnnouncedOnTheTick(t *testing.T) {
	store := &roomsStore{rooms: map[string][]string{"r1": {"alice", "bob"}}}
	broker := fanout.New(16)
	bobEvents, cancel := broker.Subscribe("bob")
	defer cancel()
	tracker := presence.New(PresenceGrace, nil)
	disconnect, _ := tracker.Connect(context.Background(), "alice")
	defer disconnect()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go announcePresence(ctx, store, tracker, broker, discardLog)
	select {
	case ev := <-bobEvents:
		if len(ev.Batch) != 1 || string(ev.Batch[0]) != `{"MemberId":"alice","Present":true}` {
			t.Fatalf("got %s %q", ev.Type, ev.Batch)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("alice's presence was not announced")
	}
}
