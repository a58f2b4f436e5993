package presence

import (
	"context"
	"reflect"
	"testing"
	"time"
)

func TestPresentWhileStreamOpenAndDuringGrace(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(30*time.Second, func() time.Time { return now })
	ctx := context.Background()
	present := func(id string) bool {
		p, _ := tr.Present(ctx, []string{id})
		return p[id]
	}
	if present("u") {
		t.Fatal("present before any stream")
	}
	close1, _ := tr.Connect(ctx, "u")
	close2, _ := tr.Connect(ctx, "u")
	if ch, _ := tr.Changes(ctx); !reflect.DeepEqual(ch, map[string]bool{"u": true}) {
		t.Fatalf("changes %v", ch)
	}
	close1()
	now = now.Add(time.Minute)
	if !present("u") {
		t.Fatal("absent while a second stream is open")
	}
	close2()
	close2() // closing twice changes nothing
	now = now.Add(29 * time.Second)
	if !present("u") {
		t.Fatal("absent within the grace period")
	}
	if ch, _ := tr.Changes(ctx); len(ch) != 0 {
		t.Fatalf("changes during grace: %v", ch)
	}
	now = now.Add(2 * time.Second)
	if present("u") {
		t.Fatal("present after the grace period")
	}
	if ch, _ := tr.Changes(ctx); !reflect.DeepEqual(ch, map[string]bool{"u": false}) {
		t.Fatalf("changes %v", ch)
	}
}

func TestReconnectWithinGraceChangesNothing(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(30*time.Second, func() time.Time { return now })
	ctx := context.Background()
	c, _ := tr.Connect(ctx, "u")
	tr.Changes(ctx)
	c()
	now = now.Add(5 * time.Second)
	tr.Connect(ctx, "u")
	if ch, _ := tr.Changes(ctx); len(ch) != 0 {
		t.Fatalf("changes %v, want none", ch)
	}
}
