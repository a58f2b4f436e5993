// Package storetest is the contract suite of carillon.Store. Every storage
// backend runs it from its own tests, so that SQLite and PostgreSQL are held
// to the same behaviour:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) carillon.Store {
//			s := openFreshStore(t) // empty, migrated
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite talks to a backend only through carillon.Store. It checks the
// semantics written in the doc comments of store.go and SPEC.md; where those
// are silent it pins only what the rest of the program relies on (error
// codes the HTTP layer maps to statuses, ids that must be UUIDs), and a
// comment next to such a check names the caller that needs it.
//
// Times: the suite passes whole milliseconds and compares at millisecond
// precision, the API's resolution, so a backend may store milliseconds
// (SQLite) or anything finer (PostgreSQL). Session uses are more than a
// minute apart, so a backend may write a session's last use at most once a
// minute.
//
// Some tests call the store from several goroutines at once (limits and
// the last Administrator under concurrency, concurrent appends and
// idempotency keys, a reader following a room while writers commit). Run
// the suite with -race too: some races show only there.
package storetest

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
)

// Opener returns a fresh, empty, migrated store for one subtest and arranges
// for it to be closed when the subtest ends. The suite may close the store
// itself first, so that second Close must be harmless.
type Opener = func(t *testing.T) carillon.Store

// Run runs the whole contract suite against the stores that open returns;
// every leaf subtest opens its own.
func Run(t *testing.T, open Opener) {
	t.Run("Instance", func(t *testing.T) { testInstance(t, open) })
	t.Run("Users", func(t *testing.T) { testUsers(t, open) })
	t.Run("Rooms", func(t *testing.T) { testRooms(t, open) })
	t.Run("Memberships", func(t *testing.T) { testMemberships(t, open) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, open) })
	t.Run("Webhooks", func(t *testing.T) { testWebhooks(t, open) })
	t.Run("Messages", func(t *testing.T) { testMessages(t, open) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, open) })
	t.Run("Notifications", func(t *testing.T) { testNotifications(t, open) })
}

// t0 is the suite's clock origin: a fixed whole-millisecond UTC time, so
// that runs are reproducible.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// fixture is one subtest's store with helpers to fill it.
type fixture struct {
	t   *testing.T
	ctx context.Context
	s   carillon.Store
	now time.Time // the fixture clock; see tick
}

func setup(t *testing.T, open Opener) *fixture {
	t.Helper()
	s := open(t)
	if s == nil {
		t.Fatal("open returned a nil store")
	}
	return &fixture{t: t, ctx: t.Context(), s: s, now: t0}
}

// tick advances the fixture clock by a second and returns the new time, so
// that every action of a test gets its own, later time.
func (f *fixture) tick() time.Time {
	f.now = f.now.Add(time.Second)
	return f.now
}

// newUser returns an active user (not stored) whose e-mail and alias derive
// from fullName, e.g. "Alice Young" → alice.young@example.test.
func (f *fixture) newUser(fullName string) *carillon.User {
	alias := strings.ToLower(strings.ReplaceAll(fullName, " ", "."))
	return &carillon.User{
		UserID:    uuid.NewString(),
		Email:     alias + "@example.test",
		Alias:     alias,
		FullName:  fullName,
		Active:    true,
		CreatedAt: f.tick(),
	}
}

// user stores a new active user without password or API token.
func (f *fixture) user(fullName string) *carillon.User {
	f.t.Helper()
	u := f.newUser(fullName)
	must(f.t, f.s.CreateUser(f.ctx, u, "", nil), "CreateUser "+fullName)
	return u
}

// room stores a new room created by creator (its first Administrator).
func (f *fixture) room(creator *carillon.User, name string) *carillon.Room {
	f.t.Helper()
	r := &carillon.Room{RoomID: uuid.NewString(), Name: name, CreatedBy: creator.UserID, CreatedAt: f.tick()}
	must(f.t, f.s.CreateRoom(f.ctx, r), "CreateRoom "+name)
	return r
}

// join adds u to room with role, as the room's creator.
func (f *fixture) join(room *carillon.Room, u *carillon.User, role string) {
	f.t.Helper()
	m := &carillon.Membership{RoomID: room.RoomID, UserID: u.UserID, Role: role, CreatedAt: f.tick()}
	must(f.t, f.s.AddMember(f.ctx, m, room.CreatedBy), "AddMember "+u.FullName)
}

// newWebhook returns a webhook of room (not stored) with a fresh token.
func (f *fixture) newWebhook(room *carillon.Room, name string) *carillon.Webhook {
	return &carillon.Webhook{
		WebhookID: uuid.NewString(),
		RoomID:    room.RoomID,
		Name:      name,
		TokenHash: randomHash(),
		TokenSeal: randomBytes(60),
		CreatedAt: f.tick(),
	}
}

// webhook stores a new webhook of room, created by the room's creator.
func (f *fixture) webhook(room *carillon.Room, name string) *carillon.Webhook {
	f.t.Helper()
	w := f.newWebhook(room, name)
	must(f.t, f.s.CreateWebhook(f.ctx, w, room.CreatedBy), "CreateWebhook "+name)
	return w
}

