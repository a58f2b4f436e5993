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
// whose roommates could not be read is tried again on the next ticks,
// unless a newer change of that member replaces it (after announceTries it
// is given up). One the broker failed to send is not: a broker that loses
// an event drops the streams that missed it, and they reload the roster.
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
			mates, err := store.RoomMates(ctx, userID)
			if err != nil {
				if c.tries++; c.tries < announceTries {
					continue
				}
				log.Warn("presence change not announced", "err", err)
				delete(pending, userID)
				continue
			}
			delete(pending, userID)
			data, _ := json.Marshal(map[string]any{"MemberId": userID, "Present": c.present})
			if err := broker.Publish(ctx, carillon.Event{Type: carillon.EventPresence, UserIDs: mates, Data: data}); err != nil {
				log.Warn("presence change not announced", "err", err)
			}
		}
	}
}
