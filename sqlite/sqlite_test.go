package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlite"
	"github.com/carillon-chat/carillon/storetest"
)

// TestStore runs the storage contract suite, each subtest on a new database.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) carillon.Store {
		return open(t, t.TempDir())
	})
}

// open opens the database in dir and closes it when the test ends.
func open(t *testing.T, dir string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rawConn opens a connection of its own to the database file in dir,
// outside the store.
func rawConn(t *testing.T, dir string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// roomWithMember creates a user and a room it belongs to, and returns a
// function that makes a message of that user with the given content.
func roomWithMember(t *testing.T, db *sqlite.DB) (roomID string, msg func(content string) *carillon.Append) {
	t.Helper()
	ctx := t.Context()
	now := time.Now().UTC()
	user := &carillon.User{UserID: uuid.NewString(), Email: "a@example.test", Alias: "a", FullName: "A", Active: true, CreatedAt: now}
	room := &carillon.Room{RoomID: uuid.NewString(), Name: "Ops", CreatedBy: user.UserID, CreatedAt: now}
	if err := db.CreateUser(ctx, user, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	return room.RoomID, func(content string) *carillon.Append {
		return &carillon.Append{RequireMember: true, Message: &carillon.Message{
			MessageID: uuid.NewString(), RoomID: room.RoomID, Content: content, Format: carillon.FormatPlain, HTML: "<p>" + content + "</p>",
			SenderType: carillon.MemberTypeUser, SenderID: user.UserID, SenderName: "A", DisplayName: "A", CreatedAt: time.Now().UTC(),
		}}
	}
}

// TestReopen checks that data survives closing and opening the directory
// again, and that CreatedAt stays monotonic across the restart: the store
// learns the newest stored time at open, so a clock that is behind after a
// restart does not make the order of times go back.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	user := &carillon.User{UserID: uuid.NewString(), Email: "a@example.test", Alias: "a", FullName: "A", Active: true, CreatedAt: now}
	room := &carillon.Room{RoomID: uuid.NewString(), Name: "Ops", CreatedBy: user.UserID, CreatedAt: now}
	msg := func(at time.Time) *carillon.Append {
		return &carillon.Append{RequireMember: true, Message: &carillon.Message{
			MessageID: uuid.NewString(), RoomID: room.RoomID, Content: "x", Format: carillon.FormatPlain, HTML: "<p>x</p>",
			SenderType: carillon.MemberTypeUser, SenderID: user.UserID, SenderName: "A", DisplayName: "A", CreatedAt: at,
		}}
	}
	newest := now.Add(time.Hour)

	db := open(t, dir)
	if err := db.CreateUser(ctx, user, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := db.SetMeta(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	first := msg(newest)
	if err := db.AppendMessages(ctx, []*carillon.Append{first}); err != nil || first.Err != nil {
		t.Fatalf("AppendMessages: %v, %v", err, first.Err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = open(t, dir)
	if u, err := db.User(ctx, user.UserID); err != nil || u.Email != user.Email {
		t.Errorf("User after reopening: %+v, %v", u, err)
	}
	if v, err := db.Meta(ctx, "k"); err != nil || v != "v" {
		t.Errorf("Meta after reopening: %q, %v", v, err)
	}
	// The clock after the restart is an hour behind the newest message.
	second := msg(now)
	if err := db.AppendMessages(ctx, []*carillon.Append{second}); err != nil || second.Err != nil {
		t.Fatalf("AppendMessages after reopening: %v, %v", err, second.Err)
	}
	msgs, err := db.Messages(ctx, room.RoomID, carillon.MessageQuery{Ascending: true, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].MessageID != first.Message.MessageID || msgs[1].MessageID != second.Message.MessageID {
		t.Fatalf("Messages after reopening = %+v", msgs)
	}
	if msgs[1].Seq <= msgs[0].Seq {
		t.Errorf("Seq after reopening %d, not above %d", msgs[1].Seq, msgs[0].Seq)
	}
	if !msgs[1].CreatedAt.Equal(newest) || !second.Message.CreatedAt.Equal(newest) {
		t.Errorf("CreatedAt after reopening = %v (caller's copy %v), want the newest before the restart, %v",
			msgs[1].CreatedAt, second.Message.CreatedAt, newest)
	}
}

// TestPragmas checks the durability settings: WAL (recorded in the file),
// synchronous=FULL and foreign keys on every connection of the store.
func TestPragmas(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := open(t, dir)

	var mode string
	if err := rawConn(t, dir).QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode of the file = %q, want wal", mode)
	}
	for _, c := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
	} {
		w, r, err := sqlite.Pragmas(ctx, db, c.pragma)
		if err != nil {
			t.Fatalf("PRAGMA %s: %v", c.pragma, err)
		}
		if w != c.want || r != c.want {
			t.Errorf("PRAGMA %s = %q on the writer, %q on a reader, want %q", c.pragma, w, r, c.want)
		}
	}

	// Foreign keys at work: a membership of a room that does not exist is
	// refused.
	now := time.Now()
	u := &carillon.User{UserID: uuid.NewString(), Email: "a@example.test", Alias: "a", FullName: "A", Active: true, CreatedAt: now}
	if err := db.CreateUser(ctx, u, "", nil); err != nil {
		t.Fatal(err)
	}
	m := &carillon.Membership{RoomID: uuid.NewString(), UserID: u.UserID, Role: carillon.RoleMember, CreatedAt: now}
	if err := db.AddMember(ctx, m, u.UserID); err == nil {
		t.Errorf("AddMember to a room that does not exist succeeded")
	}
}

// TestLockedIsUnavailable checks that a database that stays locked beyond
// the busy timeout is reported as unavailable (the webhook answers 503 with
// Retry-After), not as an internal error; that nothing of the batch is
// stored; and that readers are not blocked meanwhile (WAL).
func TestLockedIsUnavailable(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := open(t, dir)
	roomID, msg := roomWithMember(t, db)

	raw := rawConn(t, dir)
	conn, err := raw.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")

	if r, err := db.Room(ctx, roomID); err != nil || r.Name != "Ops" {
		t.Errorf("Room while another connection holds the write lock: %+v, %v", r, err)
	}
	err = db.AppendMessages(ctx, []*carillon.Append{msg("x")})
	if !errors.Is(err, carillon.ErrUnavailable) || carillon.ErrorCode(err) != carillon.EServiceUnavailable {
		t.Errorf("AppendMessages on a locked database: %v (code %s), want an error wrapping ErrUnavailable", err, carillon.ErrorCode(err))
	}
	conn.ExecContext(ctx, "ROLLBACK")
	msgs, err := db.Messages(ctx, roomID, carillon.MessageQuery{Ascending: true, Limit: 10})
	if err != nil || len(msgs) != 0 {
		t.Errorf("Messages after a failed batch: %d, %v; want none", len(msgs), err)
	}
}
