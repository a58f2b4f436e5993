package ingest

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/carillon-chat/carillon"
)

// syncGate is a sync function whose calls wait until released, one
// channel per call in the order they began.
type syncGate struct {
	started chan chan error
}

func (g *syncGate) sync() error {
	release := make(chan error)
	g.started <- release
	return <-release
}

// answers records answered batches in order.
type answers struct {
	mu   sync.Mutex
	got  []string // batch names
	errs []error
}

func (a *answers) answer(b committedBatch, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, b.batch[0].append.Message.Content)
	a.errs = append(a.errs, err)
}

func (a *answers) snapshot() ([]string, []error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.got...), append([]error(nil), a.errs...)
}

// named is a committed batch of one message whose content is name.
func named(name string) committedBatch {
	p := &pending{}
	p.append.Message = &carillon.Message{Content: name}
	return committedBatch{batch: []*pending{p}}
}

func TestDurabilityAnswersAfterCoveringSync(t *testing.T) {
	gate := &syncGate{started: make(chan chan error)}
	var got answers
	d := newDurability(gate.sync, got.answer)
	for _, n := range []string{"a", "b", "c"} {
		d.add(named(n))
	}
	var wg sync.WaitGroup
	for range syncersInFlight {
		wg.Go(d.run)
	}
	first := <-gate.started // covers a, b, c
	d.add(named("d"))
	second := <-gate.started // the other syncer: covers a to d

	time.Sleep(20 * time.Millisecond)
	if names, _ := got.snapshot(); len(names) != 0 {
		t.Fatalf("answered %v before any sync finished", names)
	}
	// The later sync finishes first: it covers everything before it.
	second <- nil
	waitFor(t, &got, 4)
	if names, errs := got.snapshot(); !slices.Equal(names, []string{"a", "b", "c", "d"}) || slices.ContainsFunc(errs, func(err error) bool { return err != nil }) {
		t.Fatalf("after the second sync: %v %v, want a to d in order, without errors", names, errs)
	}
	// The first sync has nothing left to answer, even when it fails.
	first <- errors.New("too late to matter")
	time.Sleep(20 * time.Millisecond)
	if names, _ := got.snapshot(); len(names) != 4 {
		t.Fatalf("answered %v after the first sync; want nothing more", names)
	}
	// A batch whose only covering sync fails gets its error.
	d.add(named("e"))
	failed := errors.New("disk gone")
	(<-gate.started) <- failed
	waitFor(t, &got, 5)
	if names, errs := got.snapshot(); names[4] != "e" || !errors.Is(errs[4], failed) {
		t.Fatalf("after a failed sync: %v %v, want e answered with the sync's error", names, errs)
	}
	d.close()
	wg.Wait()
}

func TestDurabilityWithoutSync(t *testing.T) {
	var got answers
	d := newDurability(nil, got.answer)
	var wg sync.WaitGroup
	wg.Go(d.run)
	for _, n := range []string{"a", "b", "c"} {
		d.add(named(n))
	}
	d.close() // returns only once every batch is answered
	wg.Wait()
	if names, _ := got.snapshot(); !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Fatalf("answered %v, want a, b, c in order", names)
	}
}

func waitFor(t *testing.T, a *answers, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if names, _ := a.snapshot(); len(names) >= n {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("answered %v; waited for %d", names, n)
		}
		time.Sleep(time.Millisecond)
	}
}
