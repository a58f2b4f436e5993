package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// The fan-out scenario: one room, N members each holding an event stream,
// R messages/s posted into the room. For every message it records when
// the post's answer (200/201) was read and when the event arrived at each
// stream (matched by MessageId), and reports the delivery delay per
// (message, stream) and per message until the last stream had it.
//
// Posting R messages/s into one room takes more than its webhooks: a room
// has at most 10, each limited to the server's --webhook-rate (1/s by
// default). The posts therefore go round-robin over the room's webhooks
// and, when those are not enough, over as many member users as needed
// (POST /api/v1/rooms/{id}/messages, 5/s each allowed), every sender at
// most once per 1.1/--webhook-rate s. --webhooks-only refuses to use
// users (for a server started with a higher --webhook-rate).

type fanoutOptions struct {
	common       commonFlags
	Streams      int
	Rate         float64
	Duration     time.Duration
	Settle       time.Duration
	Drain        time.Duration
	WebhookRate  float64
	WebhooksOnly bool
	OpenConc     int
	Content      string
	Logf         func(string, ...any)
}

type fanoutReport struct {
	Scenario       string         `json:"scenario"`
	Env            envJSON        `json:"env"`
	Streams        int            `json:"streams"`
	StreamsOpen    int            `json:"streamsOpen"`
	OpenFailures   map[string]int `json:"openFailures,omitempty"`
	OpenSeconds    float64        `json:"openSeconds"`
	StreamsEnded   int            `json:"streamsEndedEarly"` // closed by the server before the end
	Rate           float64        `json:"rate"`
	SenderWebhooks int            `json:"senderWebhooks"`
	SenderUsers    int            `json:"senderUsers"`
	Posts          *loadJSON      `json:"posts"`
	Messages       uint64         `json:"messages"`   // accepted posts
	Expected       uint64         `json:"expected"`   // messages × open streams
	Delivered      uint64         `json:"delivered"`  // distinct (message, stream) arrivals
	Missing        uint64         `json:"missing"`    // expected − delivered
	Duplicates     uint64         `json:"duplicates"` // a message twice on one stream
	// Unmatched message events: messages whose post got no answer here
	// (a timeout: the server stored it anyway) or that this run did not post.
	Unmatched     uint64      `json:"unmatched"`
	EarlyArrivals uint64      `json:"earlyArrivals"` // arrived before their post's answer was read
	Delivery      latencyJSON `json:"delivery"`      // per (message, stream), from the post's answer
	AllStreams    latencyJSON `json:"allStreams"`    // per message, from the answer until the last stream
	FromSend      latencyJSON `json:"fromSend"`      // per (message, stream), from when the post was sent
	Incomplete    uint64      `json:"incomplete"`    // messages that missed some stream
	// Server, GeneratorCPU and MachineCPU cover the posting and the drain
	// after it; PostingCPU the posting alone, when the load is on (a
	// server that falls behind delivers the rest during the drain).
	Server       *serverStats `json:"server,omitempty"`
	GeneratorCPU float64      `json:"generatorCpuCores"`
	MachineCPU   float64      `json:"machineCpuCores"`
	PostingCPU   cpuSplit     `json:"postingCpu"`
}

// cpuSplit is the busy cores of one phase of a run.
type cpuSplit struct {
	Server    float64 `json:"serverCpuCores"` // 0: the server's process was not found
	Generator float64 `json:"generatorCpuCores"`
	Machine   float64 `json:"machineCpuCores"`
}

func cmdFanout(ctx context.Context, args []string) error {
	var o fanoutOptions
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	o.common.register(fs)
	fs.IntVar(&o.Streams, "streams", 2000, "event streams, one per member user")
	fs.Float64Var(&o.Rate, "rate", 100, "messages posted per second")
	fs.DurationVar(&o.Duration, "duration", 30*time.Second, "how long to post")
	fs.DurationVar(&o.Settle, "settle", 5*time.Second, "pause after the streams opened (their presence events) before posting")
	fs.DurationVar(&o.Drain, "drain", 3*time.Second, "wait for deliveries after the last post")
	fs.Float64Var(&o.WebhookRate, "webhook-rate", 1, "the server's --webhook-rate (messages/s per webhook)")
	fs.BoolVar(&o.WebhooksOnly, "webhooks-only", false, "post through the room's 10 webhooks only (needs --rate ≤ 10 × webhook rate / 1.1)")
	fs.IntVar(&o.OpenConc, "open-concurrency", 64, "streams being opened at once")
	fs.StringVar(&o.Content, "content", quietContent, "Content of every message (@All is refused in rooms over 50 members)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.common.check(); err != nil {
		return err
	}
	o.Logf = logf
	rep, err := runFanout(ctx, o)
	if err != nil {
		return err
	}
	emit(o.common.JSON, rep, rep.print)
	return nil
}

