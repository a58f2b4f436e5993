package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"sync/atomic"
	"time"
)

// The idle scenario: N event streams opened and held without traffic
// (only the server's keep-alive comments), to measure what an open
// stream costs the server in memory. Streams belong to --users users
// (one per stream by default), in rooms of --room-size members, so that
// each stream carries a realistic, small set of rooms.

type idleOptions struct {
	common   commonFlags
	Streams  int
	Users    int
	RoomSize int
	Hold     time.Duration
	OpenConc int
	Logf     func(string, ...any)
}

type idleReport struct {
	Scenario     string         `json:"scenario"`
	Env          envJSON        `json:"env"`
	Streams      int            `json:"streams"`
	Users        int            `json:"users"`
	StreamsOpen  int            `json:"streamsOpen"`
	OpenFailures map[string]int `json:"openFailures,omitempty"`
	OpenSeconds  float64        `json:"openSeconds"`
	HoldSeconds  float64        `json:"holdSeconds"`
	StreamsEnded int            `json:"streamsEndedEarly"`
	RSSBeforeMB  float64        `json:"rssBeforeMB"` // server VmRSS before the streams opened
	PerStreamKB  float64        `json:"perStreamKB"` // (RSS at the end − before) / open streams
	// What the "idle" streams received while held (keep-alive comments,
	// presence and other events), in total.
	HoldBytes    uint64       `json:"holdBytes"`
	Server       *serverStats `json:"server,omitempty"`
	GeneratorCPU float64      `json:"generatorCpuCores"`
	MachineCPU   float64      `json:"machineCpuCores"`
}

func cmdIdle(ctx context.Context, args []string) error {
	var o idleOptions
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	o.common.register(fs)
	fs.IntVar(&o.Streams, "streams", 10000, "event streams to hold")
	fs.IntVar(&o.Users, "users", 0, "users owning the streams, round-robin (default one per stream)")
	fs.IntVar(&o.RoomSize, "room-size", 100, "the users are put in rooms of this many members")
	fs.DurationVar(&o.Hold, "hold", 30*time.Second, "how long to hold the streams once open")
	fs.IntVar(&o.OpenConc, "open-concurrency", 64, "streams being opened at once")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.common.check(); err != nil {
		return err
	}
	o.Logf = logf
	rep, err := runIdle(ctx, o)
	if err != nil {
		return err
	}
	emit(o.common.JSON, rep, rep.print)
	return nil
}

