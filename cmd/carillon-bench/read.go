package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/carillon-chat/carillon"
)

// The read scenario: one room holding --messages messages; the latency of
// GET /api/v1/rooms/{id}/messages?MaxResults=50&SortOrder=DESCENDING at
// random positions.
//
// Filling goes through HTTP like everything else, which is the slow part:
// a room has at most 10 webhooks at the server's --webhook-rate each, so
// by default the room is filled by --fill-users member users posting
// POST /api/v1/rooms/{id}/messages (the server allows 5/s per user; each
// posts at most once per 0.22 s), e.g. 2,000 users → at most ~9,000/s,
// about two minutes for 1,000,000 messages if the server keeps up.
// --fill-via webhooks uses the 10 webhooks instead (for a server started
// with a high --webhook-rate). The count stored is kept in --setup-cache,
// so a later run against the same data directory skips the fill (or tops
// it up); --fill-only stops after filling.
//
// Page positions are NextTokens, opaque to clients: the scenario walks the
// whole room once, newest first, keeping every page's NextToken (that walk
// is reported too), then requests pages at tokens drawn at random.

type readOptions struct {
	common      commonFlags
	load        loadFlags
	Messages    int
	FillUsers   int
	FillConns   int
	FillVia     string
	WebhookRate float64
	FillOnly    bool
	Requests    int
	PageSize    int
	Logf        func(string, ...any)
}

type readReport struct {
	Scenario    string      `json:"scenario"`
	Env         envJSON     `json:"env"`
	RoomID      string      `json:"roomId"`
	Messages    int64       `json:"messages"` // stored by the bench in the room
	Fill        *loadJSON   `json:"fill,omitempty"`
	WalkPages   int         `json:"walkPages"`
	WalkSeen    int         `json:"walkMessages"`
	WalkSeconds float64     `json:"walkSeconds"`
	Walk        latencyJSON `json:"walk"` // sequential pages, newest first
	Reads       *loadJSON   `json:"reads,omitempty"`
}

