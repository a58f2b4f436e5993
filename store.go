package carillon

import (
	"context"
	"math"
	"time"
)

// Store is the storage of a Carillon instance. Every backend (SQLite now,
// PostgreSQL for clusters) implements it and passes the contract suite in
// package storetest. Methods return *Error values for outcomes the user
// should see (ENotFound, EConflict, EResourceLimit) and errors wrapping
// ErrUnavailable when the backend cannot serve.
type Store interface {
	UserStore
	RoomStore
	WebhookStore
	MessageStore
	NotificationStore

	// Ping reports whether the backend can serve reads and writes.
	Ping(ctx context.Context) error
	// Meta reads an instance-wide setting ("" when unset); SetMeta writes one.
	Meta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
	Close() error
}

// UserStore keeps users, their API tokens and their web sessions.
type UserStore interface {
	// CreateUser stores u (its UserID and CreatedAt set by the caller) with
	// an optional password hash and API token hash. A taken e-mail or
	// alias (case-insensitive) is EConflict.
	CreateUser(ctx context.Context, u *User, passwordHash string, tokenHash []byte) error
	CountUsers(ctx context.Context) (int, error)
	User(ctx context.Context, userID string) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	// PasswordHash returns the stored password hash of a user ("" if none).
	PasswordHash(ctx context.Context, userID string) (string, error)
	// UpdateUser changes what upd sets. A new password or deactivation ends
	// the user's sessions; deactivation also revokes their API tokens.
	UpdateUser(ctx context.Context, userID string, upd UserUpdate) (*User, error)
	// AddAPIToken gives a user one more API token (by hash).
	AddAPIToken(ctx context.Context, userID string, tokenHash []byte) error
	// UserByAPIToken returns the active user owning the token hash.
	UserByAPIToken(ctx context.Context, tokenHash []byte) (*User, error)
	CreateSession(ctx context.Context, sessionHash []byte, userID string, now time.Time) error
	// UserBySession returns the active user of a session that was used
	// within SessionTTL of now, and marks it used at now.
	UserBySession(ctx context.Context, sessionHash []byte, now time.Time) (*User, error)
	DeleteSession(ctx context.Context, sessionHash []byte) error
}

// UserUpdate lists the changes of UpdateUser; nil fields stay as they are.
type UserUpdate struct {
	FullName     *string
	PasswordHash *string
	Active       *bool
	// KeepSession is a session hash that survives a password change (the
	// session of the user who changed it).
	KeepSession []byte
}

// RoomStore keeps rooms, memberships, read markers and the audit log.
type RoomStore interface {
	// CreateRoom stores the room and makes its creator an Administrator.
	CreateRoom(ctx context.Context, room *Room) error
	// Room returns a room that is not deleted.
	Room(ctx context.Context, roomID string) (*Room, error)
	// RoomsOfUser returns the rooms userID belongs to, with that user's
	// unread and mention counts, ordered by name.
	RoomsOfUser(ctx context.Context, userID string) ([]Room, error)
	DeleteRoom(ctx context.Context, roomID, actorID string, now time.Time) error
	// MarkRead records that userID has read roomID up to messageID.
	MarkRead(ctx context.Context, roomID, userID, messageID string) error

	// AddMember adds a user to a room (EConflict if already a member,
	// EResourceLimit beyond MaxMembersPerRoom).
	AddMember(ctx context.Context, m *Membership, actorID string) error
	// Membership returns a user's membership, ENotFound if none.
	Membership(ctx context.Context, roomID, userID string) (*Membership, error)
	// Members returns the user members of a room ordered by full name.
	Members(ctx context.Context, roomID string) ([]Membership, error)
	CountMembers(ctx context.Context, roomID string) (int, error)
	// SetRole changes a member's role; demoting the last Administrator is
	// EConflict.
	SetRole(ctx context.Context, roomID, userID, role, actorID string, now time.Time) (*Membership, error)
	// RemoveMember removes a member; removing the last Administrator is
	// EConflict.
	RemoveMember(ctx context.Context, roomID, userID, actorID string, now time.Time) error

	// AuditEvents lists a room's audit log newest first, starting after the
	// event with id after ("" for the newest), at most limit+1 entries.
	AuditEvents(ctx context.Context, roomID, after string, limit int) ([]AuditEvent, error)
}

