package ingest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/fanout"
	"github.com/carillon-chat/carillon/ingest"
	"github.com/carillon-chat/carillon/presence"
	"github.com/carillon-chat/carillon/ratelimit"
	"github.com/carillon-chat/carillon/sqlite"
)

// failingSync is the SQLite store with every WAL sync failing: commits
// succeed, but nothing is ever known to be on disk.
type failingSync struct{ *sqlite.DB }

func (failingSync) SyncCommitted() error { return errors.New("injected sync failure") }

// A webhook's LastUsedTimestamp follows its durable messages only: a post
// answered 503 because its sync failed leaves it as it was.
func TestWebhookLastUsedFollowsDurableMessagesOnly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		syncFails bool
	}{{"synced", false}, {"sync failed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db, err := sqlite.Open(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			now := time.Now()
			u := &carillon.User{UserID: uuid.NewString(), Email: "a@example.com", Alias: "a", FullName: "A", Active: true, CreatedAt: now}
			room := &carillon.Room{RoomID: uuid.NewString(), Name: "CI", CreatedBy: u.UserID, CreatedAt: now}
			hook := &carillon.Webhook{WebhookID: uuid.NewString(), RoomID: room.RoomID, Name: "Builds",
				TokenHash: []byte("hash"), TokenSeal: []byte("seal"), CreatedAt: now}
			if err := db.CreateUser(ctx, u, "", nil); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateRoom(ctx, room); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateWebhook(ctx, hook, u.UserID); err != nil {
				t.Fatal(err)
			}

			var store carillon.Store = db
			if tc.syncFails {
				store = failingSync{db}
			}
			limiter := ratelimit.New(100, 100, time.Now)
			svc := ingest.New(store, fanout.New(16), presence.New(time.Second, time.Now), limiter, limiter, ingest.Config{})
			go svc.Run(ctx)
			_, err = svc.Submit(ctx, ingest.Post{RoomID: room.RoomID, SenderType: carillon.MemberTypeWebhook,
				SenderID: hook.WebhookID, SenderName: hook.Name, Content: "build 42 passed", WebhookTokenHash: hook.TokenHash})
			if tc.syncFails && carillon.ErrorCode(err) != carillon.EServiceUnavailable {
				t.Fatalf("post whose sync failed: %v; want ServiceUnavailable", err)
			} else if !tc.syncFails && err != nil {
				t.Fatalf("post: %v", err)
			}
			svc.Close() // writes every pending last-used time

			got, err := db.Webhook(ctx, hook.WebhookID)
			if err != nil {
				t.Fatal(err)
			}
			if tc.syncFails && got.LastUsedAt != nil {
				t.Errorf("LastUsedTimestamp %v recorded for a message that may be lost", got.LastUsedAt)
			} else if !tc.syncFails && got.LastUsedAt == nil {
				t.Error("LastUsedTimestamp not recorded for a durable message")
			}
		})
	}
}
