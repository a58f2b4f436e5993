package redisstore

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// Short durations, so that grace and expiry pass within a test.
const (
	testGrace   = 600 * time.Millisecond
	testTTL     = time.Second
	testRefresh = 200 * time.Millisecond
)

// twoPresences returns two nodes sharing a prefix, each with a client of
// its own.
func twoPresences(t *testing.T) (a, b *Presence) {
	prefix := testPrefix(t)
	opts := PresenceOptions{Prefix: prefix, Grace: testGrace, TTL: testTTL, Refresh: testRefresh}
	opts.NodeID = "a"
	a = NewPresence(newClient(t, ""), opts)
	opts.NodeID = "b"
	b = NewPresence(newClient(t, ""), opts)
	return a, b
}

func isPresent(t *testing.T, p *Presence, id string) bool {
	t.Helper()
	m, err := p.Present(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return m[id]
}

// changes merges the Changes of every node, failing when two nodes report
// the same change.
func changes(t *testing.T, nodes ...*Presence) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, p := range nodes {
		ch, err := p.Changes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for id, v := range ch {
			if _, dup := out[id]; dup {
				t.Fatalf("change of %s reported by two nodes", id)
			}
			out[id] = v
		}
	}
	return out
}

func TestPresenceAcrossNodesWithGrace(t *testing.T) {
	a, b := twoPresences(t)
	ctx := context.Background()
	if isPresent(t, b, "u") {
		t.Fatal("present before any stream")
	}
	close1, err := a.Connect(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	close2, _ := a.Connect(ctx, "u")
	if !isPresent(t, b, "u") {
		t.Fatal("a stream on node a is not seen from node b")
	}
	m, err := b.Present(ctx, []string{"u", "v"})
	if err != nil || !reflect.DeepEqual(m, map[string]bool{"u": true}) {
		t.Fatalf("Present(u, v) = %v, %v", m, err)
	}
	if ch := changes(t, b, a); !reflect.DeepEqual(ch, map[string]bool{"u": true}) {
		t.Fatalf("changes %v, want u present once across the nodes", ch)
	}
	if ch := changes(t, a, b); len(ch) != 0 {
		t.Fatalf("changes %v reported twice", ch)
	}
	close1()
	close2()
	close2() // closing twice changes nothing
	closedAt := time.Now()
	if !isPresent(t, b, "u") {
		t.Fatal("absent within the grace period")
	}
	if ch := changes(t, a, b); len(ch) != 0 {
		t.Fatalf("changes during grace: %v", ch)
	}
	eventually(t, 3*testGrace, "present long after the grace", func() bool { return !isPresent(t, b, "u") })
	if since := time.Since(closedAt); since < testGrace-50*time.Millisecond {
		t.Fatalf("absent %v after the last close, before the %v grace", since, testGrace)
	}
	if ch := changes(t, b, a); !reflect.DeepEqual(ch, map[string]bool{"u": false}) {
		t.Fatalf("changes %v, want u absent once across the nodes", ch)
	}
	if ch := changes(t, a, b); len(ch) != 0 {
		t.Fatalf("changes %v after all was reported", ch)
	}
}

// run runs p's renewals until the end of the test.
func run(t *testing.T, p *Presence) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go p.Run(ctx)
}

func TestPresenceOpenOnAnotherNodeKeepsPresent(t *testing.T) {
	a, b := twoPresences(t)
	run(t, b)
	ctx := context.Background()
	closeA, _ := a.Connect(ctx, "u")
	closeB, _ := b.Connect(ctx, "u")
	changes(t, a, b)
	closeA()
	time.Sleep(testGrace + 200*time.Millisecond)
	if !isPresent(t, a, "u") {
		t.Fatal("absent while node b has a stream open")
	}
	if ch := changes(t, a, b); len(ch) != 0 {
		t.Fatalf("changes %v while still present", ch)
	}
	closeB()
}

func TestPresenceReconnectWithinGraceChangesNothing(t *testing.T) {
	a, b := twoPresences(t)
	run(t, b)
	ctx := context.Background()
	c, _ := a.Connect(ctx, "u")
	changes(t, a, b)
	c()
	time.Sleep(testGrace / 3)
	c2, _ := b.Connect(ctx, "u") // the client came back on another node
	defer c2()
	time.Sleep(testGrace)
	if ch := changes(t, a, b); len(ch) != 0 {
		t.Fatalf("changes %v, want none", ch)
	}
	if !isPresent(t, a, "u") {
		t.Fatal("absent with a stream open on node b")
	}
}

