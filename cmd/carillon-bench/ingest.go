package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// ingestOptions configure the ingest scenario (and the baseline).
type ingestOptions struct {
	common       commonFlags
	load         loadFlags
	Rooms        int
	HooksPerRoom int
	// WebhookRate is the server's per-webhook limit (its --webhook-rate);
	// each webhook is posted to at most once per MinGap, by default
	// 1.1/WebhookRate seconds: the 10 % margin absorbs the jitter between
	// sending here and the server's rate check.
	WebhookRate   float64
	MinGap        time.Duration
	Content       string
	Baseline      bool
	BaselineFirst bool
	BaselineAddr  string
	Pause         time.Duration // between the server run and the baseline run
	Logf          func(string, ...any)
}

type ingestReport struct {
	Scenario     string    `json:"scenario"`
	Env          envJSON   `json:"env"`
	Rooms        int       `json:"rooms"`
	Webhooks     int       `json:"webhooks"`
	MinGapMs     float64   `json:"minGapMs"`
	MaxPacedRate float64   `json:"maxPacedRate"` // webhooks / min gap
	SetupSeconds float64   `json:"setupSeconds"`
	SetupReused  bool      `json:"setupReused"`
	Payload      string    `json:"payload"`
	Server       *loadJSON `json:"server,omitempty"`
	Baseline     *loadJSON `json:"baseline,omitempty"`
	Ratio        float64   `json:"ratio,omitempty"` // server OK/s ÷ baseline OK/s
}

func cmdIngest(ctx context.Context, args []string) error {
	var o ingestOptions
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	o.common.register(fs)
	o.load.register(fs, 60*time.Second, 5*time.Second)
	fs.IntVar(&o.Rooms, "rooms", 2000, "rooms to create (or reuse from --setup-cache)")
	fs.IntVar(&o.HooksPerRoom, "webhooks-per-room", 10, "webhooks per room (the server allows 10)")
	fs.Float64Var(&o.WebhookRate, "webhook-rate", 1, "the server's --webhook-rate (messages/s per webhook)")
	fs.DurationVar(&o.MinGap, "min-gap", 0, "least time between two posts to one webhook (default 1.1/--webhook-rate s)")
	fs.StringVar(&o.Content, "content", sampleContent, "Content of every message")
	fs.BoolVar(&o.Baseline, "baseline", false, "also run the bare net/http baseline with the same load and print the ratio")
	fs.BoolVar(&o.BaselineFirst, "baseline-first", false, "run the baseline before the server (default: after)")
	fs.StringVar(&o.BaselineAddr, "baseline-addr", "127.0.0.1:0", "listen address of the baseline handler")
	fs.DurationVar(&o.Pause, "pause", 3*time.Second, "pause between the server run and the baseline run")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.common.check(); err != nil {
		return err
	}
	o.Logf = logf
	rep, err := runIngest(ctx, o)
	if err != nil {
		return err
	}
	emit(o.common.JSON, rep, rep.print)
	return nil
}

