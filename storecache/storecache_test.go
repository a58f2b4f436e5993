package storecache_test

import (
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
