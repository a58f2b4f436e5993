// Package sqlrow reads the rows that both SQL stores (packages sqlite and
// postgres) keep alike: the same columns, times as Unix milliseconds (UTC),
// mentions as JSON. Each store keeps its own queries, placeholders and
// error mapping; a missing row comes back as the driver's own "no rows"
// error for the store to translate.
package sqlrow

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/carillon-chat/carillon"
)

// Scanner is one row: *sql.Row, *sql.Rows, pgx.Row and pgx.Rows all are.
type Scanner interface{ Scan(dest ...any) error }

// Rows is what *sql.Rows and pgx.Rows have in common for reading them
// through; closing them stays with the caller (their Close methods differ).
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// Collect reads every remaining row with scan. It returns an empty, non-nil
// slice when there are none (an empty JSON list rather than null).
func Collect[T any](rows Rows, scan func(Scanner) (T, error)) ([]T, error) {
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Values copies out what ps points to, in order.
func Values[T any](ps []*T) []T {
	out := make([]T, len(ps))
	for i, p := range ps {
		out[i] = *p
	}
	return out
}

// UserColumns are the columns User reads, from the users table.
const UserColumns = `user_id, email, alias, full_name, is_admin, active, created_at, password_hash <> ''`

// User reads a row of UserColumns.
func User(row Scanner) (*carillon.User, error) {
	var u carillon.User
	var created int64
	if err := row.Scan(&u.UserID, &u.Email, &u.Alias, &u.FullName, &u.IsAdmin, &u.Active, &created, &u.HasPassword); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMS(created)
	return &u, nil
}

// RoomListing reads a room of a user's room list: room_id, name,
// created_by, created_at, then the unread and mention counts.
func RoomListing(row Scanner) (carillon.Room, error) {
	var r carillon.Room
	var created int64
	if err := row.Scan(&r.RoomID, &r.Name, &r.CreatedBy, &created, &r.UnreadCount, &r.MentionCount); err != nil {
		return r, err
	}
	r.CreatedAt = fromMS(created)
	return r, nil
}

// MembershipColumns are the columns Membership reads, from memberships
// (ms) joined with users (u).
const MembershipColumns = `ms.room_id, ms.role, ms.created_at, ` +
	`u.user_id, u.email, u.alias, u.full_name, u.is_admin, u.active, u.created_at, u.password_hash <> ''`

// Membership reads a row of MembershipColumns.
func Membership(row Scanner) (*carillon.Membership, error) {
	var m carillon.Membership
	var created, userCreated int64
	u := &m.User
	if err := row.Scan(&m.RoomID, &m.Role, &created, &u.UserID, &u.Email, &u.Alias, &u.FullName, &u.IsAdmin, &u.Active,
		&userCreated, &u.HasPassword); err != nil {
		return nil, err
	}
	m.UserID = u.UserID
	m.CreatedAt = fromMS(created)
	u.CreatedAt = fromMS(userCreated)
	return &m, nil
}

// WebhookColumns are the columns Webhook reads, from webhooks (w) joined
// with their room (r): a webhook of a deleted room reads as deleted.
const WebhookColumns = `w.webhook_id, w.room_id, w.name, w.token_hash, w.token_seal, w.created_at, w.last_used_at,
	coalesce(w.deleted_at, r.deleted_at)`

// Webhook reads a row of WebhookColumns.
func Webhook(row Scanner) (*carillon.Webhook, error) {
	var w carillon.Webhook
	var created int64
	var lastUsed, deleted *int64
	if err := row.Scan(&w.WebhookID, &w.RoomID, &w.Name, &w.TokenHash, &w.TokenSeal, &created, &lastUsed, &deleted); err != nil {
		return nil, err
	}
	w.CreatedAt = fromMS(created)
	w.LastUsedAt = fromNullMS(lastUsed)
	w.DeletedAt = fromNullMS(deleted)
	return &w, nil
}

// MessageColumns are the columns Message reads, from messages.
const MessageColumns = `seq, message_id, room_id, content, format, html, sender_type, sender_id, sender_name, display_name, mentions, created_at`

// Message reads a row of MessageColumns.
func Message(row Scanner) (carillon.Message, error) {
	var m carillon.Message
	var mentions string
	var created int64
	if err := row.Scan(&m.Seq, &m.MessageID, &m.RoomID, &m.Content, &m.Format, &m.HTML, &m.SenderType, &m.SenderID,
		&m.SenderName, &m.DisplayName, &mentions, &created); err != nil {
		return m, err
	}
	var mj carillon.MentionsJSON
	if err := json.Unmarshal([]byte(mentions), &mj); err != nil {
		return m, fmt.Errorf("mentions of message %s: %w", m.MessageID, err)
	}
	m.Mentions = carillon.Mentions{All: mj.All, Present: mj.Present, MemberIDs: NonNil(mj.MemberIDs)}
	m.CreatedAt = fromMS(created)
	return m, nil
}

// MentionsJSON is how a message's mentions are stored.
func MentionsJSON(m carillon.Mentions) (string, error) {
	b, err := json.Marshal(carillon.MentionsJSON{All: m.All, Present: m.Present, MemberIDs: NonNil(m.MemberIDs)})
	return string(b), err
}

// NotificationColumns are the columns Notification reads, from
// notifications.
const NotificationColumns = `notification_id, user_id, message_id, message_seq, room_id, reason, read, created_at`

// Notification reads a row of NotificationColumns.
func Notification(row Scanner) (*carillon.Notification, error) {
	var n carillon.Notification
	var created int64
	if err := row.Scan(&n.NotificationID, &n.UserID, &n.MessageID, &n.MessageSeq, &n.RoomID, &n.Reason, &n.Read, &created); err != nil {
		return nil, err
	}
	n.CreatedAt = fromMS(created)
	return &n, nil
}

// NonNil returns s, or an empty slice for nil (stored and served as [],
// never null).
func NonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v *int64) *time.Time {
	if v == nil {
		return nil
	}
	t := fromMS(*v)
	return &t
}
