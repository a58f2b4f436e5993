package ingest_test

import (
	"errors"
	"fmt"
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

// webhookStore opens a SQLite store holding one room with one webhook.
func webhookStore(t *testing.T) (*sqlite.DB, *carillon.Room, *carillon.Webhook) {
	t.Helper()
	ctx := t.Context()
	db, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
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
	return db, room, hook
}

func webhookPost(room *carillon.Room, hook *carillon.Webhook, content string) ingest.Post {
	return ingest.Post{RoomID: room.RoomID, SenderType: carillon.MemberTypeWebhook,
		SenderID: hook.WebhookID, SenderName: hook.Name, Content: content, WebhookTokenHash: hook.TokenHash}
}

// A webhook's LastUsedTimestamp follows its durable messages only: a post
// answered 503 because its sync failed leaves it as it was.
func TestWebhookLastUsedFollowsDurableMessagesOnly(t *testing.T) {
	for _, tc := range []struct {
		name      string
		syncFails bool
	}{{"synced", false}, {"sync failed", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			db, room, hook := webhookStore(t)
			var store carillon.Store = db
			if tc.syncFails {
				store = failingSync{db}
			}
			limiter := ratelimit.New(100, 100, time.Now)
			svc := ingest.New(store, fanout.New(16), presence.New(time.Second, time.Now), limiter, limiter, ingest.Config{})
			go svc.Run(ctx)
			_, err := svc.Submit(ctx, webhookPost(room, hook, "build 42 passed"))
			if tc.syncFails && carillon.ErrorCode(err) != carillon.EServiceUnavailable {
				t.Fatalf("post whose sync failed: %v; want ServiceUnavailable", err)
			} else if !tc.syncFails && err != nil {
				t.Fatalf("post: %v", err)
			}
			if _, shown := svc.LastUsed(hook.WebhookID); shown == tc.syncFails {
				t.Errorf("unwritten last-used time shown: %v, want %v", shown, !tc.syncFails)
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

// Last-used times wait TouchDelay to be written, and are shown from memory
// meanwhile: the newest use, at once.
func TestWebhookLastUsedShownBeforeWritten(t *testing.T) {
	ctx := t.Context()
	db, room, hook := webhookStore(t)
	limiter := ratelimit.New(100, 100, time.Now)
	svc := ingest.New(db, fanout.New(16), presence.New(time.Second, time.Now), limiter, limiter,
		ingest.Config{TouchDelay: time.Hour, TouchInterval: time.Millisecond})
	go svc.Run(ctx)
	defer svc.Close()
	for i := range 3 {
		if _, err := svc.Submit(ctx, webhookPost(room, hook, fmt.Sprintf("build %d passed", i))); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := db.Messages(ctx, room.RoomID, carillon.MessageQuery{Limit: 1})
	if err != nil || len(msgs) != 1 {
		t.Fatal(msgs, err)
	}
	newest := msgs[0].CreatedAt
	time.Sleep(20 * time.Millisecond) // twenty flushes, none due
	if got, ok := svc.LastUsed(hook.WebhookID); !ok || got.UnixMilli() != newest.UnixMilli() {
		t.Errorf("LastUsed = %v, %v; want the newest message's time %v", got, ok, newest)
	}
	stored, err := db.Webhook(ctx, hook.WebhookID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.LastUsedAt != nil {
		t.Errorf("last-used time written after %v, before its hour's delay", stored.LastUsedAt)
	}
}
