package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// The load engine drives a Shot (one request) in one of two ways:
//
//   - closed loop: Workers goroutines each send a request, wait for its
//     answer and send the next. Throughput adapts to the server; latency is
//     measured from the moment each request is sent.
//   - open loop (Rate > 0): requests are scheduled at fixed intervals of
//     1/Rate from the start, whatever the answers. Latency is measured from
//     the scheduled time, so a stalled server shows up as latency instead
//     of silently lowering the request rate (coordinated omission). At most
//     Workers requests are in flight and at most Workers more wait for a
//     free slot; a request that finds even that backlog full is not sent
//     and counted as Dropped. A request sent more than LateAfter after its
//     scheduled time is counted as Late (its latency still counts from
//     the schedule).
//
// Only requests sent (closed loop) or scheduled (open loop) within the
// measurement window [start+Warmup, start+Warmup+Duration) are counted in
// the Result; those of the warm-up are only counted in WarmupRequests and
// WarmupFailures.

// Call identifies one request for a Shot.
type Call struct {
	Seq    uint64 // 0, 1, 2, … in the order requests are issued
	Worker int    // index of the goroutine sending it, 0 … Workers-1
	// NotAfter: a Shot that must wait (per-webhook pacing) must not send
	// after this time; it returns Outcome{Skipped: true} instead.
	NotAfter time.Time
}

// Outcome is what a Shot observed.
type Outcome struct {
	OK      bool   // the answer had the expected status and a valid body
	Status  int    // HTTP status; 0 on a transport error
	Err     string // transport error class, "" if the request got an answer
	Bad     string // why the answer failed verification, "" if it did not
	Skipped bool   // not sent (pacing would have crossed NotAfter)
	// Sent is when the request really left (after any pacing wait); zero
	// means when the Shot was called.
	Sent time.Time
}

// Shot sends one request and classifies its answer. It is called from
// many goroutines at once.
type Shot func(ctx context.Context, c Call) Outcome

// LoadConfig says how to drive a Shot.
type LoadConfig struct {
	Workers   int     // closed loop: concurrent requests; open loop: max in flight
	Rate      float64 // requests/s; > 0 selects the open loop
	Duration  time.Duration
	Warmup    time.Duration
	LateAfter time.Duration // open loop; default 5ms
	// MaxRequests, when > 0, ends a closed loop after that many requests
	// in the measurement window (Duration still bounds it).
	MaxRequests uint64
	// Drain bounds the wait for requests in flight at the end.
	Drain time.Duration
	// Progress, when set, is called every ProgressEvery with a one-line
	// status.
	Progress      func(string)
	ProgressEvery time.Duration
}

// Result is what a load run measured in its window.
type Result struct {
	Mode        string // "closed" or "open"
	Workers     int
	Rate        float64
	Window      time.Duration // measurement window actually covered
	Hist        *Histogram    // latency of every answered request
	Requests    uint64        // answered (any status) + transport errors
	OK          uint64
	Status      map[int]uint64
	Errors      map[string]uint64 // transport errors by class
	Bad         uint64            // answers failing verification
	BadSample   string
	Scheduled   uint64 // open loop: requests scheduled in the window
	Late        uint64 // open loop
	Dropped     uint64 // open loop: not sent, backlog full
	Skipped     uint64 // not sent, pacing would have passed the end
	MaxLag      time.Duration
	LateAfter   time.Duration // open loop: the threshold of Late
	WarmupReqs  uint64
	WarmupFails uint64
	Unfinished  uint64 // still in flight when Drain ran out
}

// Throughput is answered requests per second of window.
func (r *Result) Throughput() float64 { return perSecond(r.Requests, r.Window) }

// OKThroughput is successful requests per second of window.
func (r *Result) OKThroughput() float64 { return perSecond(r.OK, r.Window) }

// Failures counts every request of the window that was not OK.
func (r *Result) Failures() uint64 { return r.Requests - r.OK }

