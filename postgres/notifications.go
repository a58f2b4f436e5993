package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

const notificationColumns = sqlrow.NotificationColumns

// queryNotifications runs a query selecting notificationColumns.
func queryNotifications(ctx context.Context, q querier, query string, args ...any) ([]*carillon.Notification, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	notes, err := sqlrow.Collect(rows, sqlrow.Notification)
	return notes, classify(err)
}

// Notifications lists a user's notifications, newest first.
func (db *DB) Notifications(ctx context.Context, userID string, unreadOnly bool, limit int) ([]carillon.Notification, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	q := `SELECT ` + notificationColumns + ` FROM notifications WHERE user_id = $1`
	if unreadOnly {
		q += ` AND NOT read`
	}
	notes, err := queryNotifications(ctx, db.pool, q+` ORDER BY message_seq DESC LIMIT $2`, userID, limit)
	if err != nil {
		return nil, err
	}
	return sqlrow.Values(notes), nil
}

// MarkNotificationsRead marks notifications read.
func (db *DB) MarkNotificationsRead(ctx context.Context, userID string, ids []string, all bool) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if all {
		_, err := db.pool.Exec(ctx, `UPDATE notifications SET read = true WHERE user_id = $1 AND NOT read`, userID)
		return classify(err)
	}
	if len(ids) == 0 {
		return nil
	}
	_, err := db.pool.Exec(ctx, `UPDATE notifications SET read = true WHERE user_id = $1 AND notification_id = ANY ($2::text[])`,
		userID, ids)
	return classify(err)
}

// RoomIDsOfUser lists a user's live rooms.
func (db *DB) RoomIDsOfUser(ctx context.Context, userID string) ([]string, error) {
	return db.strings(ctx, `SELECT ms.room_id FROM memberships ms JOIN rooms r ON r.room_id = ms.room_id
		WHERE ms.user_id = $1 AND r.deleted_at IS NULL`, userID)
}

func (db *DB) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, query, args...)
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
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var seq int64
	err := db.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM messages`).Scan(&seq)
	return seq, classify(err)
}

// Replay returns the events a stream missed after position after: the
// messages of the user's current rooms and the user's notifications, in
// commit order (a message before its notification).
func (db *DB) Replay(ctx context.Context, userID string, after carillon.EventPosition, limit int) ([]carillon.ReplayItem, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	// One REPEATABLE READ snapshot, so that both queries see the same
	// commits.
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, classify(err)
	}
	defer tx.Rollback(context.Background())
	if userID == "" {
		return replayAll(ctx, tx, after, limit)
	}
	msgs, err := queryMessages(ctx, tx, `SELECT `+messageColumns+` FROM messages
		WHERE seq > $1 AND room_id IN (SELECT ms.room_id FROM memberships ms JOIN rooms r ON r.room_id = ms.room_id
			WHERE ms.user_id = $2 AND r.deleted_at IS NULL)
		ORDER BY seq LIMIT $3`, after.Seq, userID, limit)
	if err != nil {
		return nil, err
	}
	noteAfter := after.Seq
	if !after.Notification {
		noteAfter-- // the notification of message after.Seq is still due
	}
	notes, err := queryNotifications(ctx, tx, `SELECT `+notificationColumns+` FROM notifications
		WHERE user_id = $1 AND message_seq > $2 ORDER BY message_seq LIMIT $3`, userID, noteAfter, limit)
	if err != nil {
		return nil, err
	}
	return carillon.MergeReplay(msgs, notes, limit), nil
}

// replayAll is Replay for every room and user: up to limit messages, each
// with all of its notifications (a message may notify thousands, so they
// are not cut by the limit).
func replayAll(ctx context.Context, tx pgx.Tx, after carillon.EventPosition, limit int) ([]carillon.ReplayItem, error) {
	msgs, err := queryMessages(ctx, tx, `SELECT `+messageColumns+` FROM messages
		WHERE seq > $1 AND room_id NOT IN (SELECT room_id FROM rooms WHERE deleted_at IS NOT NULL)
		ORDER BY seq LIMIT $2`, after.Seq, limit)
	if err != nil {
		return nil, err
	}
	lo, hi := carillon.ReplayAllNotificationRange(after, msgs, limit)
	notes, err := queryNotifications(ctx, tx, `SELECT `+notificationColumns+` FROM notifications
		WHERE message_seq > $1 AND message_seq <= $2
			AND room_id NOT IN (SELECT room_id FROM rooms WHERE deleted_at IS NOT NULL)
		ORDER BY message_seq, notification_id`, lo, hi)
	if err != nil {
		return nil, err
	}
	return carillon.MergeReplayAll(msgs, notes), nil
}
