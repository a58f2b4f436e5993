package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
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

// deadlineConn is a net.Conn that records the write deadlines set on it.
type deadlineConn struct {
	net.Conn
	deadlines []time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return c.Conn.SetWriteDeadline(t)
}

func TestConnOutputMovesTheWriteDeadlineOnlyWhenHalfIsUsedUp(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	go io.Copy(io.Discard, client)
	conn := &deadlineConn{Conn: server}
	out := &connOutput{conn: conn}
	defer out.close()

	send := func() {
		t.Helper()
		if err := out.send([]byte("data: x\n\n")); err != nil {
			t.Fatal(err)
		}
	}
	send() // no deadline yet: one is set
	for range 10 {
		send()
	}
	if len(conn.deadlines) != 1 {
		t.Fatalf("%d deadlines set for 11 quick writes, want 1", len(conn.deadlines))
	}
	if left := time.Until(conn.deadlines[0]); left < streamWriteWait-time.Second || left > streamWriteWait {
		t.Fatalf("deadline %v ahead, want about %v", left, streamWriteWait)
	}

	// With less than half the wait left, the next write moves it.
	out.deadline = time.Now().Add(streamWriteWait/2 - time.Second)
	send()
	if len(conn.deadlines) != 2 || time.Until(conn.deadlines[1]) < streamWriteWait-time.Second {
		t.Fatalf("deadlines %v: want a second one a whole wait ahead", conn.deadlines)
	}
}
