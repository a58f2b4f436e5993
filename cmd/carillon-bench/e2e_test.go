package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/carillon-chat/carillon/apptest"
)

// The scenarios against a real server (apptest: real HTTP on loopback, a
// real SQLite file), small and short. The server allows 1000 posts/s per
// webhook here so that a few webhooks carry the load.

func quickLoad(d time.Duration) loadFlags {
	return loadFlags{Connections: 4, MaxInFlight: 64, Duration: d, Warmup: 200 * time.Millisecond, Late: 5 * time.Millisecond}
}

func testCommon(in *apptest.Instance, cache string) commonFlags {
	return commonFlags{URL: in.URL, Token: in.AdminToken, ServerPID: -1, SetupConcurrency: 4, Timeout: 5 * time.Second, SetupCache: cache}
}

func TestIngestEndToEnd(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{WebhookRate: 1000, WebhookBurst: 1000})
	cache := filepath.Join(t.TempDir(), "ingest.json")
	o := ingestOptions{common: testCommon(in, cache), load: quickLoad(2 * time.Second),
		Rooms: 2, HooksPerRoom: 3, WebhookRate: 1000, Content: sampleContent, Baseline: true, Pause: 100 * time.Millisecond, Logf: t.Logf}
	rep, err := runIngest(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	s := rep.Server
	if rep.Webhooks != 6 || rep.Rooms != 2 {
		t.Errorf("%d webhooks in %d rooms", rep.Webhooks, rep.Rooms)
	}
	if s.Requests == 0 || s.OK != s.Requests || s.BadBodies != 0 || len(s.TransportErrors) != 0 || s.WarmupFailures != 0 {
		t.Fatalf("server run: %d requests, %d OK, status %v, errors %v, bad %d (%s), warm-up failures %d",
			s.Requests, s.OK, s.Status, s.TransportErrors, s.BadBodies, s.BadSample, s.WarmupFailures)
	}
	if s.Status["200"] != s.Requests || s.Latency.Count != s.Requests || s.Latency.P99Ms <= 0 {
		t.Errorf("status %v, latency %+v", s.Status, s.Latency)
	}
	b := rep.Baseline
	if b == nil || b.Requests == 0 || b.OK != b.Requests || rep.Ratio <= 0 {
		t.Fatalf("baseline %+v, ratio %v", b, rep.Ratio)
	}
	t.Logf("server %.0f/s p99 %.2fms; baseline %.0f/s; ratio %.3f", s.OKPerSec, s.Latency.P99Ms, b.OKPerSec, rep.Ratio)

	// A second run reuses the cache: nothing created, same webhooks.
	o.Baseline = false
	o.load = quickLoad(300 * time.Millisecond)
	o.load.Rate, o.load.Warmup = 200, 0
	rep2, err := runIngest(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !rep2.SetupReused || rep2.Webhooks != 6 {
		t.Errorf("second run: reused %v, %d webhooks", rep2.SetupReused, rep2.Webhooks)
	}
	if s := rep2.Server; s.Mode != "open" || s.Requests == 0 || s.OK != s.Requests || s.Dropped != 0 {
		t.Errorf("open loop run: %+v", s)
	}
}

func TestFanoutEndToEnd(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{WebhookRate: 1000, WebhookBurst: 1000})
	o := fanoutOptions{common: testCommon(in, ""), Streams: 5, Rate: 40, Duration: time.Second,
		Settle: 200 * time.Millisecond, Drain: 500 * time.Millisecond, WebhookRate: 1000, Logf: t.Logf}
	rep, err := runFanout(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.StreamsOpen != 5 || rep.Messages < 30 || rep.Missing != 0 || rep.Duplicates != 0 || rep.Unmatched != 0 || rep.Incomplete != 0 {
		t.Fatalf("streams %d, messages %d, delivered %d of %d, duplicates %d, unmatched %d, incomplete %d",
			rep.StreamsOpen, rep.Messages, rep.Delivered, rep.Expected, rep.Duplicates, rep.Unmatched, rep.Incomplete)
	}
	if rep.Posts.OK != rep.Posts.Requests || rep.Delivery.Count != rep.Delivered {
		t.Errorf("posts %+v", rep.Posts)
	}
	t.Logf("delivery %s; all streams %s", rep.Delivery, rep.AllStreams)

	// More senders than webhooks: users post too (201s).
	o.Rate, o.WebhookRate, o.Duration = 12, 1, 1500*time.Millisecond
	rep, err = runFanout(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.SenderUsers == 0 || rep.Posts.Status["201"] == 0 || rep.Missing != 0 || rep.Posts.OK != rep.Posts.Requests {
		t.Fatalf("senders %d+%d, posts %v, missing %d", rep.SenderWebhooks, rep.SenderUsers, rep.Posts.Status, rep.Missing)
	}
}

func TestIdleAndReadEndToEnd(t *testing.T) {
	t.Parallel()
	in := apptest.Start(t, apptest.Options{WebhookRate: 1000, WebhookBurst: 1000})
	irep, err := runIdle(context.Background(), idleOptions{common: testCommon(in, ""), Streams: 6, Users: 3, RoomSize: 2, Hold: 300 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if irep.StreamsOpen != 6 || irep.StreamsEnded != 0 || len(irep.OpenFailures) != 0 {
		t.Fatalf("idle: %+v", irep)
	}

	cache := filepath.Join(t.TempDir(), "read.json")
	o := readOptions{common: testCommon(in, cache), load: quickLoad(5 * time.Second), Messages: 120, FillConns: 8,
		FillVia: "webhooks", WebhookRate: 1000, Requests: 40, PageSize: 50, Logf: t.Logf}
	o.load.Warmup, o.load.Connections = 0, 2
	rep, err := runRead(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 120 || rep.WalkPages != 3 || rep.WalkSeen != 120 {
		t.Fatalf("room of %d messages walked in %d pages (%d seen)", rep.Messages, rep.WalkPages, rep.WalkSeen)
	}
	if r := rep.Reads; r.Requests != 40 || r.OK != 40 {
		t.Fatalf("reads: %d requests, %d OK, status %v, errors %v, bad %s", r.Requests, r.OK, r.Status, r.TransportErrors, r.BadSample)
	}
	// The cache remembers the fill: no more posts the second time.
	rep, err = runRead(context.Background(), o)
	if err != nil || rep.Fill != nil || rep.Messages != 120 {
		t.Fatalf("second read run: err %v, fill %v, messages %d", err, rep.Fill, rep.Messages)
	}
}
