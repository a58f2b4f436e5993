package redisstore

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carillon-chat/carillon"
)

// newBroker returns a healthy Broker on its own client (named name, when
// set), closed at the end of the test.
func newBroker(t *testing.T, client *redis.Client, channel string, buffer int) *Broker {
	t.Helper()
	log, _ := newLogger()
	b := NewBroker(client, BrokerOptions{Channel: channel, Buffer: buffer, Logger: log,
		HealthCheck: time.Second})
	t.Cleanup(b.Close)
	eventually(t, 3*time.Second, "subscription never confirmed", b.Healthy)
	return b
}

func testChannel(t *testing.T) string { return testPrefix(t) + "events" }

// receive reads one event or fails after a while.
func receive(t *testing.T, ch <-chan *carillon.Event) carillon.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("subscription closed")
		}
		return *ev
	case <-time.After(3 * time.Second):
		t.Fatal("no event within 3 s")
	}
	return carillon.Event{}
}

// waitClosed drains ch until it is closed, failing after d.
func waitClosed(t *testing.T, ch <-chan *carillon.Event, d time.Duration, what string) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("after %v: %s", d, what)
		}
	}
}

func TestBrokerAcrossNodes(t *testing.T) {
	channel := testChannel(t)
	a := newBroker(t, newClient(t, ""), channel, 1024)
	b := newBroker(t, newClient(t, ""), channel, 1024)
	onB, cancelB := b.Subscribe("")
	defer cancelB()
	onA, cancelA := a.Subscribe("")
	defer cancelA()

	want := carillon.Event{Type: carillon.EventMembership, RoomID: "r1", UserIDs: []string{"u1", "u2"},
		Seq: 42, Joined: "u3", Left: "u4", Data: []byte(`{"Action":"Added","x":"\u00e9\n"}`)}
	if err := a.Publish(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, onB); !reflect.DeepEqual(got, want) {
		t.Fatalf("node b got %+v, want %+v", got, want)
	}
	if got := receive(t, onA); !reflect.DeepEqual(got, want) {
		t.Fatalf("node a's own subscriber got %+v, want %+v", got, want)
	}

	batch := carillon.Event{Type: carillon.EventPresence, UserIDs: []string{"u1"},
		Batch: [][]byte{[]byte(`{"MemberId":"u1","Present":true}`), []byte(`{"MemberId":"u2","Present":false}`)}}
	if err := a.Publish(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, onB); !reflect.DeepEqual(got, batch) {
		t.Fatalf("node b got %+v, want the batch %+v", got, batch)
	}
}

