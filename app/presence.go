package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/carillon-chat/carillon"
)

// announceTries is how many ticks a presence change whose rooms or
// roommates could not be read is tried again before it is given up.
const announceTries = 10

// announcePresence sends, once a second, one presence event per member
// whose presence changed, to everyone who shares a room with them. A change
// whose rooms or roommates could not be read is tried again on the next
// ticks, unless a newer change of that member replaces it (after
// announceTries it is given up). One the broker failed to send is not: a
// broker that loses an event drops the streams that missed it, and they
// reload the roster.
func announcePresence(ctx context.Context, store carillon.Store, presence carillon.Presence, broker carillon.Broker, log *slog.Logger) {
	pending := make(map[string]*presenceChange)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		changes, err := presence.Changes(ctx)
		if err != nil {
			log.Warn("presence changes not read", "err", err)
		}
		for userID, present := range changes {
			pending[userID] = &presenceChange{present: present}
		}
		if len(pending) > 0 {
			announceChanges(ctx, store, broker, log, pending)
		}
	}
}

type presenceChange struct {
	present bool
	tries   int
	failed  bool // this tick: its rooms or a room's members were not read
}

// announceChanges publishes the pending changes and removes from pending
// those announced (or given up).
//
// The changes are published grouped: members who share the same set of
// rooms with changed members get the same events, in one publish whose
// Batch holds them all. When 2,000 members of a room connect at once (a
// restart, a network blip), that is one publish of 2,000 events to 2,000
// streams, instead of 2,000 publishes each waking 2,000 streams: the
// latter kept a 2-core server busy for half a minute.
func announceChanges(ctx context.Context, store carillon.Store, broker carillon.Broker, log *slog.Logger, pending map[string]*presenceChange) {
	fail := func(c *presenceChange, err error) {
		if !c.failed {
			c.failed = true
			if c.tries++; c.tries >= announceTries {
				log.Warn("presence change not announced", "err", err)
			}
		}
	}
	// The changed members of each room.
	changedIn := make(map[string][]string)
	for userID, c := range pending {
		c.failed = false
		rooms, err := store.RoomIDsOfUser(ctx, userID)
		if err != nil {
			fail(c, err)
			continue
		}
		for _, roomID := range rooms {
			changedIn[roomID] = append(changedIn[roomID], userID)
		}
	}
	members := make(map[string][]carillon.Membership, len(changedIn))
	for roomID, changed := range changedIn {
		ms, err := store.Members(ctx, roomID)
		if err != nil {
			for _, userID := range changed {
				fail(pending[userID], err)
			}
			continue
		}
		members[roomID] = ms
	}

	// Each recipient's rooms with announced changes, in one order.
	roomIDs := make([]string, 0, len(members))
	for roomID := range members {
		if slices.ContainsFunc(changedIn[roomID], func(u string) bool { return !pending[u].failed }) {
			roomIDs = append(roomIDs, roomID)
		}
	}
	slices.Sort(roomIDs)
	roomsOf := make(map[string][]string)
	for _, roomID := range roomIDs {
		for _, m := range members[roomID] {
			roomsOf[m.UserID] = append(roomsOf[m.UserID], roomID)
		}
	}
	type group struct {
		rooms      []string
		recipients []string
	}
	groups := make(map[string]*group)
	for userID, rooms := range roomsOf {
		key := strings.Join(rooms, " ")
		g := groups[key]
		if g == nil {
			g = &group{rooms: rooms}
			groups[key] = g
		}
		g.recipients = append(g.recipients, userID)
	}

	data := make(map[string][]byte) // each change serialized once
	for _, g := range groups {
		var changed []string
		for _, roomID := range g.rooms {
			for _, userID := range changedIn[roomID] {
				if !pending[userID].failed {
					changed = append(changed, userID)
				}
			}
		}
		slices.Sort(changed)
		changed = slices.Compact(changed) // a member changed in two shared rooms is announced once
		batch := make([][]byte, len(changed))
		for i, userID := range changed {
			if data[userID] == nil {
				data[userID], _ = json.Marshal(map[string]any{"MemberId": userID, "Present": pending[userID].present})
			}
			batch[i] = data[userID]
		}
		ev := carillon.Event{Type: carillon.EventPresence, UserIDs: g.recipients, Batch: batch}
		if err := broker.Publish(ctx, ev); err != nil {
			log.Warn("presence changes not announced", "changes", len(batch), "err", err)
		}
	}
	for userID, c := range pending {
		if !c.failed || c.tries >= announceTries {
			delete(pending, userID)
		}
	}
}
