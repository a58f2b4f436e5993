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

// outageBroker fails its first publishes, as a broker on an unreachable
// Redis does, then passes events on.
type outageBroker struct {
	carillon.Broker
	failures atomic.Int32
}

func (b *outageBroker) Publish(ctx context.Context, ev carillon.Event) error {
	if b.failures.Add(-1) >= 0 {
		return errors.New("broker unreachable")
	}
	return b.Broker.Publish(ctx, ev)
}

// matesStore answers RoomMates; nothing else is called.
type matesStore struct{ carillon.Store }

func (matesStore) RoomMates(context.Context, string) ([]string, error) {
	return []string{"alice", "bob"}, nil
}

func TestPresenceChangeIsAnnouncedAfterABrokerOutage(t *testing.T) {
	broker := &outageBroker{Broker: fanout.New(16)}
	broker.failures.Store(2)
	bobEvents, cancel := broker.Subscribe("bob")
	defer cancel()
	tracker := presence.New(PresenceGrace, nil)
	disconnect, _ := tracker.Connect(context.Background(), "alice")
	defer disconnect()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go announcePresence(ctx, matesStore{}, tracker, broker, slog.New(slog.NewTextHandler(io.Discard, nil)))
	select {
	case ev := <-bobEvents:
		if ev.Type != carillon.EventPresence || !strings.Contains(string(ev.Data), `"MemberId":"alice"`) || !strings.Contains(string(ev.Data), `"Present":true`) {
			t.Fatalf("got %s %s", ev.Type, ev.Data)
		}
		if n := broker.failures.Load(); n >= 0 {
			t.Fatalf("announced before the outage ended (%d failures left)", n+1)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("alice's presence was never announced after two failed publishes")
	}
}
