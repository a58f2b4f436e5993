package storecache_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlite"
	"github.com/carillon-chat/carillon/storecache"
)

// TestTouchUpdatesCachedWebhook checks that a webhook served from the cache
// shows the last-used time written after it was cached, within the lag the
// API allows rather than the cache's lifetime.
func TestTouchUpdatesCachedWebhook(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := storecache.New(db, storecache.Config{WebhookTTL: time.Hour})

	now := time.Now().UTC()
	user := &carillon.User{UserID: uuid.NewString(), Email: "a@example.test", Alias: "a", FullName: "A", Active: true, CreatedAt: now}
	room := &carillon.Room{RoomID: uuid.NewString(), Name: "Ops", CreatedBy: user.UserID, CreatedAt: now}
	hook := &carillon.Webhook{WebhookID: uuid.NewString(), RoomID: room.RoomID, Name: "CI", TokenHash: []byte("h"), TokenSeal: []byte("s"), CreatedAt: now}
	if err := store.CreateUser(ctx, user, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateWebhook(ctx, hook, user.UserID); err != nil {
		t.Fatal(err)
	}
	if w, err := store.Webhook(ctx, hook.WebhookID); err != nil || w.LastUsedAt != nil {
		t.Fatalf("new webhook: %+v, %v; want no last-used time", w, err)
	}
	used := now.Add(1500 * time.Microsecond)
	for _, at := range []time.Time{used, used.Add(-time.Second)} { // an older time does not move it back
		if err := store.TouchWebhooks(ctx, map[string]time.Time{hook.WebhookID: at}); err != nil {
			t.Fatal(err)
		}
		w, err := store.Webhook(ctx, hook.WebhookID)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := db.Webhook(ctx, hook.WebhookID)
		if err != nil {
			t.Fatal(err)
		}
		if w.LastUsedAt == nil || stored.LastUsedAt == nil || !w.LastUsedAt.Equal(*stored.LastUsedAt) {
			t.Fatalf("after touching at %v: cached last-used %v, stored %v; want the stored time", at, w.LastUsedAt, stored.LastUsedAt)
		}
	}
}

// countingTokens counts the store's token lookups, and can hold one up.
type countingTokens struct {
	*sqlite.DB
	lookups int
	hold    chan struct{} // when set, a lookup waits for it after reading
	read    chan struct{} // closed by a held lookup once it has read
}

func (c *countingTokens) UserByAPIToken(ctx context.Context, tokenHash []byte) (*carillon.User, error) {
	c.lookups++
	u, err := c.DB.UserByAPIToken(ctx, tokenHash)
	if c.hold != nil {
		close(c.read)
		<-c.hold
	}
	return u, err
}

func TestUserByAPITokenCached(t *testing.T) {
	ctx := t.Context()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	counting := &countingTokens{DB: db}
	store := storecache.New(counting, storecache.Config{TokenTTL: time.Minute, Now: clock})
	token := []byte("token hash of ann")
	ann := &carillon.User{UserID: uuid.NewString(), Email: "ann@example.test", Alias: "ann", FullName: "Ann", Active: true, CreatedAt: now}
	if err := store.CreateUser(ctx, ann, "", token); err != nil {
		t.Fatal(err)
	}
	lookup := func(what string, wantName string, wantLookups int) {
		t.Helper()
		u, err := store.UserByAPIToken(ctx, token)
		switch {
		case wantName == "" && carillon.ErrorCode(err) != carillon.ENotFound:
			t.Fatalf("%s: %+v, %v; want ENotFound", what, u, err)
		case wantName != "" && (err != nil || u.FullName != wantName):
			t.Fatalf("%s: %+v, %v; want %s", what, u, err, wantName)
		case counting.lookups != wantLookups:
			t.Fatalf("%s: %d store lookups in all, want %d", what, counting.lookups, wantLookups)
		}
	}

	lookup("first lookup", "Ann", 1)
	lookup("second lookup", "Ann", 1)
	now = now.Add(time.Minute)
	lookup("lookup after the TTL", "Ann", 2)

	// A change of the user is seen at once.
	name := "Ann Lee"
	if _, err := store.UpdateUser(ctx, ann.UserID, carillon.UserUpdate{FullName: &name}); err != nil {
		t.Fatal(err)
	}
	lookup("lookup after a rename", "Ann Lee", 3)

	// A lookup that read the user before a deactivation is not cached.
	counting.hold, counting.read = make(chan struct{}), make(chan struct{})
	now = now.Add(time.Minute)
	done := make(chan struct{})
	go func() {
		defer close(done)
		store.UserByAPIToken(ctx, token)
	}()
	<-counting.read
	inactive := false
	if _, err := store.UpdateUser(ctx, ann.UserID, carillon.UserUpdate{Active: &inactive}); err != nil {
		t.Fatal(err)
	}
	close(counting.hold)
	<-done
	counting.hold = nil
	lookup("lookup after a deactivation that raced a lookup", "", 5)
}
