package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

const appendNotification = `INSERT INTO notifications
			(notification_id, user_id, message_id, message_seq, room_id, reason, read, created_at)
			VALUES (?, ?, ?, ?, ?, ?, 0, ?)`

// insertNotifications stores the notifications of a message just inserted.
func (db *DB) insertNotifications(ctx context.Context, tx *sql.Tx, m *carillon.Message, notes []*carillon.Notification) error {
	for _, n := range notes {
		n.MessageSeq = m.Seq
		n.MessageID = m.MessageID
		n.RoomID = m.RoomID
		n.CreatedAt = m.CreatedAt
		if _, err := db.txExec(ctx, tx, appendNotification,
			n.NotificationID, n.UserID, n.MessageID, n.MessageSeq, n.RoomID, n.Reason, ms(n.CreatedAt)); err != nil {
			return err
		}
	}
	return nil
}

const notificationColumns = sqlrow.NotificationColumns

// Notifications lists a user's notifications, newest first.
func (db *DB) Notifications(ctx context.Context, userID string, unreadOnly bool, limit int) ([]carillon.Notification, error) {
	q := `SELECT ` + notificationColumns + ` FROM notifications WHERE user_id = ? AND message_seq <= ?`
	if unreadOnly {
		q += ` AND read = 0`
	}
	notes, err := queryNotifications(ctx, db.read, q+` ORDER BY message_seq DESC LIMIT ?`, userID, db.visibleSeq.Load(), limit)
	if err != nil {
		return nil, err
	}
	return sqlrow.Values(notes), nil
}

// MarkNotificationsRead marks notifications read.
func (db *DB) MarkNotificationsRead(ctx context.Context, userID string, ids []string, all bool) error {
	if all {
		_, err := db.write.ExecContext(ctx, `UPDATE notifications SET read = 1 WHERE user_id = ? AND read = 0`, userID)
		return classify(err)
	}
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, userID)
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := db.write.ExecContext(ctx, `UPDATE notifications SET read = 1 WHERE user_id = ? AND notification_id IN (?`+
		strings.Repeat(",?", len(ids)-1)+`)`, args...)
	return classify(err)
}

// RoomIDsOfUser lists a user's live rooms.
func (db *DB) RoomIDsOfUser(ctx context.Context, userID string) ([]string, error) {
	return db.strings(ctx, `SELECT ms.room_id FROM memberships ms JOIN rooms r ON r.room_id = ms.room_id
		WHERE ms.user_id = ? AND r.deleted_at IS NULL`, userID)
}

func (db *DB) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, classify(err)
		}
		out = append(out, s)
	}
	return out, classify(rows.Err())
}

// NewestSeq returns the newest message's Seq.
func (db *DB) NewestSeq(ctx context.Context) (int64, error) {
	var seq sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT max(seq) FROM messages`).Scan(&seq)
	return seq.Int64, classify(err)
}

// Replay returns the events a stream missed after position after: the
// messages of the user's current rooms and the user's notifications, in
// commit order (a message before its notification).
func (db *DB) Replay(ctx context.Context, userID string, after carillon.EventPosition, limit int) ([]carillon.ReplayItem, error) {
	// One read transaction, so that both queries see the same commits.
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, classify(err)
	}
	defer tx.Rollback()
	visible := db.visibleSeq.Load()
	if userID == "" {
		return replayAll(ctx, tx, after, visible, limit)
	}
	msgs, err := queryMessages(ctx, tx, `SELECT `+messageColumns+` FROM messages
		WHERE seq > ? AND seq <= ? AND room_id IN (SELECT ms.room_id FROM memberships ms JOIN rooms r ON r.room_id = ms.room_id
			WHERE ms.user_id = ? AND r.deleted_at IS NULL)
		ORDER BY seq LIMIT ?`, after.Seq, visible, userID, limit)
	if err != nil {
		return nil, err
	}
	noteAfter := after.Seq
	if !after.Notification {
		noteAfter-- // the notification of message after.Seq is still due
	}
	notes, err := queryNotifications(ctx, tx, `SELECT `+notificationColumns+` FROM notifications
		WHERE user_id = ? AND message_seq > ? AND message_seq <= ? ORDER BY message_seq LIMIT ?`, userID, noteAfter, visible, limit)
	if err != nil {
		return nil, err
	}
	return carillon.MergeReplay(msgs, notes, limit), nil
}

// replayAll is Replay for every room and user: up to limit messages up to
// seq visible, each with all of its notifications (a message may notify
// thousands, so they are not cut by the limit).
func replayAll(ctx context.Context, tx *sql.Tx, after carillon.EventPosition, visible int64, limit int) ([]carillon.ReplayItem, error) {
	msgs, err := queryMessages(ctx, tx, `SELECT `+messageColumns+` FROM messages
		WHERE seq > ? AND seq <= ? AND room_id NOT IN (SELECT room_id FROM rooms WHERE deleted_at IS NOT NULL)
		ORDER BY seq LIMIT ?`, after.Seq, visible, limit)
	if err != nil {
		return nil, err
	}
	lo, hi := carillon.ReplayAllNotificationRange(after, msgs, limit)
	hi = min(hi, visible)
	notes, err := queryNotifications(ctx, tx, `SELECT `+notificationColumns+` FROM notifications
		WHERE message_seq > ? AND message_seq <= ?
			AND room_id NOT IN (SELECT room_id FROM rooms WHERE deleted_at IS NOT NULL)
		ORDER BY message_seq, seq`, lo, hi)
	if err != nil {
		return nil, err
	}
	return carillon.MergeReplayAll(msgs, notes), nil
}

// queryNotifications runs a query selecting notificationColumns.
func queryNotifications(ctx context.Context, q rowsQueryer, query string, args ...any) ([]*carillon.Notification, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	notes, err := sqlrow.Collect(rows, sqlrow.Notification)
	return notes, classify(err)
}