// WebhookStore keeps webhooks, every token hash each ever had, and
// tombstones of deleted ones.
type WebhookStore interface {
	// CreateWebhook stores w (EResourceLimit when the room already has
	// MaxWebhooksPerRoom webhooks).
	CreateWebhook(ctx context.Context, w *Webhook, actorID string) error
	// Webhook returns a webhook, deleted ones included (DeletedAt set; a
	// webhook of a deleted room counts as deleted). ENotFound if the id was
	// never a webhook.
	Webhook(ctx context.Context, webhookID string) (*Webhook, error)
	// WebhooksOfRoom lists the live webhooks of a room by name.
	WebhooksOfRoom(ctx context.Context, roomID string) ([]Webhook, error)
	RenameWebhook(ctx context.Context, webhookID, name, actorID string, now time.Time) (*Webhook, error)
	// RegenerateWebhook replaces the token; the old hash is kept as retired.
	RegenerateWebhook(ctx context.Context, webhookID string, tokenHash, tokenSeal []byte, actorID string, now time.Time) (*Webhook, error)
	DeleteWebhook(ctx context.Context, webhookID, actorID string, now time.Time) error
	// WebhookHadToken reports whether tokenHash ever belonged to webhookID.
	WebhookHadToken(ctx context.Context, webhookID string, tokenHash []byte) (bool, error)
	// TouchWebhooks records last-used times (coalesced by the caller).
	TouchWebhooks(ctx context.Context, lastUsed map[string]time.Time) error
}

// MessageStore keeps messages and idempotency keys.
type MessageStore interface {
	// AppendMessages commits a batch of messages in one transaction, in
	// order. Each entry either commits (its Message gets Seq and keeps
	// its CreatedAt) or gets its own Err (ENotFound when its condition no
	// longer holds, EConflict when its idempotency key was taken meanwhile);
	// a returned error means nothing of the batch was committed.
	AppendMessages(ctx context.Context, batch []*Append) error
	// Messages pages through a room in commit order.
	Messages(ctx context.Context, roomID string, q MessageQuery) ([]Message, error)
	// IdempotencyRecord returns the record of key for a sender not older
	// than since, or nil.
	IdempotencyRecord(ctx context.Context, senderID, key string, since time.Time) (*IdempotencyRecord, error)
}

// NotificationStore keeps the notifications of mentions, and reads what a
// live event stream must replay.
type NotificationStore interface {
	// Notifications lists a user's notifications, newest first, at most
	// limit, only unread ones when unreadOnly.
	Notifications(ctx context.Context, userID string, unreadOnly bool, limit int) ([]Notification, error)
	// MarkNotificationsRead marks the given notifications of the user read,
	// or all of them when all is true.
	MarkNotificationsRead(ctx context.Context, userID string, ids []string, all bool) error
	// RoomIDsOfUser lists the live rooms a user belongs to.
	RoomIDsOfUser(ctx context.Context, userID string) ([]string, error)
	// Replay returns, in commit order, the messages of the user's rooms and
	// the user's notifications committed after position after, at most
	// limit of them; see ReplayItem. With userID "" it returns those of
	// every room and every user (a cluster node's feed of live events).
	Replay(ctx context.Context, userID string, after EventPosition, limit int) ([]ReplayItem, error)
	// NewestSeq returns the Seq of the newest message (0 when none).
	NewestSeq(ctx context.Context) (int64, error)
}

// EventPosition is a place in the event stream: after the message with
// this Seq, and after its notification too when Notification is true.
type EventPosition struct {
	Seq          int64
	Notification bool
}

// ReplayItem is a message or a notification to replay.
type ReplayItem struct {
	Message      *Message
	Notification *Notification
}

// DeferredSyncAppender is a Store that can commit a batch of messages
// without waiting for it to reach stable storage, and make everything
// committed so far durable later in one step. The ingest writer uses it to
// commit the next batch while the previous one is synced; it answers a
// batch only after a SyncCommitted that began after its commit returned nil.
type DeferredSyncAppender interface {
	// AppendMessagesUnsynced is AppendMessages without the wait for stable
	// storage: the batch is durable only after the next SyncCommitted, and
	// reads of messages, replays and notifications do not show it before.
	// A power failure before then loses it.
	AppendMessagesUnsynced(ctx context.Context, batch []*Append) error
	// SyncCommitted makes every commit made before the call durable, and
	// visible to reads. After one failure it keeps failing.
	SyncCommitted() error
	// SyncFailure returns the error of the sync that failed, if one did.
	SyncFailure() error
}

