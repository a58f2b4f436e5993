package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/fanout"
	"github.com/carillon-chat/carillon/presence"
)

// outageStore fails its first RoomMates calls, as a store during a short
// outage does, then names alice's roommates.
type outageStore struct {
	carillon.Store
	failures atomic.Int32
}

func (s *outageStore) RoomMates(context.Context, string) ([]string, error) {
	if s.failures.Add(-1) >= 0 {
		return nil, errors.New("storage unreachable")
	}
	return []string{"alice", "bob"}, nil
}

func TestPresenceChangeIsAnnouncedAfterAStorageOutage(t *testing.T) {
	broker := fanout.New(16)
	bobEvents, cancel := broker.Subscribe("bob")
	defer cancel()
	store := &outageStore{}
	store.failures.Store(2)
	tracker := presence.New(PresenceGrace, nil)
	disconnect, _ := tracker.Connect(context.Background(), "alice")
	defer disconnect()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go announcePresence(ctx, store, tracker, broker, slog.New(slog.NewTextHandler(io.Discard, nil)))
	select {
	case ev := <-bobEvents:
		if ev.Type != carillon.EventPresence || !strings.Contains(string(ev.Data), `"MemberId":"alice"`) || !strings.Contains(string(ev.Data), `"Present":true`) {
			t.Fatalf("got %s %s", ev.Type, ev.Data)
		}
		if n := store.failures.Load(); n >= 0 {
			t.Fatalf("announced before the outage ended (%d failures left)", n+1)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("alice's presence was never announced after two failed reads of her roommates")
	}
}