func cmdRead(ctx context.Context, args []string) error {
	var o readOptions
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	o.common.register(fs)
	o.load.register(fs, 5*time.Minute, 0)
	fs.IntVar(&o.Messages, "messages", 1000000, "messages the room must hold (filled through HTTP if missing)")
	fs.IntVar(&o.FillUsers, "fill-users", 2000, "member users posting the fill (--fill-via users)")
	fs.IntVar(&o.FillConns, "fill-connections", 32, "concurrent requests while filling")
	fs.StringVar(&o.FillVia, "fill-via", "users", "fill through member users (users) or the room's 10 webhooks (webhooks)")
	fs.Float64Var(&o.WebhookRate, "webhook-rate", 1, "the server's --webhook-rate (for --fill-via webhooks)")
	fs.BoolVar(&o.FillOnly, "fill-only", false, "stop after filling the room")
	fs.IntVar(&o.Requests, "requests", 2000, "page requests to time (--duration bounds them too)")
	fs.IntVar(&o.PageSize, "page-size", 50, "MaxResults of every page")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := o.common.check(); err != nil {
		return err
	}
	// Page latency is best seen one request at a time; --connections
	// raises it.
	if !flagSet(fs, "connections") {
		o.load.Connections = 1
	}
	o.Logf = logf
	rep, err := runRead(ctx, o)
	if err != nil {
		return err
	}
	emit(o.common.JSON, rep, rep.print)
	return nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func runRead(ctx context.Context, o readOptions) (*readReport, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.Messages < 1 || o.PageSize < 1 || o.PageSize > 100 {
		return nil, errors.New("--messages must be at least 1 and --page-size 1 to 100")
	}
	if o.FillVia != "users" && o.FillVia != "webhooks" {
		return nil, fmt.Errorf("--fill-via %q: users or webhooks", o.FillVia)
	}
	if o.WebhookRate <= 0 {
		o.WebhookRate = 1
	}
	if o.FillConns <= 0 {
		o.FillConns = 32
	}
	rep := &readReport{Scenario: "read", Env: runEnv()}
	a := newAPI(o.common.URL, o.common.Token, o.common.SetupConcurrency)
	cache, err := loadCache(o.common.SetupCache, o.common.URL, "read")
	if err != nil {
		return nil, err
	}
	if err := cache.check(ctx, a); err != nil {
		return nil, err
	}
	if err := ensureRooms(ctx, a, cache, o.common.SetupCache, "Bench read", 1, 10, 1, o.Logf); err != nil {
		return nil, err
	}
	room := cache.Rooms[0]
	rep.RoomID = room.RoomID

	if missing := int64(o.Messages) - cache.Filled; missing > 0 {
		fill, err := fillRoom(ctx, a, cache, o, missing)
		rep.Fill = fill
		if err != nil {
			return rep, err
		}
	}
	rep.Messages = cache.Filled
	if o.FillOnly {
		return rep, nil
	}

	// Walk the room, newest first, keeping the tokens.
	o.Logf("walking the room (%d messages) %d at a time to collect page tokens", cache.Filled, o.PageSize)
	client := &http.Client{Transport: newLoadTransport(max(o.load.Connections, 1)), Timeout: o.common.Timeout}
	walk := NewHistogram()
	walkStart := time.Now()
	lastLog := time.Now()
	var tokens []string
	for tok := ""; ; {
		t0 := time.Now()
		page, err := getPage(ctx, client, o.common.URL, o.common.Token, room.RoomID, o.PageSize, tok)
		if err != nil {
			return rep, fmt.Errorf("walking the room: %w", err)
		}
		walk.Record(time.Since(t0))
		rep.WalkPages++
		rep.WalkSeen += len(page.Messages)
		if page.NextToken == nil {
			break
		}
		tok = *page.NextToken
		tokens = append(tokens, tok)
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			o.Logf("walk: %d pages, %d messages, p99 %s", rep.WalkPages, rep.WalkSeen, fmtDur(walk.Quantile(0.99)))
		}
	}
	rep.WalkSeconds = time.Since(walkStart).Seconds()
	rep.Walk = summarize(walk)
	if len(tokens) == 0 {
		tokens = []string{""} // one page only: time the first page
	}

	// Timed reads at random positions.
	o.Logf("timing %d page reads at random positions among %d, %d at a time", o.Requests, len(tokens), o.load.Connections)
	cfg := o.load.config(o.common.Timeout)
	cfg.MaxRequests = uint64(o.Requests)
	cfg.Progress = func(s string) { logf("reads: %s", s) }
	smp := startSampler(serverPID(o.common.ServerPID, o.common.ServerPIDFile, o.common.URL, o.Logf))
	defer smp.Stop()
	finish := smp.window()
	meter := startCPUMeter()
	res := RunLoad(ctx, cfg, func(ctx context.Context, c Call) Outcome {
		tok := tokens[rand.IntN(len(tokens))]
		sent := time.Now()
		page, err := getPage(ctx, client, o.common.URL, o.common.Token, room.RoomID, o.PageSize, tok)
		var se *statusError
		switch {
		case errors.As(err, &se):
			return Outcome{Status: se.status, Sent: sent}
		case err != nil:
			return Outcome{Err: classifyErr(err), Sent: sent}
		case len(page.Messages) != o.PageSize && page.NextToken != nil:
			return Outcome{Status: 200, Bad: fmt.Sprintf("a page of %d messages with a NextToken", len(page.Messages)), Sent: sent}
		}
		return Outcome{Status: 200, OK: true, Sent: sent}
	})
	reads := toLoadJSON("reads", o.common.URL, cfg, res)
	reads.GeneratorCPU, reads.MachineCPU = meter.cores()
	reads.Server = finish()
	rep.Reads = &reads
	return rep, ctx.Err()
}

type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string { return fmt.Sprintf("status %d: %.200s", e.status, e.body) }

type messagePage struct {
	Messages []struct {
		MessageId string
	}
	NextToken *string
}