// AsDeferredSyncAppender returns store as a DeferredSyncAppender when it,
// or a store it wraps (one with an Unwrap() Store method), is one. Appends
// through it bypass the wrappers, which must therefore not change
// AppendMessages.
func AsDeferredSyncAppender(store Store) (DeferredSyncAppender, bool) {
	for {
		if d, ok := store.(DeferredSyncAppender); ok {
			return d, true
		}
		w, ok := store.(interface{ Unwrap() Store })
		if !ok {
			return nil, false
		}
		store = w.Unwrap()
	}
}

// Append is one message for AppendMessages with the conditions under which
// it may be stored.
type Append struct {
	Message *Message
	// WebhookTokenHash, when set, requires the sending webhook to still have
	// this token and not be deleted (a regenerate or delete that committed
	// first wins).
	WebhookTokenHash []byte
	// RequireMember, when true, requires the sending user to still be a
	// member of the room.
	RequireMember bool
	// Idempotency, when set, is recorded with the message.
	Idempotency *IdempotencyRecord
	// Notifications are stored with the message (their MessageSeq is set
	// on insert).
	Notifications []*Notification
	// Err is the outcome of this entry after AppendMessages returns nil.
	Err error
}

// IdempotencyRecord remembers the answer to an accepted request that carried
// an Idempotency-Key.
type IdempotencyRecord struct {
	SenderID    string
	Key         string
	ContentHash []byte
	MessageID   string
	RoomID      string
	CreatedAt   time.Time
}

// MessageQuery selects a page of messages. After is the Seq to continue from
// (exclusive; 0 for the start), Limit how many to return.
type MessageQuery struct {
	Ascending bool
	After     int64
	Limit     int
}

// ReplayAllNotificationRange is the range of message seqs (lo, hi] whose
// notifications a Replay for every user returns with msgs, the messages it
// read after position after with that limit: those of the messages read,
// and when fewer than limit were read, any committed since.
func ReplayAllNotificationRange(after EventPosition, msgs []Message, limit int) (lo, hi int64) {
	lo = after.Seq
	if !after.Notification {
		lo-- // the notifications of message after.Seq are still due
	}
	hi = math.MaxInt64
	if len(msgs) == limit && limit > 0 {
		hi = msgs[len(msgs)-1].Seq
	}
	return lo, hi
}

// MergeReplayAll merges the messages and notifications read for a Replay
// for every user, which cuts neither list.
func MergeReplayAll(msgs []Message, notes []*Notification) []ReplayItem {
	return MergeReplay(msgs, notes, math.MaxInt)
}

// MergeReplay merges the messages and notifications a backend read for
// Replay (each list in commit order, each cut at limit) into one list in
// commit order, a message before its notification. It stops where either
// list was cut, so that a next page after the last item skips nothing,
// and returns at most limit items.
func MergeReplay(msgs []Message, notes []*Notification, limit int) []ReplayItem {
	horizon := int64(1<<63 - 1)
	if len(msgs) == limit {
		horizon = msgs[len(msgs)-1].Seq
	}
	if len(notes) == limit && notes[len(notes)-1].MessageSeq < horizon {
		horizon = notes[len(notes)-1].MessageSeq
	}
	items := make([]ReplayItem, 0, max(0, min(limit, len(msgs)+len(notes))))
	i, j := 0, 0
	for len(items) < limit {
		var next ReplayItem
		switch {
		case i < len(msgs) && (j >= len(notes) || msgs[i].Seq <= notes[j].MessageSeq):
			if msgs[i].Seq > horizon {
				return items
			}
			next.Message = &msgs[i]
			i++
		case j < len(notes):
			if notes[j].MessageSeq > horizon {
				return items
			}
			next.Notification = notes[j]
			j++
		default:
			return items
		}
		items = append(items, next)
	}
	return items
}