// runIngest sets up (or reuses) the rooms and webhooks and runs the load.
func runIngest(ctx context.Context, o ingestOptions) (*ingestReport, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Rooms < 1 || o.HooksPerRoom < 1 {
		return nil, errors.New("--rooms and --webhooks-per-room must be at least 1")
	}
	if o.WebhookRate <= 0 {
		o.WebhookRate = 1
	}
	if o.MinGap == 0 {
		o.MinGap = time.Duration(1.1 / o.WebhookRate * float64(time.Second))
	}
	raiseFileLimit(uint64(max(o.load.Connections, o.load.MaxInFlight)+1024), o.Logf)
	rep := &ingestReport{Scenario: "ingest", Env: runEnv(), Payload: o.Content}

	a := newAPI(o.common.URL, o.common.Token, o.common.SetupConcurrency)
	cache, err := loadCache(o.common.SetupCache, o.common.URL, "ingest")
	if err != nil {
		return nil, err
	}
	if err := cache.check(ctx, a); err != nil {
		return nil, err
	}
	setupStart := time.Now()
	rep.SetupReused = len(cache.Rooms) >= o.Rooms
	if err := ensureRooms(ctx, a, cache, o.common.SetupCache, "Bench ingest", o.Rooms, o.HooksPerRoom, o.common.SetupConcurrency, o.Logf); err != nil {
		return nil, err
	}
	rep.SetupSeconds = time.Since(setupStart).Seconds()
	a.hc.CloseIdleConnections()

	// Interleave rooms: consecutive posts go to different rooms.
	rooms := cache.Rooms[:o.Rooms]
	var hooks []roomHook
	for j := 0; j < o.HooksPerRoom; j++ {
		for _, r := range rooms {
			if j < len(r.Webhooks) {
				hooks = append(hooks, roomHook{r.RoomID, r.Webhooks[j]})
			}
		}
	}
	rep.Rooms, rep.Webhooks = len(rooms), len(hooks)
	rep.MinGapMs = ms(o.MinGap)
	rep.MaxPacedRate = float64(len(hooks)) / o.MinGap.Seconds()
	if o.load.Rate > rep.MaxPacedRate {
		o.Logf("warning: --rate %.0f is above what %d webhooks allow at one post per %s each (%.0f/s); requests will wait for their webhook and be late",
			o.load.Rate, len(hooks), o.MinGap, rep.MaxPacedRate)
	}

	pid := serverPID(o.common.ServerPID, o.common.ServerPIDFile, o.common.URL, o.Logf)
	smp := startSampler(pid)
	defer smp.Stop()

	body := contentBody(o.Content)
	runServer := func() error {
		o.Logf("load on the server: %d webhooks in %d rooms, at most one post per %s each (at most %.0f/s)",
			len(hooks), len(rooms), o.MinGap, rep.MaxPacedRate)
		j, err := driveWebhooks(ctx, "server", o.common.URL, hooks, true, o.MinGap, body, o.load, o.common.Timeout, smp, o.Logf)
		rep.Server = j
		return err
	}
	runBaseline := func() error {
		j, err := runBaselineLoad(ctx, o.BaselineAddr, hooks, body, o.load, o.common.Timeout, o.Logf)
		rep.Baseline = j
		return err
	}
	steps := []func() error{runServer}
	if o.Baseline {
		if o.BaselineFirst {
			steps = []func() error{runBaseline, runServer}
		} else {
			steps = append(steps, runBaseline)
		}
	}
	for i, step := range steps {
		if i > 0 {
			time.Sleep(o.Pause)
		}
		if err := step(); err != nil {
			return rep, err
		}
	}
	if rep.Baseline != nil && rep.Baseline.OKPerSec > 0 {
		rep.Ratio = rep.Server.OKPerSec / rep.Baseline.OKPerSec
	}
	return rep, nil
}

// roomHook is a webhook with its room.
type roomHook struct {
	RoomID string
	Hook   benchHook
}

// driveWebhooks runs the load engine posting body over hooks (round-robin,
// each at most once per gap) at base. checkRoom verifies the RoomId of
// every 200.
func driveWebhooks(ctx context.Context, name, base string, hooks []roomHook, checkRoom bool, gap time.Duration,
	body []byte, lf loadFlags, timeout time.Duration, smp *sampler, logf func(string, ...any)) (*loadJSON, error) {
	cfg := lf.config(timeout)
	cfg.Progress = func(s string) { logf("%s: %s", name, s) }
	tr := newLoadTransport(lf.Connections)
	defer tr.CloseIdleConnections()
	p := &poster{client: &http.Client{Transport: tr, Timeout: timeout}, body: body, gap: gap}
	for _, h := range hooks {
		u, err := joinURL(base, h.Hook.Path)
		if err != nil {
			return nil, err
		}
		t := &postTarget{url: u, status: http.StatusOK}
		if checkRoom {
			t.roomID = h.RoomID
		}
		p.targets = append(p.targets, t)
	}
	if len(p.targets) == 0 {
		return nil, errors.New("no webhooks to post to")
	}
	// The server's CPU and memory, and this process's CPU, are measured
	// over the window only (after the warm-up).
	var finish func() *serverStats
	var meter cpuMeter
	started := make(chan struct{})
	go func() {
		defer close(started)
		select {
		case <-time.After(cfg.Warmup):
		case <-ctx.Done():
		}
		meter = startCPUMeter()
		finish = smp.window()
	}()
	res := RunLoad(ctx, cfg, p.shot)
	<-started
	j := toLoadJSON(name, base, cfg, res)
	j.Connections = lf.Connections
	j.GeneratorCPU, j.MachineCPU = meter.cores()
	j.Server = finish()
	j.PaceWaits = p.paceWaits.Load()
	if ctx.Err() != nil {
		return &j, ctx.Err()
	}
	return &j, nil
}