// getPage reads one page of messages, newest first.
func getPage(ctx context.Context, c *http.Client, base, token, roomID string, size int, next string) (*messagePage, error) {
	q := url.Values{"MaxResults": {fmt.Sprint(size)}, "SortOrder": {"DESCENDING"}}
	if next != "" {
		q.Set("NextToken", next)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/rooms/"+roomID+"/messages?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, 16<<20)); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{resp.StatusCode, buf.String()}
	}
	var p messagePage
	if err := json.Unmarshal(buf.Bytes(), &p); err != nil {
		return nil, fmt.Errorf("page is not the expected JSON: %v", err)
	}
	for _, m := range p.Messages {
		if !carillon.ValidID(m.MessageId) {
			return nil, fmt.Errorf("a message without MessageId")
		}
	}
	return &p, nil
}

// fillRoom posts missing messages into the read room and records the
// count in the cache.
func fillRoom(ctx context.Context, a *api, cache *setupCache, o readOptions, missing int64) (*loadJSON, error) {
	room := cache.Rooms[0]
	p := &poster{client: &http.Client{Transport: newLoadTransport(o.FillConns), Timeout: o.common.Timeout},
		body: contentBody(quietContent)}
	var maxRate float64
	if o.FillVia == "users" {
		if err := ensureUsers(ctx, a, cache, o.common.SetupCache, o.FillUsers, o.common.SetupConcurrency,
			func(int) string { return room.RoomID }, o.Logf); err != nil {
			return nil, err
		}
		p.gap = 220 * time.Millisecond // 4.5/s, under the 5/s per user
		for _, u := range cache.Users[:o.FillUsers] {
			p.targets = append(p.targets, &postTarget{url: o.common.URL + "/api/v1/rooms/" + room.RoomID + "/messages",
				auth: "Bearer " + u.Token, roomID: room.RoomID, status: http.StatusCreated})
		}
	} else {
		p.gap = time.Duration(1.1 / o.WebhookRate * float64(time.Second))
		for _, h := range room.Webhooks {
			u, err := joinURL(o.common.URL, h.Path)
			if err != nil {
				return nil, err
			}
			p.targets = append(p.targets, &postTarget{url: u, roomID: room.RoomID, status: http.StatusOK})
		}
	}
	maxRate = float64(len(p.targets)) / p.gap.Seconds()
	o.Logf("filling the room with %d messages through %d %s (at most %.0f/s: about %s)", missing, len(p.targets), o.FillVia,
		maxRate, (time.Duration(float64(missing)/maxRate) * time.Second).Round(time.Second))
	cfg := LoadConfig{Workers: o.FillConns, Duration: 24 * time.Hour, MaxRequests: uint64(missing),
		Drain: o.common.Timeout + time.Second, Progress: func(s string) { logf("fill: %s", s) }, ProgressEvery: 10 * time.Second}
	res := RunLoad(ctx, cfg, p.shot)
	cache.Filled += int64(res.OK)
	j := toLoadJSON("fill", o.common.URL, cfg, res)
	j.PaceWaits = p.paceWaits.Load()
	if err := cache.save(o.common.SetupCache); err != nil {
		return &j, err
	}
	if ctx.Err() != nil {
		return &j, ctx.Err()
	}
	if res.OK < uint64(missing) {
		o.Logf("fill: %d of %d posts not accepted (%s); the room holds %d", uint64(missing)-res.OK, missing, countsLine(res.Status), cache.Filled)
	}
	return &j, nil
}

func (r *readReport) print(w io.Writer) {
	r.Env.print(w, "read")
	fmt.Fprintf(w, "room       %s holds %d bench messages\n", r.RoomID, r.Messages)
	if r.Fill != nil {
		r.Fill.print(w)
	}
	if r.WalkPages > 0 {
		fmt.Fprintf(w, "walk       %d pages (%d messages) newest first, one at a time, in %.1f s: %s\n",
			r.WalkPages, r.WalkSeen, r.WalkSeconds, r.Walk)
	}
	if r.Reads != nil {
		r.Reads.print(w)
		fmt.Fprintf(w, "issue #6 target: a 50-message page from a room of 1,000,000 messages, p99 ≤ 10 ms: %s (p99 %s over %d messages)\n",
			verdict(r.Reads.Latency.P99Ms <= 10 && r.Messages >= 1000000 && r.Reads.OK == r.Reads.Requests),
			fmtMs(r.Reads.Latency.P99Ms), r.Messages)
	}
}
