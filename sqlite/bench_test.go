package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlite"
)

// benchRoom opens a store with one room and one webhook.
func benchRoom(b *testing.B) (*sqlite.DB, *carillon.Webhook) {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	now := time.Now()
	u := &carillon.User{UserID: uuid.NewString(), Email: "a@example.com", Alias: "a", FullName: "A", Active: true, CreatedAt: now}
	if err := db.CreateUser(ctx, u, "", nil); err != nil {
		b.Fatal(err)
	}
	room := &carillon.Room{RoomID: uuid.NewString(), Name: "Bench", CreatedBy: u.UserID, CreatedAt: now}
	if err := db.CreateRoom(ctx, room); err != nil {
		b.Fatal(err)
	}
	w := &carillon.Webhook{WebhookID: uuid.NewString(), RoomID: room.RoomID, Name: "W", TokenHash: []byte("h"), TokenSeal: []byte("s"), CreatedAt: now}
	if err := db.CreateWebhook(ctx, w, u.UserID); err != nil {
		b.Fatal(err)
	}
	return db, w
}

func benchBatch(w *carillon.Webhook, n int) []*carillon.Append {
	batch := make([]*carillon.Append, n)
	for i := range batch {
		batch[i] = &carillon.Append{WebhookTokenHash: w.TokenHash, Message: &carillon.Message{
			MessageID: uuid.NewString(), RoomID: w.RoomID, Content: "hello", Format: carillon.FormatPlain, HTML: "hello",
			SenderType: carillon.MemberTypeWebhook, SenderID: w.WebhookID, SenderName: "W", DisplayName: "W (Webhook)",
			CreatedAt: time.Now(),
		}}
	}
	return batch
}

// BenchmarkAppendMessages measures durable commits (fsync each) of batches
// of messages; ns/op is per message.
func BenchmarkAppendMessages(b *testing.B) {
	for _, size := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db, w := benchRoom(b)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i += size {
				if err := db.AppendMessages(ctx, benchBatch(w, size)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMessagesPage measures reading a 50-message page, newest first,
// from a room of 100,000 messages at a random depth.
func BenchmarkMessagesPage(b *testing.B) {
	db, w := benchRoom(b)
	ctx := context.Background()
	const total = 100_000
	for i := 0; i < total; i += 1000 {
		if err := db.AppendMessages(ctx, benchBatch(w, 1000)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		after := int64(total - (i*7919)%total)
		msgs, err := db.Messages(ctx, w.RoomID, carillon.MessageQuery{After: after, Limit: 51})
		if err != nil || len(msgs) == 0 {
			b.Fatal(err, len(msgs))
		}
	}
}
