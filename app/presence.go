package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/carillon-chat/carillon"
)

// announcePresence sends, once a second, one presence event per member
// whose presence changed, to everyone who shares a room with them. A change
// that could not be announced (the store or the broker failing) is tried
// again on the next ticks, unless a newer change of that member replaces
// it; after announceTries it is given up: streams cut by such an outage
// reload the roster when they reconnect.
func announcePresence(ctx context.Context, store carillon.Store, presence carillon.Presence, broker carillon.Broker, log *slog.Logger) {
	type change struct {
		present bool
		tries   int
	}
	const announceTries = 10
	pending := make(map[string]*change)
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
			pending[userID] = &change{present: present}
		}
		for userID, c := range pending {
			if err := announce(ctx, store, broker, userID, c.present); err != nil {
				if c.tries++; c.tries < announceTries {
					continue
				}
				log.Warn("presence change not announced", "err", err)
			}
			delete(pending, userID)
		}
	}
}

// announce publishes one member's presence to their roommates.
func announce(ctx context.Context, store carillon.Store, broker carillon.Broker, userID string, present bool) error {
	mates, err := store.RoomMates(ctx, userID)
	if err != nil {
		return err
	}
	data, _ := json.Marshal(map[string]any{"MemberId": userID, "Present": present})
	return broker.Publish(ctx, carillon.Event{Type: carillon.EventPresence, UserIDs: mates, Data: data})
}
