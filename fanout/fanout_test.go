package fanout

import (
	"context"
	"testing"

	"github.com/carillon-chat/carillon"
)

func TestEverySubscriberGetsEventsInOrder(t *testing.T) {
	b := New(8)
	a, cancelA := b.Subscribe()
	c, cancelC := b.Subscribe()
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
	slow, _ := b.Subscribe()
	fast, cancel := b.Subscribe()
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
	ch, _ := b.Subscribe()
	b.Close()
	if _, ok := <-ch; ok {
		t.Fatal("channel open after Close")
	}
	late, _ := b.Subscribe()
	if _, ok := <-late; ok {
		t.Fatal("subscription after Close is open")
	}
}
