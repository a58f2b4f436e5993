package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/carillon-chat/carillon"
)

// announcePresence sends, once a second, one presence event per member
// whose presence changed, to everyone who shares a room with them.
func announcePresence(ctx context.Context, store carillon.Store, presence carillon.Presence, broker carillon.Broker, log *slog.Logger) {
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
			continue
		}
		for userID, present := range changes {
			mates, err := store.RoomMates(ctx, userID)
			if err != nil {
				log.Warn("presence change not announced", "err", err)
				continue
			}
			data, _ := json.Marshal(map[string]any{"MemberId": userID, "Present": present})
			if err := broker.Publish(ctx, carillon.Event{Type: carillon.EventPresence, UserIDs: mates, Data: data}); err != nil {
				log.Warn("presence change not announced", "err", err)
			}
		}
	}
}
