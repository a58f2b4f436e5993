package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlite"
)

// TestAppendMessagesUnsynced checks the deferred-sync write path: the batch
// is stored but hidden from reads until SyncCommitted, which makes it
// visible; every other write still commits with synchronous=FULL; and the
// messages are there after the database is reopened.
func TestAppendMessagesUnsynced(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := open(t, dir)
	roomID, msg := roomWithMember(t, db)

	// A second member, mentioned in the second message, sees both as unread.
	reader := &carillon.User{UserID: uuid.NewString(), Email: "b@example.test", Alias: "b", FullName: "B", Active: true, CreatedAt: time.Now()}
	if err := db.CreateUser(ctx, reader, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := db.AddMember(ctx, &carillon.Membership{RoomID: roomID, UserID: reader.UserID, Role: carillon.RoleMember, CreatedAt: time.Now()}, reader.UserID); err != nil {
		t.Fatal(err)
	}

	var deferred carillon.DeferredSyncAppender = db
	batch := []*carillon.Append{msg("one"), msg("two")}
	batch[1].Notifications = []*carillon.Notification{{NotificationID: uuid.NewString(), UserID: reader.UserID,
		MessageID: batch[1].Message.MessageID, RoomID: roomID, Reason: "Direct", CreatedAt: time.Now()}}
	if err := deferred.AppendMessagesUnsynced(ctx, batch); err != nil {
		t.Fatalf("AppendMessagesUnsynced: %v", err)
	}
	for _, a := range batch {
		if a.Err != nil || a.Message.Seq == 0 {
			t.Fatalf("entry %q: Err %v, Seq %d", a.Message.Content, a.Err, a.Message.Seq)
		}
	}
	// visible checks what readers see: messages messages, of which mentions
	// mention the reader.
	visible := func(when string, messages, mentions int) {
		t.Helper()
		for _, q := range []carillon.MessageQuery{{Ascending: true, Limit: 10}, {Limit: 10}} {
			if got, err := db.Messages(ctx, roomID, q); err != nil || len(got) != messages {
				t.Errorf("Messages %+v %s = %d, %v; want %d", q, when, len(got), err, messages)
			}
		}
		if got, err := db.Replay(ctx, "", carillon.EventPosition{}, 10); err != nil || len(got) != messages+mentions {
			t.Errorf("Replay %s = %d items, %v; want %d messages and %d notifications", when, len(got), err, messages, mentions)
		}
		rooms, err := db.RoomsOfUser(ctx, reader.UserID)
		if err != nil || len(rooms) != 1 || rooms[0].UnreadCount != messages || rooms[0].MentionCount != mentions {
			t.Errorf("RoomsOfUser %s = %+v, %v; want %d unread, %d mentions", when, rooms, err, messages, mentions)
		}
	}
	visible("before the sync", 0, 0)
	if err := deferred.SyncCommitted(); err != nil {
		t.Fatalf("SyncCommitted: %v", err)
	}
	visible("after the sync", 2, 1)
	if w, _, err := sqlite.Pragmas(ctx, db, "synchronous"); err != nil || w != "2" {
		t.Errorf("writer's synchronous after an unsynced batch = %q, %v; want 2 (FULL) for every other write", w, err)
	}
	// A condition that fails still fails on this path.
	gone := msg("gone")
	gone.Message.SenderID = uuid.NewString()
	if err := deferred.AppendMessagesUnsynced(ctx, []*carillon.Append{gone}); err != nil || carillon.ErrorCode(gone.Err) != carillon.ENotFound {
		t.Errorf("unsynced append by a non-member: %v, entry %v; want ENotFound", err, gone.Err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, dir)
	got, err := db.Messages(ctx, roomID, carillon.MessageQuery{Ascending: true, Limit: 10})
	if err != nil || len(got) != 2 || got[0].MessageID != batch[0].Message.MessageID || got[1].MessageID != batch[1].Message.MessageID {
		t.Fatalf("Messages after reopening = %+v, %v", got, err)
	}
}

// TestCheckpointerBoundsWAL writes far more than the WAL limit through the
// deferred-sync path, where the writer never checkpoints, and checks that
// the checkpointer kept the WAL file small: it makes the WAL start over.
func TestCheckpointerBoundsWAL(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := open(t, dir)
	const limit = 64 // frames: 256 KiB
	sqlite.SetWALRestartFrames(db, limit)
	// Passes every 10 ms, not 200: on a fast disk the writes below take
	// well under a second, and the WAL file keeps the largest size it
	// reached, what they wrote between two rewinds.
	sqlite.SetCheckpointInterval(db, 10*time.Millisecond)
	roomID, msg := roomWithMember(t, db)

	content := strings.Repeat("x", 2000)
	const batches, perBatch = 200, 30 // 12 MB of content
	for range batches {
		batch := make([]*carillon.Append, perBatch)
		for i := range batch {
			batch[i] = msg(content)
		}
		if err := db.AppendMessagesUnsynced(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := db.SyncCommitted(); err != nil {
			t.Fatal(err)
		}
		// No pause between commits: a passive pass then never finds the
		// WAL all copied, which would let the next commit rewind it by
		// itself.
	}
	info, err := os.Stat(filepath.Join(dir, sqlite.FileName+"-wal"))
	if err != nil {
		t.Fatal(err)
	}
	// The WAL grows past the limit between the checkpointer's passes (a
	// few MB here); without restarts it holds all that was written, about
	// 50 MB.
	if info.Size() > 16<<20 {
		t.Errorf("WAL is %d bytes after writing %d MB with a %d-frame limit; the checkpointer did not restart it", info.Size(), batches*perBatch*len(content)>>20, limit)
	}
	page, err := db.Messages(ctx, roomID, carillon.MessageQuery{Limit: 1})
	if err != nil || len(page) != 1 {
		t.Fatalf("newest message: %v, %v", page, err)
	}
}

// TestFailedSyncIsFinal makes a sync of the WAL fail (its file is moved
// away, so it cannot be found) and checks that the failure stays: later
// syncs and unsynced appends fail, and SyncFailure reports it, even once
// the file is back.
func TestFailedSyncIsFinal(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db := open(t, dir)
	_, msg := roomWithMember(t, db)
	if err := db.AppendMessagesUnsynced(ctx, []*carillon.Append{msg("one")}); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncCommitted(); err != nil || db.SyncFailure() != nil {
		t.Fatalf("first sync: %v, failure %v", err, db.SyncFailure())
	}
	wal := filepath.Join(dir, sqlite.FileName+"-wal")
	if err := os.Rename(wal, wal+".away"); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncCommitted(); !errors.Is(err, carillon.ErrUnavailable) {
		t.Fatalf("sync without the WAL: %v, want an error wrapping ErrUnavailable", err)
	}
	if err := os.Rename(wal+".away", wal); err != nil {
		t.Fatal(err)
	}
	if err := db.SyncCommitted(); err == nil {
		t.Error("a sync after a failed one succeeded")
	}
	if err := db.AppendMessagesUnsynced(ctx, []*carillon.Append{msg("two")}); !errors.Is(err, carillon.ErrUnavailable) {
		t.Errorf("unsynced append after a failed sync: %v, want an error wrapping ErrUnavailable", err)
	}
	if db.SyncFailure() == nil {
		t.Error("SyncFailure is nil after a failed sync")
	}
}

// TestCloseReleasesTheDatabaseFiles: Close leaves no descriptor of the
// database, its WAL or its -shm open. The store's own descriptor of the
// database file, for the checkpointer's fsync, has to outlive SQLite's
// connections (closing it drops the process's locks on the file) but not
// the store.
func TestCloseReleasesTheDatabaseFiles(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	roomWithMember(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd on this system")
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			t.Errorf("descriptor %s of %s is still open after Close", fd.Name(), target)
		}
	}
}