// deliveries tracks every accepted message and its arrivals.
type deliveries struct {
	mu     sync.RWMutex
	ids    map[string]int32
	okAt   []int64 // unix ns the post's answer was read, by message index
	sentAt []int64 // unix ns the post was sent, by message index
	n      int

	last     []atomic.Int64 // latest arrival (unix ns) by message index
	count    []atomic.Int32 // streams reached by message index
	latency  *Recorder      // from the answer
	fromSend *Recorder      // from the send

	duplicates, unmatched, early atomic.Uint64
}

func newDeliveries(capacity int) *deliveries {
	return &deliveries{ids: make(map[string]int32, capacity), okAt: make([]int64, capacity), sentAt: make([]int64, capacity),
		last: make([]atomic.Int64, capacity), count: make([]atomic.Int32, capacity), latency: NewRecorder(64), fromSend: NewRecorder(64)}
}

// accepted records a message's answer.
func (d *deliveries) accepted(id string, sent, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == len(d.okAt) {
		return // beyond the planned count: ignored
	}
	d.ids[id] = int32(d.n)
	d.okAt[d.n] = at.UnixNano()
	d.sentAt[d.n] = sent.UnixNano()
	d.n++
}

// streamState is one stream's own bookkeeping.
type streamState struct {
	seen    []uint64 // bit per message index
	pending []pendingArrival
}

type pendingArrival struct {
	id string
	at int64
}

// arrived records that the message id reached stream i at at.
func (d *deliveries) arrived(i int, st *streamState, id []byte, at time.Time) {
	d.mu.RLock()
	k, ok := d.ids[string(id)]
	d.mu.RUnlock()
	if !ok {
		// The event beat its own answer to this process (both leave the
		// server at about the same time), or is not ours: settled at the end.
		st.pending = append(st.pending, pendingArrival{string(id), at.UnixNano()})
		return
	}
	d.deliver(i, st, int(k), at.UnixNano())
}

func (d *deliveries) deliver(i int, st *streamState, k int, at int64) {
	w := k / 64
	for len(st.seen) <= w {
		st.seen = append(st.seen, 0)
	}
	if st.seen[w]&(1<<(k%64)) != 0 {
		d.duplicates.Add(1)
		return
	}
	st.seen[w] |= 1 << (k % 64)
	lat := at - d.okAt[k]
	if lat < 0 {
		d.early.Add(1)
		lat = 0
	}
	d.latency.RecordLatency(i, time.Duration(lat))
	d.fromSend.RecordLatency(i, time.Duration(at-d.sentAt[k]))
	d.count[k].Add(1)
	for {
		old := d.last[k].Load()
		if at <= old || d.last[k].CompareAndSwap(old, at) {
			break
		}
	}
}

// settle resolves the arrivals that came before their answer.
func (d *deliveries) settle(i int, st *streamState) {
	for _, p := range st.pending {
		k, ok := d.ids[p.id]
		if !ok {
			d.unmatched.Add(1)
			continue
		}
		d.deliver(i, st, int(k), p.at)
	}
	st.pending = nil
}