func perSecond(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Recorder collects outcomes from many goroutines: shards, each a mutex
// around its own histogram and counters, merged at the end.
type Recorder struct {
	shards []recShard
}

type recShard struct {
	mu        sync.Mutex
	hist      *Histogram
	requests  uint64
	ok        uint64
	status    map[int]uint64
	errors    map[string]uint64
	bad       uint64
	badSample string
	late      uint64
	maxLag    time.Duration
	_         [64]byte // keep shards on separate cache lines
}

// NewRecorder returns a Recorder with n shards.
func NewRecorder(n int) *Recorder {
	n = max(1, min(n, 64))
	r := &Recorder{shards: make([]recShard, n)}
	for i := range r.shards {
		r.shards[i].hist = NewHistogram()
		r.shards[i].status = make(map[int]uint64)
		r.shards[i].errors = make(map[string]uint64)
	}
	return r
}

// Record counts one outcome with its latency, from goroutine worker.
func (r *Recorder) Record(worker int, o Outcome, latency time.Duration) {
	s := &r.shards[worker%len(r.shards)]
	s.mu.Lock()
	s.requests++
	if o.Err != "" {
		s.errors[o.Err]++
	} else {
		s.status[o.Status]++
		s.hist.Record(latency)
	}
	if o.OK {
		s.ok++
	}
	if o.Bad != "" {
		s.bad++
		if s.badSample == "" {
			s.badSample = o.Bad
		}
	}
	s.mu.Unlock()
}

// RecordLatency counts one latency only (no status), e.g. an event's
// delivery time.
func (r *Recorder) RecordLatency(worker int, latency time.Duration) {
	s := &r.shards[worker%len(r.shards)]
	s.mu.Lock()
	s.requests++
	s.ok++
	s.hist.Record(latency)
	s.mu.Unlock()
}

func (r *Recorder) recordLag(worker int, lag time.Duration, late bool) {
	s := &r.shards[worker%len(r.shards)]
	s.mu.Lock()
	if late {
		s.late++
	}
	s.maxLag = max(s.maxLag, lag)
	s.mu.Unlock()
}

// Snapshot merges the shards into a Result (counts and histogram only).
func (r *Recorder) Snapshot() *Result {
	res := &Result{Hist: NewHistogram(), Status: map[int]uint64{}, Errors: map[string]uint64{}}
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		res.Hist.Merge(s.hist)
		res.Requests += s.requests
		res.OK += s.ok
		for k, v := range s.status {
			res.Status[k] += v
		}
		for k, v := range s.errors {
			res.Errors[k] += v
		}
		res.Bad += s.bad
		if res.BadSample == "" {
			res.BadSample = s.badSample
		}
		res.Late += s.late
		res.MaxLag = max(res.MaxLag, s.maxLag)
		s.mu.Unlock()
	}
	return res
}

// Schedule is the open loop's timetable: request k is due at
// Start + k/Rate.
type Schedule struct {
	Start time.Time
	Rate  float64
}

// At is when request k is due.
func (s Schedule) At(k uint64) time.Time {
	return s.Start.Add(time.Duration(float64(k) * float64(time.Second) / s.Rate))
}

// Due is how many requests are due at or before now (requests 0 … Due-1).
func (s Schedule) Due(now time.Time) uint64 {
	el := now.Sub(s.Start)
	if el < 0 {
		return 0
	}
	n := uint64(math.Floor(el.Seconds()*s.Rate)) + 1
	// Guard float rounding at exact boundaries: At(n) must be after now
	// and At(n-1) not.
	for n > 0 && s.At(n-1).After(now) {
		n--
	}
	for !s.At(n).After(now) {
		n++
	}
	return n
}

