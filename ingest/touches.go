package ingest

import (
	"sync"
	"time"
)

// touchQueue holds the webhook last-used times not yet written. A webhook's
// time is written a delay (Config.TouchDelay) after its first unwritten
// use, together with the uses meanwhile: at most one UPDATE per webhook per
// delay however often it posts. Until then the API shows the time from
// here (Service.LastUsed), so the delay is a lag only for other nodes of a
// cluster, which read the shared store: SPEC lets LastUsedTimestamp lag by
// 5 s.
//
// Writing every use instead cost one UPDATE per webhook message, in a
// flush that held the writer for ~25 ms every 250 ms at 6,600 messages/s
// (10 % of throughput and most of p99 in docs/performance.md). With a 3 s
// delay, webhooks that post every few seconds still cost one UPDATE per
// message: flushes took 11 % of the writer's time at 3,900 messages/s.
//
// Uses are added as messages are answered and taken by the writer's
// flushes, on other goroutines: mu guards the queue.
type touchQueue struct {
	mu     sync.Mutex
	newest map[string]time.Time // webhook id → its newest unwritten use
	order  []dirtyWebhook       // those webhooks, in the order they became dirty
	// writing holds the times taken by the flush under way, shown until
	// it ends (written).
	writing map[string]time.Time
}

type dirtyWebhook struct {
	id    string
	since time.Time
}

func newTouchQueue() *touchQueue {
	return &touchQueue{newest: make(map[string]time.Time)}
}

// add records a use of webhook id at used, seen at now.
func (q *touchQueue) add(id string, used, now time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	prev, dirty := q.newest[id]
	if !dirty {
		q.order = append(q.order, dirtyWebhook{id, now})
	}
	if !dirty || used.After(prev) {
		q.newest[id] = used
	}
}

// due takes the times of the webhooks dirty since dirtyBefore or earlier
// (the zero time: none; a time far ahead: all).
func (q *touchQueue) due(dirtyBefore time.Time) map[string]time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for n < len(q.order) && !q.order[n].since.After(dirtyBefore) {
		n++
	}
	if n == 0 {
		return nil
	}
	out := make(map[string]time.Time, n)
	for _, d := range q.order[:n] {
		out[d.id] = q.newest[d.id]
		delete(q.newest, d.id)
	}
	q.writing = out
	// Shift the rest down rather than reslice, so the array is reused.
	rest := copy(q.order, q.order[n:])
	clear(q.order[rest:])
	q.order = q.order[:rest]
	return out
}

// written ends the flush of the times due returned last. A flush that
// failed adds its times back first, so that they stay shown.
func (q *touchQueue) written() {
	q.mu.Lock()
	q.writing = nil
	q.mu.Unlock()
}

// latest returns the newest unwritten use of webhook id, if it has one.
func (q *touchQueue) latest(id string) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, ok := q.newest[id]
	if w, writing := q.writing[id]; writing && (!ok || w.After(t)) {
		t, ok = w, true
	}
	return t, ok
}
