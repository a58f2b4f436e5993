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

// openDB opens a SQLite store of the test's own.
func openDB(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestTouchUpdatesCachedWebhook checks that a webhook served from the cache
// shows the last-used time written after it was cached, within the lag the
// API allows rather than the cache's lifetime.
func TestTouchUpdatesCachedWebhook(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
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

// countingUsers counts the store's lookups of users by token and by
// session, and can hold one up.
type countingUsers struct {
	*sqlite.DB
	lookups int
	hold    chan struct{} // when set, a lookup waits for it after reading
	read    chan struct{} // closed by a held lookup once it has read
}

func (c *countingUsers) UserByAPIToken(ctx context.Context, tokenHash []byte) (*carillon.User, error) {
	c.lookups++
	u, err := c.DB.UserByAPIToken(ctx, tokenHash)
	c.wait()
	return u, err
}

func (c *countingUsers) UserBySession(ctx context.Context, sessionHash []byte, now time.Time) (*carillon.User, error) {
	c.lookups++
	u, err := c.DB.UserBySession(ctx, sessionHash, now)
	c.wait()
	return u, err
}

// expect checks a lookup's answer: the user named wantName, or with none
// the error code missing; and the store lookups made so far.
func (c *countingUsers) expect(t *testing.T, what string, u *carillon.User, err error, missing, wantName string, wantLookups int) {
	t.Helper()
	switch {
	case wantName == "" && carillon.ErrorCode(err) != missing:
		t.Fatalf("%s: %+v, %v; want %s", what, u, err, missing)
	case wantName != "" && (err != nil || u.FullName != wantName):
		t.Fatalf("%s: %+v, %v; want %s", what, u, err, wantName)
	case c.lookups != wantLookups:
		t.Fatalf("%s: %d store lookups in all, want %d", what, c.lookups, wantLookups)
	}
}

func (c *countingUsers) wait() {
	if c.hold != nil {
		close(c.read)
		<-c.hold
	}
}

// holdLookupDuring runs change while a lookup, started first, holds what it
// read from the store.
func (c *countingUsers) holdLookupDuring(t *testing.T, lookup func(), change func() error) {
	t.Helper()
	c.hold, c.read = make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		lookup()
	}()
	<-c.read
	err := change()
	close(c.hold)
	<-done
	c.hold = nil
	if err != nil {
		t.Fatal(err)
	}
}

func TestUserByAPITokenCached(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
	now := time.Now().UTC()
	clock := func() time.Time { return now }
	counting := &countingUsers{DB: db}
	store := storecache.New(counting, storecache.Config{TokenTTL: time.Minute, Now: clock})
	token := []byte("token hash of ann")
	ann := &carillon.User{UserID: uuid.NewString(), Email: "ann@example.test", Alias: "ann", FullName: "Ann", Active: true, CreatedAt: now}
	if err := store.CreateUser(ctx, ann, "", token); err != nil {
		t.Fatal(err)
	}
	lookup := func(what string, wantName string, wantLookups int) {
		t.Helper()
		u, err := store.UserByAPIToken(ctx, token)
		counting.expect(t, what, u, err, carillon.ENotFound, wantName, wantLookups)
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
	now = now.Add(time.Minute)
	inactive := false
	counting.holdLookupDuring(t, func() { store.UserByAPIToken(ctx, token) }, func() error {
		_, err := store.UpdateUser(ctx, ann.UserID, carillon.UserUpdate{Active: &inactive})
		return err
	})
	lookup("lookup after a deactivation that raced a lookup", "", 5)
}

func TestUserBySessionCached(t *testing.T) {
	ctx := t.Context()
	db := openDB(t)
	counting := &countingUsers{DB: db}
	store := storecache.New(counting, storecache.Config{TokenTTL: time.Hour})
	now := time.Now().UTC()
	ann := &carillon.User{UserID: uuid.NewString(), Email: "ann@example.test", Alias: "ann", FullName: "Ann", Active: true, CreatedAt: now}
	if err := store.CreateUser(ctx, ann, "", nil); err != nil {
		t.Fatal(err)
	}
	session := []byte("session hash of ann")
	newSession := func() {
		t.Helper()
		if err := store.CreateSession(ctx, session, ann.UserID, now); err != nil {
			t.Fatal(err)
		}
	}
	lookup := func(what string, wantName string, wantLookups int) {
		t.Helper()
		u, err := store.UserBySession(ctx, session, now)
		counting.expect(t, what, u, err, carillon.EUnauthorized, wantName, wantLookups)
	}

	newSession()
	lookup("first lookup", "Ann", 1)
	now = now.Add(59 * time.Second)
	lookup("lookup within a minute", "Ann", 1)
	// Read again after a minute, whatever the TTL, so that the store marks
	// the session used: it is still live a lifetime after the first use.
	now = now.Add(2 * time.Second)
	lookup("lookup after a minute", "Ann", 2)
	now = now.Add(carillon.SessionTTL - time.Second)
	lookup("lookup a lifetime after the first use", "Ann", 3)
	now = now.Add(carillon.SessionTTL + time.Second)
	lookup("lookup after the session's lifetime", "", 4)

	newSession()
	lookup("lookup of a new session", "Ann", 5)
	if err := store.DeleteSession(ctx, session); err != nil {
		t.Fatal(err)
	}
	lookup("lookup after a logout", "", 6)

	newSession()
	lookup("lookup of another new session", "Ann", 7)
	password := "new password hash"
	if _, err := store.UpdateUser(ctx, ann.UserID, carillon.UserUpdate{PasswordHash: &password}); err != nil {
		t.Fatal(err)
	}
	lookup("lookup after a password change", "", 8)

	// A lookup that read the session before a logout is not cached.
	newSession()
	counting.holdLookupDuring(t, func() { store.UserBySession(ctx, session, now) }, func() error {
		return store.DeleteSession(ctx, session)
	})
	lookup("lookup after a logout that raced a lookup", "", 10)
}
