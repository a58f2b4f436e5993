package ingest

import (
	"maps"
	"testing"
	"time"
)

func TestTouchQueueWritesEachWebhookOncePerDelay(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	q := newTouchQueue()
	q.add("A", at(0), at(0))
	q.add("A", at(500*time.Millisecond), at(500*time.Millisecond))
	q.add("A", at(200*time.Millisecond), at(600*time.Millisecond)) // an older use, committed later
	q.add("B", at(time.Second), at(time.Second))

	if got := q.due(at(-time.Nanosecond)); len(got) != 0 {
		t.Fatalf("due before any webhook was dirty: %v", got)
	}
	want := map[string]time.Time{"A": at(500 * time.Millisecond)}
	if got := q.due(at(0)); !maps.Equal(got, want) {
		t.Fatalf("due at t0 = %v, want %v (A's newest use, once)", got, want)
	}
	if got := q.due(at(0)); len(got) != 0 {
		t.Fatalf("A taken twice: %v", got)
	}

	// A is clean again: its next use waits its own delay, behind B.
	q.add("A", at(2*time.Second), at(2*time.Second))
	if got, want := q.due(at(1500*time.Millisecond)), map[string]time.Time{"B": at(time.Second)}; !maps.Equal(got, want) {
		t.Fatalf("due at t0+1.5s = %v, want %v", got, want)
	}
	if got, want := q.due(time.Unix(1<<40, 0)), map[string]time.Time{"A": at(2 * time.Second)}; !maps.Equal(got, want) {
		t.Fatalf("all due = %v, want %v", got, want)
	}
	if len(q.newest) != 0 || len(q.order) != 0 {
		t.Fatalf("queue not empty after taking all: %v %v", q.newest, q.order)
	}
}

func TestTouchQueueShowsUsesUntilWritten(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	q := newTouchQueue()
	if _, ok := q.latest("A"); ok {
		t.Fatal("a webhook never used has an unwritten use")
	}
	q.add("A", t0, t0)
	if got, ok := q.latest("A"); !ok || !got.Equal(t0) {
		t.Fatalf("latest(A) = %v, %v; want %v", got, ok, t0)
	}

	// Taken by a flush: still shown while the flush writes it, and a use
	// meanwhile is shown if newer.
	q.due(t0)
	if got, ok := q.latest("A"); !ok || !got.Equal(t0) {
		t.Fatalf("latest(A) during its flush = %v, %v; want %v", got, ok, t0)
	}
	q.add("A", t0.Add(time.Second), t0.Add(time.Second))
	if got, ok := q.latest("A"); !ok || !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("latest(A) after a use during its flush = %v, %v; want %v", got, ok, t0.Add(time.Second))
	}
	q.written()
	if got, ok := q.latest("A"); !ok || !got.Equal(t0.Add(time.Second)) {
		t.Fatalf("latest(A) after the flush = %v, %v; want the later use %v", got, ok, t0.Add(time.Second))
	}

	// Written: the store shows it from then on.
	q.due(time.Unix(1<<40, 0))
	q.written()
	if got, ok := q.latest("A"); ok {
		t.Fatalf("latest(A) after every use was written = %v", got)
	}
}