func TestBrokerOrderPerPublisher(t *testing.T) {
	channel := testChannel(t)
	a := newBroker(t, newClient(t, ""), channel, 4096)
	b := newBroker(t, newClient(t, ""), channel, 4096)
	c := newBroker(t, newClient(t, ""), channel, 4096)
	sub, cancel := c.Subscribe("")
	defer cancel()
	const n = 300
	var wg sync.WaitGroup
	for _, p := range []struct {
		name string
		b    *Broker
	}{{"a", a}, {"b", b}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(1); i <= n; i++ {
				if err := p.b.Publish(context.Background(), carillon.Event{Type: p.name, Seq: i}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	next := map[string]int64{"a": 1, "b": 1}
	for i := 0; i < 2*n; i++ {
		ev := receive(t, sub)
		if ev.Seq != next[ev.Type] {
			t.Fatalf("from publisher %s got %d, want %d", ev.Type, ev.Seq, next[ev.Type])
		}
		next[ev.Type]++
	}
}

func TestBrokerSlowSubscriberIsDropped(t *testing.T) {
	channel := testChannel(t)
	a := newBroker(t, newClient(t, ""), channel, 2)
	b := newBroker(t, newClient(t, ""), channel, 2)
	slow, _ := b.Subscribe("")
	fast, cancel := b.Subscribe("")
	defer cancel()
	for i := int64(1); i <= 5; i++ {
		a.Publish(context.Background(), carillon.Event{Seq: i})
		if ev := receive(t, fast); ev.Seq != i {
			t.Fatalf("fast subscriber got %d, want %d", ev.Seq, i)
		}
	}
	n := 0
	for range slow {
		n++
	}
	if n != 2 {
		t.Fatalf("slow subscriber got %d events before being dropped, want its buffer of 2", n)
	}
}

func TestBrokerClose(t *testing.T) {
	channel := testChannel(t)
	a := newBroker(t, newClient(t, ""), channel, 8)
	b := newBroker(t, newClient(t, ""), channel, 8)
	onA, _ := a.Subscribe("")
	onB, cancelB := b.Subscribe("")
	defer cancelB()
	a.Close()
	a.Close() // twice is harmless
	waitClosed(t, onA, time.Second, "subscription open after Close")
	late, _ := a.Subscribe("")
	waitClosed(t, late, time.Second, "subscription after Close is open")
	if a.Healthy() {
		t.Fatal("healthy after Close")
	}
	// A node shutting down still publishes what it commits.
	if err := a.Publish(context.Background(), carillon.Event{Seq: 7}); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, onB); ev.Seq != 7 {
		t.Fatalf("got %d, want 7", ev.Seq)
	}
}

// killPubSub kills the pub/sub connection of the clients named name.
func killPubSub(t *testing.T, name string) {
	t.Helper()
	admin := newClient(t, "")
	ctx := context.Background()
	list, err := admin.Do(ctx, "CLIENT", "LIST", "TYPE", "pubsub").Text()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		var id string
		named := false
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if f == "name="+name {
				named = true
			}
		}
		if named && id != "" {
			if err := admin.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	if killed != 1 {
		t.Fatalf("killed %d pub/sub connections named %s, want 1:\n%s", killed, name, list)
	}
}

func TestBrokerDropsSubscribersWhenConnectionKilled(t *testing.T) {
	channel := testChannel(t)
	name := strings.ReplaceAll(strings.TrimSuffix(channel, ":events"), ":", "-") + "-b"
	a := newBroker(t, newClient(t, ""), channel, 8)
	b := newBroker(t, newClient(t, name), channel, 8)
	sub, cancel := b.Subscribe("")
	defer cancel()
	a.Publish(context.Background(), carillon.Event{Seq: 1})
	receive(t, sub)

	killPubSub(t, name)
	// Whatever was published meanwhile is lost for sub: it must be dropped
	// so that its client reconnects and replays from storage.
	waitClosed(t, sub, 3*time.Second, "subscriber kept after its node lost the subscription")

	// The node subscribes again; new subscribers get events again.
	eventually(t, 3*time.Second, "never resubscribed", b.Healthy)
	again, cancel2 := b.Subscribe("")
	defer cancel2()
	a.Publish(context.Background(), carillon.Event{Seq: 2})
	if ev := receive(t, again); ev.Seq != 2 {
		t.Fatalf("got %d, want 2", ev.Seq)
	}
}

func TestBrokerFailedPublishDropsEverySubscriber(t *testing.T) {
	channel := testChannel(t)
	flaky, dialer := flakyClient(t)
	a := newBroker(t, flaky, channel, 8)
	b := newBroker(t, newClient(t, ""), channel, 8)
	onA, _ := a.Subscribe("")
	onB, _ := b.Subscribe("")

	dialer.setDown(true)
	if err := a.Publish(context.Background(), carillon.Event{Seq: 1}); err == nil {
		t.Fatal("Publish succeeded with Redis cut off")
	}
	waitClosed(t, onA, time.Second, "the publishing node kept its subscribers after a lost publish")
	// Node b never saw the event. Once node a reaches Redis again it tells
	// the others, which drop their subscribers too.
	time.Sleep(100 * time.Millisecond)
	select {
	case _, ok := <-onB:
		if !ok {
			t.Fatal("node b dropped its subscribers before hearing of the loss")
		}
	default:
	}
	dialer.setDown(false)
	waitClosed(t, onB, 3*time.Second, "a lost publish went unnoticed on another node")

	eventually(t, 3*time.Second, "node a never resubscribed", a.Healthy)
	onB2, cancel := b.Subscribe("")
	defer cancel()
	if err := a.Publish(context.Background(), carillon.Event{Seq: 2}); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, onB2); ev.Seq != 2 {
		t.Fatalf("got %d, want 2", ev.Seq)
	}
}

func TestBrokerCounterGapDropsSubscribers(t *testing.T) {
	channel := testChannel(t)
	b := newBroker(t, newClient(t, ""), channel, 8)
	sub, _ := b.Subscribe("")
	admin := newClient(t, "")
	publish := func(count int, gap bool) {
		t.Helper()
		msg := fmt.Sprintf(`{"n":"x","c":%d,"g":%v,"e":{"Type":"message","Seq":%d}}`, count, gap, count)
		if err := admin.Publish(context.Background(), channel, msg).Err(); err != nil {
			t.Fatal(err)
		}
	}
	publish(1, false)
	publish(2, false)
	receive(t, sub)
	receive(t, sub)
	admin.Publish(context.Background(), channel, "not json")
	publish(4, false) // 3 was lost
	waitClosed(t, sub, 3*time.Second, "a skipped count went unnoticed")
}

func TestBrokerHealthCheckKeepsAnIdleSubscription(t *testing.T) {
	channel := testChannel(t)
	log, logs := newLogger()
	b := NewBroker(newClient(t, ""), BrokerOptions{Channel: channel, Logger: log, HealthCheck: 200 * time.Millisecond})
	defer b.Close()
	eventually(t, 3*time.Second, "subscription never confirmed", b.Healthy)
	sub, cancel := b.Subscribe("")
	defer cancel()
	time.Sleep(time.Second) // idle: pinged and answered several times
	if !b.Healthy() || logs.count("unreachable") != 0 {
		t.Fatalf("an idle subscription was given up:\n%s", logs)
	}
	if err := b.Publish(context.Background(), carillon.Event{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if ev := receive(t, sub); ev.Seq != 1 {
		t.Fatalf("got %d, want 1", ev.Seq)
	}
}

func TestBrokerGivesUpASilentConnection(t *testing.T) {
	channel := testChannel(t)
	flaky, dialer := flakyClient(t)
	log, logs := newLogger()
	b := NewBroker(flaky, BrokerOptions{Channel: channel, Logger: log, HealthCheck: 200 * time.Millisecond})
	defer b.Close()
	eventually(t, 3*time.Second, "subscription never confirmed", b.Healthy)
	sub, _ := b.Subscribe("")
	dialer.setFrozen(true) // the pongs stop coming
	waitClosed(t, sub, 3*time.Second, "subscriber kept on a connection that stopped answering")
	if b.Healthy() {
		t.Fatal("healthy on a silent connection")
	}
	dialer.setFrozen(false)
	eventually(t, 5*time.Second, "never resubscribed", b.Healthy)
	if logs.count("unreachable") != 1 || logs.count("reachable again") != 1 {
		t.Fatalf("want one degraded and one recovered notice:\n%s", logs)
	}
}

// TestBrokerSignalsStandOutsideTheCount: signals reach every node, and
// neither they nor a signal that never arrived make a receiver see a gap
// in the publishes (which would drop its streams).
func TestBrokerSignalsStandOutsideTheCount(t *testing.T) {
	channel := testChannel(t)
	a := newBroker(t, newClient(t, ""), channel, 1024)
	b := newBroker(t, newClient(t, ""), channel, 1024)
	onB, cancel := b.Subscribe("")
	defer cancel()
	ctx := context.Background()
	first := carillon.Event{Type: carillon.EventMembership, RoomID: "r1", Data: []byte(`{}`)}
	wake := carillon.Event{Type: carillon.EventMessage, RoomID: "r1", Seq: 7}
	if err := a.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	a.pubMu.Lock()
	counted := a.counter
	a.pubMu.Unlock()
	if err := a.Signal(ctx, wake); err != nil {
		t.Fatal(err)
	}
	a.pubMu.Lock()
	if a.counter != counted {
		t.Errorf("a signal took a place in the node's count (%d → %d): losing one would look like a lost event", counted, a.counter)
	}
	a.pubMu.Unlock()
	if err := a.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	for i, want := range []carillon.Event{first, wake, first} {
		if got := receive(t, onB); !reflect.DeepEqual(got, want) {
			t.Fatalf("event %d on node b: %+v, want %+v", i, got, want)
		}
	}
	// The subscription is still open: no gap was seen.
	if err := a.Publish(ctx, first); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, onB); !reflect.DeepEqual(got, first) {
		t.Fatalf("after the signals: %+v", got)
	}
}