// userMessage returns a message (not stored) of u in room at the next tick.
func (f *fixture) userMessage(room *carillon.Room, u *carillon.User, content string) *carillon.Message {
	return &carillon.Message{
		MessageID:   uuid.NewString(),
		RoomID:      room.RoomID,
		Content:     content,
		Format:      carillon.FormatPlain,
		HTML:        "<p>" + content + "</p>",
		SenderType:  carillon.MemberTypeUser,
		SenderID:    u.UserID,
		SenderName:  u.FullName,
		DisplayName: u.FullName,
		Mentions:    carillon.Mentions{MemberIDs: []string{}},
		CreatedAt:   f.tick(),
	}
}

// webhookMessage returns a message (not stored) of w at the next tick.
func (f *fixture) webhookMessage(w *carillon.Webhook, content string) *carillon.Message {
	return &carillon.Message{
		MessageID:   uuid.NewString(),
		RoomID:      w.RoomID,
		Content:     content,
		Format:      carillon.FormatPlain,
		HTML:        "<p>" + content + "</p>",
		SenderType:  carillon.MemberTypeWebhook,
		SenderID:    w.WebhookID,
		SenderName:  w.Name,
		DisplayName: w.Name + " (Webhook)",
		Mentions:    carillon.Mentions{MemberIDs: []string{}},
		CreatedAt:   f.tick(),
	}
}

// appendBatch commits entries as one batch and fails the test if the batch
// as a whole fails. Per-entry outcomes are left in the entries.
func (f *fixture) appendBatch(entries ...*carillon.Append) {
	f.t.Helper()
	must(f.t, f.s.AppendMessages(f.ctx, entries), "AppendMessages")
}

// post commits messages without conditions, one batch each, and requires
// every one to be stored.
func (f *fixture) post(msgs ...*carillon.Message) {
	f.t.Helper()
	for _, m := range msgs {
		a := &carillon.Append{Message: m}
		f.appendBatch(a)
		must(f.t, a.Err, "entry of AppendMessages")
	}
}

// messages returns every message of a room in commit order.
func (f *fixture) messages(roomID string) []carillon.Message {
	f.t.Helper()
	msgs, err := f.s.Messages(f.ctx, roomID, carillon.MessageQuery{Ascending: true, Limit: 10000})
	must(f.t, err, "Messages")
	return msgs
}

// rooms returns RoomsOfUser keyed by room id.
func (f *fixture) rooms(u *carillon.User) map[string]carillon.Room {
	f.t.Helper()
	rooms, err := f.s.RoomsOfUser(f.ctx, u.UserID)
	must(f.t, err, "RoomsOfUser")
	byID := make(map[string]carillon.Room, len(rooms))
	for _, r := range rooms {
		byID[r.RoomID] = r
	}
	return byID
}

// unread returns u's UnreadCount in room, failing if u does not see it.
func (f *fixture) unread(u *carillon.User, room *carillon.Room) int {
	f.t.Helper()
	r, ok := f.rooms(u)[room.RoomID]
	if !ok {
		f.t.Fatalf("RoomsOfUser(%s) lacks room %q", u.FullName, room.Name)
	}
	return r.UnreadCount
}

// auditEvents returns a room's whole audit log, newest first.
func (f *fixture) auditEvents(roomID string) []carillon.AuditEvent {
	f.t.Helper()
	events, err := f.s.AuditEvents(f.ctx, roomID, "", 1000)
	must(f.t, err, "AuditEvents")
	return events
}

// must stops the test on an unexpected error.
func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantCode checks that err is a carillon error with the given code.
func wantCode(t *testing.T, err error, code, what string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error, want code %s", what, code)
		return
	}
	if got := carillon.ErrorCode(err); got != code {
		t.Errorf("%s: error %q has code %s, want %s", what, err, got, code)
	}
}

// sameTime compares times at the API's millisecond precision.
func sameTime(a, b time.Time) bool {
	return a.Truncate(time.Millisecond).Equal(b.Truncate(time.Millisecond))
}

func sameTimePtr(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return sameTime(*a, *b)
}

func fmtTimePtr(p *time.Time) string {
	if p == nil {
		return "nil"
	}
	return p.UTC().Format(carillon.TimeFormat)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// randomHash stands for the SHA-256 of a fresh token.
func randomHash() []byte { return randomBytes(32) }

func ptr[T any](v T) *T { return &v }

// ids returns the ids of messages, in order.
func ids(msgs []carillon.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.MessageID
	}
	return out
}

func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// testInstance covers Ping, Meta, SetMeta and Close.
func testInstance(t *testing.T, open Opener) {
	t.Run("Ping", func(t *testing.T) {
		f := setup(t, open)
		must(t, f.s.Ping(f.ctx), "Ping")
	})
	t.Run("Meta", func(t *testing.T) {
		f := setup(t, open)
		v, err := f.s.Meta(f.ctx, "fingerprint")
		must(t, err, "Meta of an unset key")
		if v != "" {
			t.Errorf("unset key: %q, want \"\"", v)
		}
		must(t, f.s.SetMeta(f.ctx, "fingerprint", "one"), "SetMeta")
		must(t, f.s.SetMeta(f.ctx, "admin", "someone"), "SetMeta")
		must(t, f.s.SetMeta(f.ctx, "fingerprint", "two"), "SetMeta overwriting")
		for key, want := range map[string]string{"fingerprint": "two", "admin": "someone", "other": ""} {
			got, err := f.s.Meta(f.ctx, key)
			must(t, err, "Meta "+key)
			if got != want {
				t.Errorf("Meta(%q) = %q, want %q", key, got, want)
			}
		}
	})
	t.Run("Close", func(t *testing.T) {
		f := setup(t, open)
		must(t, f.s.Close(), "Close")
	})
}