func runFanout(ctx context.Context, o fanoutOptions) (*fanoutReport, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Streams < 1 || o.Rate <= 0 || o.Duration <= 0 {
		return nil, errors.New("--streams, --rate and --duration must be above 0")
	}
	if o.WebhookRate <= 0 {
		o.WebhookRate = 1
	}
	if o.OpenConc <= 0 {
		o.OpenConc = 64
	}
	if o.Content == "" {
		o.Content = quietContent
	}
	raiseFileLimit(uint64(o.Streams+2048), o.Logf)
	rep := &fanoutReport{Scenario: "fanout", Env: runEnv(), Streams: o.Streams, Rate: o.Rate}

	// Senders: each posts at most once per gap.
	gap := time.Duration(1.1 / o.WebhookRate * float64(time.Second))
	senders := int(math.Ceil(o.Rate * gap.Seconds()))
	rep.SenderWebhooks = min(senders, 10)
	rep.SenderUsers = senders - rep.SenderWebhooks
	if rep.SenderUsers > 0 && o.WebhooksOnly {
		return nil, fmt.Errorf("--rate %.0f needs %d senders at one post per %s, but a room has 10 webhooks; start the server with a higher --webhook-rate and pass it here, or drop --webhooks-only", o.Rate, senders, gap)
	}
	if rep.SenderUsers > o.Streams {
		return nil, fmt.Errorf("--rate %.0f needs %d users posting besides the webhooks, more than the %d stream users", o.Rate, rep.SenderUsers, o.Streams)
	}

	a := newAPI(o.common.URL, o.common.Token, o.common.SetupConcurrency)
	cache, err := loadCache(o.common.SetupCache, o.common.URL, "fanout")
	if err != nil {
		return nil, err
	}
	if err := cache.check(ctx, a); err != nil {
		return nil, err
	}
	if err := ensureRooms(ctx, a, cache, o.common.SetupCache, "Bench fan-out", 1, 10, 1, o.Logf); err != nil {
		return nil, err
	}
	room := cache.Rooms[0]
	if err := ensureUsers(ctx, a, cache, o.common.SetupCache, o.Streams, o.common.SetupConcurrency,
		func(int) string { return room.RoomID }, o.Logf); err != nil {
		return nil, err
	}
	a.hc.CloseIdleConnections()
	users := cache.Users[:o.Streams]

	pid := serverPID(o.common.ServerPID, o.common.ServerPIDFile, o.common.URL, o.Logf)
	smp := startSampler(pid)
	defer smp.Stop()

	// Streams.
	capacity := int(math.Ceil(o.Rate*o.Duration.Seconds())) + 64
	d := newDeliveries(capacity)
	states := make([]*streamState, o.Streams)
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	var ended atomic.Int64
	var posting atomic.Bool
	tokens := make([]string, len(users))
	for i, u := range users {
		tokens[i] = u.Token
	}
	openStart := time.Now()
	opened, failures, wait := openStreams(streamCtx, o.common.URL, tokens, o.Streams, o.OpenConc, o.Logf, func(i int, body io.Reader) {
		st := &streamState{}
		states[i] = st
		newSSEReader(body).run(func(id []byte, at time.Time) { d.arrived(i, st, id, at) })
		if streamCtx.Err() == nil && posting.Load() {
			ended.Add(1)
		}
	})
	rep.StreamsOpen, rep.OpenFailures, rep.OpenSeconds = opened, failures, time.Since(openStart).Seconds()
	if opened == 0 {
		return rep, fmt.Errorf("no event stream opened: %v", failures)
	}
	o.Logf("%d event streams open; settling for %s", opened, o.Settle)
	select {
	case <-time.After(o.Settle):
	case <-ctx.Done():
		return rep, ctx.Err()
	}

	// Posts: open loop at the rate, over the senders.
	tr := newLoadTransport(64)
	defer tr.CloseIdleConnections()
	p := &poster{client: &http.Client{Transport: tr, Timeout: o.common.Timeout}, body: contentBody(o.Content), gap: gap, onOK: d.accepted}
	for i := 0; i < rep.SenderWebhooks; i++ {
		u, err := joinURL(o.common.URL, room.Webhooks[i].Path)
		if err != nil {
			return rep, err
		}
		p.targets = append(p.targets, &postTarget{url: u, roomID: room.RoomID, status: http.StatusOK})
	}
	for i := 0; i < rep.SenderUsers; i++ {
		p.targets = append(p.targets, &postTarget{url: o.common.URL + "/api/v1/rooms/" + room.RoomID + "/messages",
			auth: "Bearer " + users[i].Token, roomID: room.RoomID, status: http.StatusCreated})
	}
	o.Logf("posting %.0f messages/s for %s through %d webhooks and %d users", o.Rate, o.Duration, rep.SenderWebhooks, rep.SenderUsers)
	cfg := LoadConfig{Workers: 256, Rate: o.Rate, Duration: o.Duration, Drain: o.common.Timeout + time.Second,
		Progress: func(s string) { logf("posts: %s", s) }}
	finish := smp.window()
	meter := startCPUMeter()
	serverCPU := smp.cpuSince()
	posting.Store(true)
	res := RunLoad(ctx, cfg, p.shot)
	// The drain is mostly idle: over the whole run, a 30 s run with a
	// 20 s drain would show the load at ~60 % of what it was.
	rep.PostingCPU.Generator, rep.PostingCPU.Machine = meter.cores()
	rep.PostingCPU.Server = serverCPU()
	o.Logf("posting done; waiting %s for the last deliveries", o.Drain)
	select {
	case <-time.After(o.Drain):
	case <-ctx.Done():
	}
	posting.Store(false)
	rep.GeneratorCPU, rep.MachineCPU = meter.cores()
	rep.Server = finish()
	stopStreams()
	wait()
	rep.StreamsEnded = int(ended.Load())
	posts := toLoadJSON("posts", o.common.URL, cfg, res)
	posts.PaceWaits = p.paceWaits.Load()
	posts.GeneratorCPU, posts.MachineCPU, posts.Server = rep.PostingCPU.Generator, rep.PostingCPU.Machine, rep.postingServer()
	rep.Posts = &posts

	// Settle early arrivals, then count.
	for i, st := range states {
		if st != nil {
			d.settle(i, st)
		}
	}
	rep.Messages = uint64(d.n)
	rep.Expected = rep.Messages * uint64(opened)
	snap := d.latency.Snapshot()
	rep.Delivered = snap.Requests
	rep.Missing = rep.Expected - min(rep.Expected, rep.Delivered)
	rep.Duplicates, rep.Unmatched, rep.EarlyArrivals = d.duplicates.Load(), d.unmatched.Load(), d.early.Load()
	rep.Delivery = summarize(snap.Hist)
	rep.FromSend = summarize(d.fromSend.Snapshot().Hist)
	all := NewHistogram()
	for k := 0; k < d.n; k++ {
		if int(d.count[k].Load()) >= opened {
			all.Record(time.Duration(max(0, d.last[k].Load()-d.okAt[k])))
		} else {
			rep.Incomplete++
		}
	}
	rep.AllStreams = summarize(all)
	return rep, nil
}