// RunLoad drives shot as cfg says until the window ends (or ctx ends).
func RunLoad(ctx context.Context, cfg LoadConfig, shot Shot) *Result {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.LateAfter <= 0 {
		cfg.LateAfter = 5 * time.Millisecond
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 10 * time.Second
	}
	start := time.Now()
	measureStart := start.Add(cfg.Warmup)
	end := measureStart.Add(cfg.Duration)
	// Requests carry a context that ends Drain after the window. A closed
	// loop sends nothing after the window (Call.NotAfter = end); an open
	// loop sends what was scheduled in it until the drain ends.
	reqCtx, cancel := context.WithDeadline(ctx, end.Add(cfg.Drain))
	defer cancel()

	rec := NewRecorder(cfg.Workers)
	warm := NewRecorder(8)
	var skipped, dropped, warmDropped, scheduled, inflight atomic.Uint64
	var measured atomic.Uint64 // requests started in the window (MaxRequests)

	stopProgress := func() {}
	if cfg.Progress != nil {
		every := cfg.ProgressEvery
		if every <= 0 {
			every = 5 * time.Second
		}
		pctx, pcancel := context.WithCancel(ctx)
		stopProgress = pcancel
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-pctx.Done():
					return
				case now := <-t.C:
					snap := rec.Snapshot()
					phase := "measuring"
					if now.Before(measureStart) {
						phase = "warming up"
					}
					el := minTime(now, end).Sub(measureStart)
					cfg.Progress(fmt.Sprintf("%s %4.0fs: %d requests (%.0f/s), %d not OK, p99 %s, in flight %d",
						phase, now.Sub(start).Seconds(), snap.Requests, perSecond(snap.Requests, el),
						snap.Failures(), fmtDur(snap.Hist.Quantile(0.99)), inflight.Load()))
				}
			}
		}()
	}

	// record files an outcome under the window its reference time
	// (send or schedule time) falls into.
	record := func(worker int, ref time.Time, o Outcome, lat time.Duration) {
		switch {
		case o.Skipped:
			if !ref.Before(measureStart) {
				skipped.Add(1)
			}
		case ref.Before(measureStart):
			warm.Record(worker, o, lat)
		case ref.Before(end):
			rec.Record(worker, o, lat)
		}
	}

	var wg sync.WaitGroup
	mode := "closed"
	if cfg.Rate > 0 {
		mode = "open"
		type job struct {
			seq uint64
			at  time.Time
		}
		jobs := make(chan job, cfg.Workers)
		for w := 0; w < cfg.Workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range jobs {
					if reqCtx.Err() != nil {
						// Past the drain: never sent.
						if !j.at.Before(measureStart) {
							skipped.Add(1)
						}
						continue
					}
					inflight.Add(1)
					// A request scheduled in the window is sent even if its
					// turn comes after the window: its latency counts from
					// the schedule, so leaving it out would hide a stall.
					o := shot(reqCtx, Call{Seq: j.seq, Worker: w, NotAfter: end.Add(cfg.Drain)})
					done := time.Now()
					inflight.Add(^uint64(0))
					sent := o.Sent
					if sent.IsZero() {
						sent = done
					}
					if !o.Skipped && !j.at.Before(measureStart) && j.at.Before(end) {
						lag := sent.Sub(j.at)
						rec.recordLag(w, lag, lag > cfg.LateAfter)
					}
					record(w, j.at, o, done.Sub(j.at))
				}
			}()
		}
		sched := Schedule{Start: start, Rate: cfg.Rate}
		var next uint64
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
	loop:
		for {
			now := time.Now()
			due := sched.Due(now)
			for ; next < due; next++ {
				at := sched.At(next)
				if !at.Before(end) {
					break loop
				}
				inWindow := !at.Before(measureStart)
				if inWindow {
					scheduled.Add(1)
				}
				select {
				case jobs <- job{next, at}:
				default:
					if inWindow {
						dropped.Add(1)
					} else {
						warmDropped.Add(1)
					}
				}
			}
			if d := sched.At(next).Sub(time.Now()); d > 0 {
				timer.Reset(d)
				select {
				case <-ctx.Done():
					break loop
				case <-timer.C:
				}
			}
		}
		close(jobs)
	} else {
		var seq atomic.Uint64
		for w := 0; w < cfg.Workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					t0 := time.Now()
					if !t0.Before(end) || ctx.Err() != nil {
						return
					}
					if cfg.MaxRequests > 0 && !t0.Before(measureStart) && measured.Add(1) > cfg.MaxRequests {
						return
					}
					inflight.Add(1)
					o := shot(reqCtx, Call{Seq: seq.Add(1) - 1, Worker: w, NotAfter: end})
					done := time.Now()
					inflight.Add(^uint64(0))
					if o.Sent.IsZero() {
						o.Sent = t0
					}
					record(w, o.Sent, o, done.Sub(o.Sent))
					if o.Skipped {
						return
					}
				}
			}()
		}
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-reqCtx.Done():
		// Shots honour reqCtx; give them a moment to return.
		select {
		case <-finished:
		case <-time.After(2 * time.Second):
		}
	}
	stopProgress()
	// A run bounded by MaxRequests ends with its last answer, before end.
	windowEnd := minTime(time.Now(), end)
	res := rec.Snapshot()
	res.Mode, res.Workers, res.Rate, res.LateAfter = mode, cfg.Workers, cfg.Rate, cfg.LateAfter
	res.Window = max(0, windowEnd.Sub(measureStart))
	res.Skipped, res.Dropped, res.Scheduled = skipped.Load(), dropped.Load(), scheduled.Load()
	res.Unfinished = inflight.Load()
	w := warm.Snapshot()
	res.WarmupReqs = w.Requests + warmDropped.Load()
	res.WarmupFails = w.Failures() + warmDropped.Load()
	return res
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
