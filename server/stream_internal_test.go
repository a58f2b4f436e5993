package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/carillon-chat/carillon"
)

// heldOutput is a streamOutput that hands each write to the test and
// returns only when the test releases it.
type heldOutput struct{ writes chan heldWrite }

type heldWrite struct {
	data    string
	at      time.Time
	release chan struct{}
}

func (o heldOutput) send(p []byte) error {
	w := heldWrite{data: string(p), at: time.Now(), release: make(chan struct{})}
	o.writes <- w
	<-w.release
	return nil
}

func (heldOutput) close() {}

func eventIDs(data string) []string {
	var ids []string
	for line := range strings.Lines(data) {
		if id, ok := strings.CutPrefix(line, "id: "); ok {
			ids = append(ids, strings.TrimSpace(id))
		}
	}
	return ids
}

// heldStream runs a live-only stream on a heldOutput. next returns the
// stream's next write; the stream waits in it until the write is released.
func heldStream(t *testing.T, queue int) (events chan *carillon.Event, next func(what string) heldWrite) {
	t.Helper()
	out := heldOutput{writes: make(chan heldWrite)}
	st := &stream{out: out, user: "u1", rooms: map[string]bool{"r1": true}}
	events = make(chan *carillon.Event, queue)
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{log: slog.New(slog.DiscardHandler)}
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		s.runStream(ctx, st, events, "")
	}()
	t.Cleanup(func() {
		cancel()
		for {
			select {
			case w := <-out.writes:
				close(w.release)
			case <-ended:
				return
			}
		}
	})
	next = func(what string) heldWrite {
		t.Helper()
		select {
		case w := <-out.writes:
			return w
		case <-time.After(10 * time.Second):
			t.Fatalf("no write %s", what)
			return heldWrite{}
		}
	}
	close(next("of the connected comment").release)
	return events, next
}

func messageEvent(seq int64) *carillon.Event {
	return &carillon.Event{Type: carillon.EventMessage, RoomID: "r1", Seq: seq, Data: fmt.Appendf(nil, `{"n":%d}`, seq)}
}

func TestStreamWritesQueuedEventsTogetherAtMostOncePerLinger(t *testing.T) {
	events, next := heldStream(t, 16)
	events <- messageEvent(1)
	first := next("of the first event")
	// Events published while the stream is writing go out together next.
	for seq := int64(2); seq <= 5; seq++ {
		events <- messageEvent(seq)
	}
	close(first.release)
	second := next("of the queued events")
	close(second.release)
	events <- messageEvent(6)
	third := next("after the queued events")
	close(third.release)

	for _, c := range []struct {
		w    heldWrite
		want string
	}{{first, "1"}, {second, "2 3 4 5"}, {third, "6"}} {
		if got := strings.Join(eventIDs(c.w.data), " "); got != c.want {
			t.Errorf("a write held events %q, want %q", got, c.want)
		}
	}
	if gap, least := third.at.Sub(second.at), streamLinger-lingerSpread; gap < least {
		t.Errorf("writes %v apart, want at least the shortest linger (%v)", gap, least)
	}
}

func TestStreamWritesABacklogInBurstsInOrder(t *testing.T) {
	const queued = 2*maxBurst + 10
	events, next := heldStream(t, queued)
	events <- messageEvent(1)
	first := next("of the first event")
	for seq := int64(2); seq <= 1+queued; seq++ {
		events <- messageEvent(seq)
	}
	close(first.release)
	var sizes []int
	want := int64(2)
	for want <= 1+queued {
		w := next(fmt.Sprintf("holding event %d", want))
		close(w.release)
		ids := eventIDs(w.data)
		sizes = append(sizes, len(ids))
		for _, id := range ids {
			if id != fmt.Sprint(want) {
				t.Fatalf("event %s written where %d was due (writes of %v events)", id, want, sizes)
			}
			want++
		}
	}
	if !slices.Equal(sizes, []int{maxBurst, maxBurst, 10}) {
		t.Errorf("the backlog went out in writes of %v events, want %v", sizes, []int{maxBurst, maxBurst, 10})
	}
}