func (r *fanoutReport) print(w io.Writer) {
	r.Env.print(w, "fanout")
	fmt.Fprintf(w, "streams    %d of %d open (in %.1f s)", r.StreamsOpen, r.Streams, r.OpenSeconds)
	if len(r.OpenFailures) > 0 {
		keys := make([]string, 0, len(r.OpenFailures))
		for k := range r.OpenFailures {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(w, "; failed:")
		for _, k := range keys {
			fmt.Fprintf(w, " %q ×%d", k, r.OpenFailures[k])
		}
	}
	fmt.Fprintf(w, "; %d ended early (closed by the server)\n", r.StreamsEnded)
	fmt.Fprintf(w, "senders    %d webhooks + %d users, round-robin\n", r.SenderWebhooks, r.SenderUsers)
	r.Posts.print(w)
	fmt.Fprintf(w, "messages   %d accepted; deliveries %d of %d expected, %d missing, %d duplicates; %d arrived before their post's answer was read (counted as 0)\n",
		r.Messages, r.Delivered, r.Expected, r.Missing, r.Duplicates, r.EarlyArrivals)
	if r.Unmatched > 0 {
		fmt.Fprintf(w, "unmatched  %d message events of posts that got no answer here (timed out, yet stored) or were not posted by this run\n", r.Unmatched)
	}
	fmt.Fprintf(w, "delivery   from the post's answer to the event on a stream, per (message, stream): %s\n", r.Delivery)
	fmt.Fprintf(w, "all        from the answer until the last stream had it, per message (%d incomplete): %s\n", r.Incomplete, r.AllStreams)
	fmt.Fprintf(w, "from send  from sending the post to the event on a stream, per (message, stream): %s\n", r.FromSend)
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server     %s\n", s)
	}
	fmt.Fprintf(w, "CPU        while posting: %s\n", cpuLine(r.postingServer(), r.PostingCPU.Generator, r.PostingCPU.Machine))
	fmt.Fprintf(w, "           with the drain: %s\n", cpuLine(r.Server, r.GeneratorCPU, r.MachineCPU))
	fmt.Fprintf(w, "issue #6 target: p99 from the 200 to the event at every stream ≤ 100 ms: %s (per delivery %s, per message %s; %d missing)\n",
		verdict(r.Delivery.P99Ms <= 100 && r.AllStreams.P99Ms <= 100 && r.Missing == 0 && r.Messages > 0),
		fmtMs(r.Delivery.P99Ms), fmtMs(r.AllStreams.P99Ms), r.Missing)
}

// postingServer is the server's figures with its CPU while posting.
func (r *fanoutReport) postingServer() *serverStats {
	if r.Server == nil {
		return nil
	}
	s := *r.Server
	s.CPUCores = r.PostingCPU.Server
	return &s
}
