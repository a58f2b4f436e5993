package fanout

import (
	"context"
	"testing"

	"github.com/carillon-chat/carillon"
)

func TestEverySubscriberGetsEventsInOrder(t *testing.T) {
	b := New(8)
	a, cancelA := b.Subscribe("")
	c, cancelC := b.Subscribe("")
	defer cancelA()
	defer cancelC()
	for i := int64(1); i <= 3; i++ {
		b.Publish(context.Background(), carillon.Event{Type: "message", Seq: i})
	}
	for _, ch := range []<-chan *carillon.Event{a, c} {
		for i := int64(1); i <= 3; i++ {
			if ev := <-ch; ev.Seq != i {
				t.Fatalf("got seq %d, want %d", ev.Seq, i)
			}
		}
	}
}

func TestSlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	b := New(2)
	slow, _ := b.Subscribe("")
	fast, cancel := b.Subscribe("")
	defer cancel()
	for i := int64(1); i <= 5; i++ {
		b.Publish(context.Background(), carillon.Event{Seq: i})
		if ev := <-fast; ev.Seq != i {
			t.Fatalf("fast subscriber got %d, want %d", ev.Seq, i)
		}
	}
	n := 0
	for range slow {
		n++
	}
	if n != 2 {
		t.Fatalf("slow subscriber got %d events before being dropped, want its buffer of 2", n)
	}
}

func TestCloseEndsSubscriptions(t *testing.T) {
	b := New(1)
	ch, _ := b.Subscribe("")
	b.Close()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Close")
	}
	late, _ := b.Subscribe("")
	if _, ok := <-late; ok {
		t.Fatal("subscription after Close is open")
	}
}

func TestEventsForUsersReachOnlyThem(t *testing.T) {
	b := New(8)
	alice, _ := b.Subscribe("alice")
	bob, _ := b.Subscribe("bob")
	all, _ := b.Subscribe("")
	b.Publish(context.Background(), carillon.Event{Type: "presence", UserIDs: []string{"alice", "alice"}, Seq: 1})
	b.Publish(context.Background(), carillon.Event{Type: "message", Seq: 2})
	if ev := <-alice; ev.Seq != 1 {
		t.Fatalf("alice got %d first, want her event 1", ev.Seq)
	}
	if ev := <-alice; ev.Seq != 2 {
		t.Fatalf("alice got %d, want the room event 2 (once each)", ev.Seq)
	}
	if ev := <-bob; ev.Seq != 2 {
		t.Fatalf("bob got %d, want only the room event 2", ev.Seq)
	}
	for _, want := range []int64{1, 2} {
		if ev := <-all; ev.Seq != want {
			t.Fatalf("subscriber of everything got %d, want %d", ev.Seq, want)
		}
	}
}

func TestLaggingSubscriberGetsEveryEventInOrder(t *testing.T) {
	b := New(500)
	lagging, cancel := b.Subscribe("")
	defer cancel()
	// More than the channel holds: the rest waits in the overflow queue.
	for i := int64(1); i <= 400; i++ {
		b.Publish(context.Background(), carillon.Event{Seq: i})
	}
	for i := int64(1); i <= 400; i++ {
		ev, ok := <-lagging
		if !ok || ev.Seq != i {
			t.Fatalf("event %d: got %v (open %v)", i, ev, ok)
		}
		if i == 200 { // publishing while the queue drains keeps the order
			for j := int64(401); j <= 450; j++ {
				b.Publish(context.Background(), carillon.Event{Seq: j})
			}
		}
	}
	for i := int64(401); i <= 450; i++ {
		if ev := <-lagging; ev.Seq != i {
			t.Fatalf("got %d, want %d", ev.Seq, i)
		}
	}
}

func TestDroppedWhileOverflowingClosesAfterQueuedEvents(t *testing.T) {
	b := New(100)
	slow, _ := b.Subscribe("")
	for i := int64(1); i <= 150; i++ {
		b.Publish(context.Background(), carillon.Event{Seq: i})
	}
	n := 0
	for range slow {
		n++
	}
	if n < channelSize || n > 100 {
		t.Fatalf("a subscriber dropped at 100 behind got %d events", n)
	}
}