// runBaselineLoad starts the bare handler and drives it like the server,
// without pacing (it has no rate limit) and without checking RoomIds.
func runBaselineLoad(ctx context.Context, addr string, hooks []roomHook, body []byte, lf loadFlags, timeout time.Duration, logf func(string, ...any)) (*loadJSON, error) {
	b, err := startBaseline(addr)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	defer b.Close()
	logf("load on the baseline (bare net/http handler in this process) at %s", b.URL)
	j, err := driveWebhooks(ctx, "baseline", b.URL, hooks, false, 0, body, lf, timeout, nil, logf)
	if j != nil {
		// This process is both client and server here.
		j.Server = nil
	}
	return j, err
}

// syntheticHooks makes n webhook paths of the real shape (UUID, 72
// character token) for a baseline run without a server.
func syntheticHooks(n int) []roomHook {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	hooks := make([]roomHook, n)
	for i := range hooks {
		id := uuid.NewString()
		tok := make([]byte, 72)
		for k := range tok {
			tok[k] = letters[(i*7+k*13)%len(letters)]
		}
		hooks[i] = roomHook{baselineRoomID, benchHook{WebhookID: id, Path: "/incomingwebhooks/" + id + "?token=" + string(tok)}}
	}
	return hooks
}

type baselineReport struct {
	Scenario string    `json:"scenario"`
	Env      envJSON   `json:"env"`
	Baseline *loadJSON `json:"baseline"`
}

func cmdBaseline(ctx context.Context, args []string) error {
	var lf loadFlags
	var addr, content string
	var hooks int
	var asJSON bool
	var timeout time.Duration
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	lf.register(fs, 30*time.Second, 3*time.Second)
	fs.StringVar(&addr, "addr", "127.0.0.1:0", "listen address of the bare handler")
	fs.IntVar(&hooks, "webhooks", 20000, "distinct webhook URLs to post to (only their length matters)")
	fs.StringVar(&content, "content", sampleContent, "Content of every message")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "timeout of one request")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	raiseFileLimit(uint64(max(lf.Connections, lf.MaxInFlight)+1024), logf)
	rep := &baselineReport{Scenario: "baseline", Env: runEnv()}
	j, err := runBaselineLoad(ctx, addr, syntheticHooks(max(hooks, 1)), contentBody(content), lf, timeout, logf)
	if err != nil {
		return err
	}
	rep.Baseline = j
	emit(asJSON, rep, func(w io.Writer) {
		rep.Env.print(w, "baseline")
		j.print(w)
	})
	return nil
}

func (r *ingestReport) print(w io.Writer) {
	r.Env.print(w, "ingest")
	how := "created"
	if r.SetupReused {
		how = "reused from the setup cache"
	}
	fmt.Fprintf(w, "setup      %d rooms × %d webhooks = %d webhooks (%s, %.1f s); at most one post per webhook every %s → at most %.0f posts/s\n",
		r.Rooms, r.Webhooks/max(r.Rooms, 1), r.Webhooks, how, r.SetupSeconds, fmtMs(r.MinGapMs), r.MaxPacedRate)
	fmt.Fprintf(w, "payload    %q\n", r.Payload)
	if r.Server != nil {
		r.Server.print(w)
	}
	if r.Baseline != nil {
		r.Baseline.print(w)
		fmt.Fprintf(w, "ratio      server/baseline throughput (OK/s): %.3f\n", r.Ratio)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "issue #6 targets (2-core machine): ≥15000 msg/s: %s (%.0f); p99 ≤ 25 ms: %s (%s); every response 200: %s (%d not OK)",
			verdict(s.OKPerSec >= 15000), s.OKPerSec, verdict(s.Latency.P99Ms <= 25), fmtMs(s.Latency.P99Ms),
			verdict(s.Requests == s.OK && s.Dropped == 0 && s.Requests > 0), s.Requests-s.OK+s.Dropped)
		if r.Baseline != nil {
			fmt.Fprintf(w, "; ratio ≥ 0.45: %s", verdict(r.Ratio >= 0.45))
		}
		if s.Server != nil {
			fmt.Fprintf(w, "; RSS ≤ 250 MB: %s (max %.0f MB)", verdict(s.Server.RSSMaxMB <= 250), s.Server.RSSMaxMB)
		}
		fmt.Fprintln(w)
	}
}
