package ingest

import "sync"

// durability answers committed batches once they are durable, in commit
// order. With a deferred-sync store a batch is durable after a sync that
// began after its commit; such a sync covers every batch committed before
// it, so each sync takes all that are waiting. Two syncs may be in flight:
// a batch committed while one runs starts the next instead of waiting for
// it.
type durability struct {
	sync   func() error // nil: commits are durable when they return
	answer func(b committedBatch, syncErr error)

	mu        sync.Mutex
	wake      *sync.Cond
	pending   []committedBatch // committed, not yet known durable, oldest first
	done      int64            // batches known durable (or failed) so far
	committed int64            // batches committed so far
	covered   int64            // batches covered by the syncs begun so far
	closed    bool
	// ready holds batches known durable, in commit order, for the one
	// syncer answering at a time (answering): answers run outside mu, so
	// a publisher that lags holds up neither the writer nor the other
	// syncer, and commit order is kept.
	ready     []readyBatch
	answering bool
}

type readyBatch struct {
	batch committedBatch
	err   error
}

// syncersInFlight is how many syncs may run at once.
const syncersInFlight = 2

func newDurability(syncFn func() error, answer func(committedBatch, error)) *durability {
	d := &durability{sync: syncFn, answer: answer}
	d.wake = sync.NewCond(&d.mu)
	return d
}

// add queues a committed batch.
func (d *durability) add(b committedBatch) {
	d.mu.Lock()
	d.pending = append(d.pending, b)
	d.committed++
	d.mu.Unlock()
	d.wake.Signal()
}

// close lets the syncers return once every batch is answered.
func (d *durability) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.wake.Broadcast()
}

// run is one syncer; it returns after close, when nothing is left to sync.
func (d *durability) run() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		for d.covered == d.committed && !d.closed {
			d.wake.Wait()
		}
		if d.covered == d.committed {
			return // closed, and every batch is covered by a sync begun
		}
		target := d.committed
		d.covered = target
		var err error
		if d.sync != nil {
			d.mu.Unlock()
			err = d.sync()
			d.mu.Lock()
		}
		// A later sync may have finished first and taken these.
		for d.done < target {
			d.ready = append(d.ready, readyBatch{d.pending[0], err})
			d.pending[0] = committedBatch{}
			d.pending = d.pending[1:]
			d.done++
		}
		if d.answering {
			continue // the syncer answering now takes these too
		}
		d.answering = true
		for len(d.ready) > 0 {
			ready := d.ready
			d.ready = nil
			d.mu.Unlock()
			for _, r := range ready {
				d.answer(r.batch, r.err)
			}
			d.mu.Lock()
		}
		d.answering = false
	}
}