func runIdle(ctx context.Context, o idleOptions) (*idleReport, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Streams < 1 {
		return nil, errors.New("--streams must be at least 1")
	}
	if o.Users <= 0 || o.Users > o.Streams {
		o.Users = o.Streams
	}
	if o.RoomSize < 1 {
		o.RoomSize = 100
	}
	if o.OpenConc <= 0 {
		o.OpenConc = 64
	}
	raiseFileLimit(uint64(o.Streams+1024), o.Logf)
	rep := &idleReport{Scenario: "idle", Env: runEnv(), Streams: o.Streams, Users: o.Users}

	a := newAPI(o.common.URL, o.common.Token, o.common.SetupConcurrency)
	cache, err := loadCache(o.common.SetupCache, o.common.URL, "idle")
	if err != nil {
		return nil, err
	}
	if err := cache.check(ctx, a); err != nil {
		return nil, err
	}
	rooms := (o.Users + o.RoomSize - 1) / o.RoomSize
	if err := ensureRooms(ctx, a, cache, o.common.SetupCache, "Bench idle", rooms, 0, o.common.SetupConcurrency, o.Logf); err != nil {
		return nil, err
	}
	if err := ensureUsers(ctx, a, cache, o.common.SetupCache, o.Users, o.common.SetupConcurrency,
		func(i int) string { return cache.Rooms[(i/o.RoomSize)%len(cache.Rooms)].RoomID }, o.Logf); err != nil {
		return nil, err
	}
	a.hc.CloseIdleConnections()
	tokens := make([]string, o.Users)
	for i := range tokens {
		tokens[i] = cache.Users[i].Token
	}

	pid := serverPID(o.common.ServerPID, o.common.ServerPIDFile, o.common.URL, o.Logf)
	smp := startSampler(pid)
	defer smp.Stop()
	if pid > 0 {
		time.Sleep(2 * time.Second) // let the setup's garbage be collected
		if m, err := readProcMem(pid); err == nil {
			rep.RSSBeforeMB = mb(m.RSS)
		}
	}

	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	var ended atomic.Int64
	var holding atomic.Bool
	var holdBytes atomic.Uint64
	openStart := time.Now()
	opened, failures, wait := openStreams(streamCtx, o.common.URL, tokens, o.Streams, o.OpenConc, o.Logf, func(i int, body io.Reader) {
		var buf [256]byte
		for {
			n, err := body.Read(buf[:])
			if holding.Load() {
				holdBytes.Add(uint64(n))
			}
			if err != nil {
				break
			}
		}
		if streamCtx.Err() == nil && holding.Load() {
			ended.Add(1)
		}
	})
	rep.StreamsOpen, rep.OpenFailures, rep.OpenSeconds = opened, failures, time.Since(openStart).Seconds()
	o.Logf("%d event streams open; holding them for %s", opened, o.Hold)
	holding.Store(true)
	finish := smp.window()
	meter := startCPUMeter()
	holdStart := time.Now()
	tick := time.NewTicker(5 * time.Second)
hold:
	for {
		select {
		case <-ctx.Done():
			break hold
		case <-tick.C:
			if time.Since(holdStart) >= o.Hold {
				break hold
			}
			if pid > 0 {
				if m, err := readProcMem(pid); err == nil {
					o.Logf("holding %d streams (%d ended): server RSS %.1f MB", opened, ended.Load(), mb(m.RSS))
				}
			}
		case <-time.After(time.Until(holdStart.Add(o.Hold))):
			break hold
		}
	}
	tick.Stop()
	rep.HoldSeconds = time.Since(holdStart).Seconds()
	rep.Server = finish()
	rep.GeneratorCPU, rep.MachineCPU = meter.cores()
	holding.Store(false)
	rep.HoldBytes = holdBytes.Load()
	rep.StreamsEnded = int(ended.Load())
	stopStreams()
	wait()
	if rep.Server != nil && opened > 0 && rep.RSSBeforeMB > 0 {
		rep.PerStreamKB = (rep.Server.RSSLastMB - rep.RSSBeforeMB) * 1024 / float64(opened)
	}
	return rep, ctx.Err()
}

func (r *idleReport) print(w io.Writer) {
	r.Env.print(w, "idle")
	fmt.Fprintf(w, "streams    %d of %d open (%d users) in %.1f s, held %.1f s; %d ended early\n",
		r.StreamsOpen, r.Streams, r.Users, r.OpenSeconds, r.HoldSeconds, r.StreamsEnded)
	if len(r.OpenFailures) > 0 {
		keys := make([]string, 0, len(r.OpenFailures))
		for k := range r.OpenFailures {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "  failed to open: %q ×%d\n", k, r.OpenFailures[k])
		}
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server     RSS before %.1f MB; while held: max %.1f MB (anonymous %.1f MB, mapped files %.1f MB), last %.1f MB (%.1f KB per stream); VmHWM %.1f MB; CPU %.2f cores (pid %d)\n",
			r.RSSBeforeMB, s.RSSMaxMB, s.AnonMaxMB, s.FileMaxMB, s.RSSLastMB, r.PerStreamKB, s.HWMMB, s.CPUCores, s.PID)
		fmt.Fprintf(w, "traffic    the streams received %.1f MB while held (%.0f bytes/s per stream: keep-alives, presence and other events)\n",
			float64(r.HoldBytes)/(1<<20), float64(r.HoldBytes)/max(r.HoldSeconds, 1)/float64(max(r.StreamsOpen, 1)))
		fmt.Fprintf(w, "CPU        %s\n", cpuLine(s, r.GeneratorCPU, r.MachineCPU))
		fmt.Fprintf(w, "issue #6 target: 10,000 idle streams with ≤ 300 MB resident: %s (%d streams, max %.0f MB)\n",
			verdict(r.StreamsOpen >= 10000 && s.RSSMaxMB <= 300 && r.StreamsEnded == 0), r.StreamsOpen, s.RSSMaxMB)
	} else {
		fmt.Fprintln(w, "server     memory unknown (no --server-pid)")
	}
}