func TestPresenceRefreshAndDeadNode(t *testing.T) {
	a, b := twoPresences(t)
	ctx := context.Background()
	runA, stopA := context.WithCancel(ctx)
	defer stopA()
	go a.Run(runA)
	if _, err := a.Connect(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	changes(t, a, b)
	// Renewed while node a runs: still present well past one TTL.
	time.Sleep(testTTL + 300*time.Millisecond)
	if !isPresent(t, b, "u") {
		t.Fatal("an open stream was forgotten: its entry is not renewed")
	}
	if ch := changes(t, a, b); len(ch) != 0 {
		t.Fatalf("changes %v while present", ch)
	}
	// Node a dies (its stream never closes): it is forgotten within TTL.
	stopA()
	stoppedAt := time.Now()
	eventually(t, 2*testTTL, "a dead node's member still present", func() bool {
		return !isPresent(t, b, "u")
	})
	t.Logf("forgotten %v after the node's last renewal", time.Since(stoppedAt))
	if ch := changes(t, b); !reflect.DeepEqual(ch, map[string]bool{"u": false}) {
		t.Fatalf("changes %v, want u absent", ch)
	}
}

func TestPresenceManyUsers(t *testing.T) {
	a, b := twoPresences(t)
	ctx := context.Background()
	ids := make([]string, 1200) // more than one chunk
	for i := range ids {
		ids[i] = "user-" + string(rune('a'+i%26)) + time.Duration(i).String()
		if i%2 == 0 {
			if _, err := a.Connect(ctx, ids[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	m, err := b.Present(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 600 {
		t.Fatalf("%d present, want 600", len(m))
	}
	a.renew(ctx) // renews every user in chunks
	if ch := changes(t, a, b); len(ch) != 600 {
		t.Fatalf("%d changes, want 600", len(ch))
	}
}

func TestPresenceDegraded(t *testing.T) {
	log, logs := newLogger()
	p := NewPresence(deadClient(t), PresenceOptions{Prefix: testPrefix(t), Grace: testGrace, Logger: log, ProbeInterval: 5 * time.Millisecond})
	ctx := context.Background()
	closeU, err := p.Connect(ctx, "u")
	if err != nil {
		t.Fatalf("Connect failed with Redis down: %v", err)
	}
	if !isPresent(t, p, "u") {
		t.Fatal("degraded Present does not see this node's stream")
	}
	if isPresent(t, p, "v") {
		t.Fatal("degraded Present sees a member without streams")
	}
	closeU()
	time.Sleep(10 * time.Millisecond)
	if !isPresent(t, p, "u") {
		t.Fatal("degraded Present forgets the grace")
	}
	if _, err := p.Changes(ctx); err == nil {
		t.Fatal("Changes succeeded with Redis down")
	}
	if n := logs.count("degraded"); n != 1 {
		t.Fatalf("logged degraded %d times, want once:\n%s", n, logs)
	}
}

func TestPresenceRecoversAfterOutage(t *testing.T) {
	client, dialer := flakyClient(t)
	log, logs := newLogger()
	prefix := testPrefix(t)
	opts := PresenceOptions{Prefix: prefix, Grace: testGrace, TTL: testTTL, Refresh: testRefresh,
		Logger: log, ProbeInterval: 10 * time.Millisecond}
	a := NewPresence(client, opts)
	b := NewPresence(newClient(t, ""), opts)
	ctx := context.Background()
	run, stop := context.WithCancel(ctx)
	defer stop()
	go a.Run(run)
	dialer.setDown(true)
	if _, err := a.Connect(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if isPresent(t, b, "u") {
		t.Fatal("a stream that never reached Redis is seen from another node")
	}
	dialer.setDown(false)
	// Run writes the entry that the outage kept back, and the change is
	// announced.
	eventually(t, 2*time.Second, "the stream opened during the outage never reached Redis", func() bool {
		return isPresent(t, b, "u")
	})
	if ch := changes(t, b); !reflect.DeepEqual(ch, map[string]bool{"u": true}) {
		t.Fatalf("changes %v, want u present", ch)
	}
	if logs.count("degraded") != 1 || logs.count("reachable again") != 1 {
		t.Fatalf("want one degraded and one recovered notice:\n%s", logs)
	}
}
