package sqlrow_test

import (
	"database/sql"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

// openDB opens a private in-memory SQLite database holding the given
// statements' tables and rows.
func openDB(t *testing.T, stmts ...string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+t.Name()+"?mode=memory")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // one connection: the in-memory database is per connection
	t.Cleanup(func() { db.Close() })
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return db
}

// collect runs query and reads every row with scan.
func collect[T any](t *testing.T, db *sql.DB, query string, scan func(sqlrow.Scanner) (T, error)) []T {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out, err := sqlrow.Collect(rows, scan)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWebhookReadsNullTimesAsNil(t *testing.T) {
	db := openDB(t,
		`CREATE TABLE rooms (room_id TEXT, deleted_at INTEGER)`,
		`CREATE TABLE webhooks (webhook_id TEXT, room_id TEXT, name TEXT, token_hash BLOB, token_seal BLOB,
			created_at INTEGER, last_used_at INTEGER, deleted_at INTEGER)`,
		`INSERT INTO rooms VALUES ('r1', NULL), ('r2', 1700000000000)`,
		`INSERT INTO webhooks VALUES ('fresh', 'r1', 'CI', x'01', x'02', 1600000000000, NULL, NULL),
			('used', 'r1', 'CI', x'01', x'02', 1600000000000, 1650000000123, NULL),
			('in-deleted-room', 'r2', 'CI', x'01', x'02', 1600000000000, NULL, NULL)`)
	hooks := collect(t, db, `SELECT `+sqlrow.WebhookColumns+` FROM webhooks w JOIN rooms r ON r.room_id = w.room_id ORDER BY w.rowid`,
		sqlrow.Webhook)
	if len(hooks) != 3 {
		t.Fatalf("got %d webhooks, want 3", len(hooks))
	}
	fresh, used, gone := hooks[0], hooks[1], hooks[2]
	if fresh.LastUsedAt != nil || fresh.DeletedAt != nil {
		t.Errorf("fresh webhook: last used %v, deleted %v; want both nil", fresh.LastUsedAt, fresh.DeletedAt)
	}
	if want := time.UnixMilli(1650000000123).UTC(); used.LastUsedAt == nil || !used.LastUsedAt.Equal(want) {
		t.Errorf("used webhook: last used %v, want %v", used.LastUsedAt, want)
	}
	if gone.DeletedAt == nil || gone.DeletedAt.UnixMilli() != 1700000000000 {
		t.Errorf("webhook of a deleted room: deleted %v, want the room's deletion", gone.DeletedAt)
	}
	if fresh.CreatedAt.Location() != time.UTC || string(fresh.TokenHash) != "\x01" || fresh.Name != "CI" {
		t.Errorf("fresh webhook read as %+v", fresh)
	}
}

const messagesTable = `CREATE TABLE messages (seq INTEGER PRIMARY KEY, message_id TEXT, room_id TEXT, content TEXT, format TEXT,
	html TEXT, sender_type TEXT, sender_id TEXT, sender_name TEXT, display_name TEXT, mentions TEXT, created_at INTEGER)`

func TestMessageMentionsRoundTrip(t *testing.T) {
	db := openDB(t, messagesTable)
	for _, m := range []struct {
		id       string
		mentions []string
	}{{"m1", nil}, {"m2", []string{"u1", "u2"}}} {
		stored, err := sqlrow.MentionsJSON(carillonMentions(m.mentions))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO messages (message_id, room_id, content, format, html, sender_type, sender_id,
			sender_name, display_name, mentions, created_at) VALUES (?, 'r', 'hi', 'Plain', '<p>hi</p>', 'User', 'u0', 'ann', 'Ann', ?, 1)`,
			m.id, stored); err != nil {
			t.Fatal(err)
		}
	}
	msgs := collect(t, db, `SELECT `+sqlrow.MessageColumns+` FROM messages ORDER BY seq`, sqlrow.Message)
	if len(msgs) != 2 || msgs[0].Seq != 1 || msgs[1].MessageID != "m2" {
		t.Fatalf("read %+v", msgs)
	}
	if ids := msgs[0].Mentions.MemberIDs; ids == nil || len(ids) != 0 {
		t.Errorf("no mentions read as %#v, want an empty non-nil list", ids)
	}
	if ids := msgs[1].Mentions.MemberIDs; strings.Join(ids, ",") != "u1,u2" || !msgs[1].Mentions.All {
		t.Errorf("mentions read as %+v", msgs[1].Mentions)
	}
}

func TestMessageWithBadMentionsNamesIt(t *testing.T) {
	db := openDB(t, messagesTable,
		`INSERT INTO messages VALUES (1, 'broken-one', 'r', 'hi', 'Plain', '', 'User', 'u', 'ann', 'Ann', '{not json', 1)`)
	_, err := sqlrow.Message(db.QueryRow(`SELECT ` + sqlrow.MessageColumns + ` FROM messages`))
	if err == nil || !strings.Contains(err.Error(), "broken-one") {
		t.Fatalf("err = %v, want one naming the message", err)
	}
}

func TestCollectOfNoRowsIsEmptyNotNil(t *testing.T) {
	db := openDB(t, messagesTable)
	msgs := collect(t, db, `SELECT `+sqlrow.MessageColumns+` FROM messages`, sqlrow.Message)
	if msgs == nil || len(msgs) != 0 {
		t.Fatalf("got %#v; want an empty non-nil list", msgs)
	}
}

// carillonMentions is a message's mentions: @All along with the members
// named, when any are.
func carillonMentions(ids []string) carillon.Mentions {
	return carillon.Mentions{All: ids != nil, MemberIDs: ids}
}
