package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlite"
)

// benchRoom opens a store with one room and one webhook.
func benchRoom(b *testing.B) (*sqlite.DB, *carillon.Webhook) {
	b.Helper()
	db, rooms := benchRooms(b, 1)
	room := rooms[0]
	w := &carillon.Webhook{WebhookID: uuid.NewString(), RoomID: room.RoomID, Name: "W", TokenHash: []byte("h"), TokenSeal: []byte("s"), CreatedAt: room.CreatedAt}
	if err := db.CreateWebhook(context.Background(), w, room.CreatedBy); err != nil {
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
	benchAppend(b, (*sqlite.DB).AppendMessages)
}

// BenchmarkAppendMessagesUnsynced measures the commits of the ingest
// writer, whose fsync runs beside it; ns/op is per message. The gap
// between batch sizes is the fixed cost of a commit (docs/performance.md).
func BenchmarkAppendMessagesUnsynced(b *testing.B) {
	benchAppend(b, (*sqlite.DB).AppendMessagesUnsynced)
}

func benchAppend(b *testing.B, appendBatch func(*sqlite.DB, context.Context, []*carillon.Append) error) {
	for _, size := range []int{1, 4, 16, 128} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			db, w := benchRoom(b)
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i += size {
				if err := appendBatch(db, ctx, benchBatch(w, size)); err != nil {
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

// BenchmarkWALFramesPerMessage reports the pages (WAL frames) a commit
// writes per message, the write amplification that bounds ingest on a
// busy disk (docs/performance.md): messages spread at random over 500
// rooms already holding 20,000 messages, each mentioning the room's one
// member (one notification, as the Chime sample's @All does), in batches
// of 1 to 64. ns/op is per batch, fsync included.
func BenchmarkWALFramesPerMessage(b *testing.B) {
	for _, size := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			ctx := context.Background()
			db, rooms := benchRooms(b, 500)
			rng := rand.New(rand.NewPCG(1, 2))
			mentioning := func(n int) []*carillon.Append {
				batch := make([]*carillon.Append, n)
				for i := range batch {
					room := rooms[rng.IntN(len(rooms))]
					batch[i] = &carillon.Append{
						Message: &carillon.Message{
							MessageID: uuid.NewString(), RoomID: room.RoomID, Content: "@All deploy finished", Format: carillon.FormatMarkdown,
							HTML: "<p>@All deploy finished</p>", SenderType: carillon.MemberTypeWebhook, SenderID: uuid.NewString(),
							SenderName: "CI", DisplayName: "CI (Webhook)", Mentions: carillon.Mentions{All: true}, CreatedAt: time.Now(),
						},
						Notifications: []*carillon.Notification{{NotificationID: uuid.NewString(), UserID: room.CreatedBy, Reason: "All"}},
					}
				}
				return batch
			}
			for range 40 {
				if err := db.AppendMessages(ctx, mentioning(500)); err != nil {
					b.Fatal(err)
				}
			}
			release, err := sqlite.HoldWALSnapshot(ctx, db)
			if err != nil {
				b.Fatal(err)
			}
			defer release()
			before, err := sqlite.WALFrames(db)
			if err != nil {
				b.Fatal(err)
			}
			batches := 0
			for b.Loop() {
				if err := db.AppendMessages(ctx, mentioning(size)); err != nil {
					b.Fatal(err)
				}
				batches++
			}
			after, err := sqlite.WALFrames(db)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(after-before)/float64(batches*size), "frames/msg")
		})
	}
}

// benchRooms opens a store with n rooms, each with its creator as the one
// member.
func benchRooms(b *testing.B, n int) (*sqlite.DB, []*carillon.Room) {
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
	rooms := make([]*carillon.Room, n)
	for i := range rooms {
		rooms[i] = &carillon.Room{RoomID: uuid.NewString(), Name: fmt.Sprintf("Room %d", i), CreatedBy: u.UserID, CreatedAt: now}
		if err := db.CreateRoom(ctx, rooms[i]); err != nil {
			b.Fatal(err)
		}
	}
	return db, rooms
}
