package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

func errNoRoom() error { return carillon.Errorf(carillon.ENotFound, "No such room.") }

func errNoMember() error {
	return carillon.Errorf(carillon.ENotFound, "No such member in this room.")
}

// CreateRoom stores a room with its creator as Administrator.
func (db *DB) CreateRoom(ctx context.Context, room *carillon.Room) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rooms (room_id, name, created_by, created_at) VALUES (?, ?, ?, ?)`,
			room.RoomID, room.Name, room.CreatedBy, ms(room.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO memberships (room_id, user_id, role, created_at, last_read_seq)
			VALUES (?, ?, ?, ?, (SELECT coalesce(max(seq), 0) FROM messages))`,
			room.RoomID, room.CreatedBy, carillon.RoleAdministrator, ms(room.CreatedAt))
		return err
	})
}

// Room returns a live room.
func (db *DB) Room(ctx context.Context, roomID string) (*carillon.Room, error) {
	var r carillon.Room
	var created int64
	err := db.readRow(ctx, `SELECT room_id, name, created_by, created_at FROM rooms
		WHERE room_id = ? AND deleted_at IS NULL`, roomID).Scan(&r.RoomID, &r.Name, &r.CreatedBy, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoRoom()
	}
	if err != nil {
		return nil, classify(err)
	}
	r.CreatedAt = fromMS(created)
	return &r, nil
}

// RoomsOfUser lists a user's rooms with unread counts.
func (db *DB) RoomsOfUser(ctx context.Context, userID string) ([]carillon.Room, error) {
	// Unread mentions are counted in one pass over the user's unread index
	// (notifications_user_unread), not once per room. Like pages, the
	// counts leave out messages not yet synced (visibleSeq).
	rows, err := db.read.QueryContext(ctx, `WITH mentions AS (
			SELECT room_id, count(*) AS n FROM notifications WHERE user_id = ?1 AND read = 0 AND message_seq <= ?2 GROUP BY room_id)
		SELECT r.room_id, r.name, r.created_by, r.created_at,
			(SELECT count(*) FROM messages m WHERE m.room_id = r.room_id AND m.seq > ms.last_read_seq AND m.seq <= ?2
				AND m.sender_id <> ms.user_id),
			coalesce(mentions.n, 0)
		FROM memberships ms JOIN rooms r ON r.room_id = ms.room_id
			LEFT JOIN mentions ON mentions.room_id = r.room_id
		WHERE ms.user_id = ?1 AND r.deleted_at IS NULL
		ORDER BY r.name, r.room_id`, userID, db.visibleSeq.Load())
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	rooms, err := sqlrow.Collect(rows, sqlrow.RoomListing)
	return rooms, classify(err)
}

// DeleteRoom soft-deletes a room; its webhooks' URLs then answer 404.
func (db *DB) DeleteRoom(ctx context.Context, roomID, actorID string, now time.Time) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE rooms SET deleted_at = ? WHERE room_id = ? AND deleted_at IS NULL`, ms(now), roomID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNoRoom()
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET deleted_at = ? WHERE room_id = ? AND deleted_at IS NULL`, ms(now), roomID); err != nil {
			return err
		}
		return audit(ctx, tx, roomID, carillon.AuditRoomDeleted, actorID, roomID, now)
	})
}

// MarkRead moves a member's read marker forward to messageID.
func (db *DB) MarkRead(ctx context.Context, roomID, userID, messageID string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var seq int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM messages WHERE message_id = ? AND room_id = ?`, messageID, roomID).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return carillon.Errorf(carillon.ENotFound, "No such message in this room.")
		}
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE memberships SET last_read_seq = max(last_read_seq, ?) WHERE room_id = ? AND user_id = ?`,
			seq, roomID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNoMember()
		}
		// Reading a room reads the mentions up to there too.
		_, err = tx.ExecContext(ctx, `UPDATE notifications SET read = 1
			WHERE user_id = ? AND room_id = ? AND message_seq <= ? AND read = 0`, userID, roomID, seq)
		return err
	})
}

// AddMember adds a user to a room.
func (db *DB) AddMember(ctx context.Context, m *carillon.Membership, actorID string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var active bool
		err := tx.QueryRowContext(ctx, `SELECT active FROM users WHERE user_id = ?`, m.UserID).Scan(&active)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && !active) {
			return carillon.Errorf(carillon.ENotFound, "No such user.")
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM memberships WHERE room_id = ?`, m.RoomID).Scan(&n); err != nil {
			return err
		}
		if n >= carillon.MaxMembersPerRoom {
			return carillon.Errorf(carillon.EResourceLimit, "A room has at most %d members.", carillon.MaxMembersPerRoom)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO memberships (room_id, user_id, role, created_at, last_read_seq)
			VALUES (?, ?, ?, ?, (SELECT coalesce(max(seq), 0) FROM messages))`,
			m.RoomID, m.UserID, m.Role, ms(m.CreatedAt))
		if isUniqueViolation(err) {
			return carillon.Errorf(carillon.EConflict, "This user is a member of the room already.")
		}
		if err != nil {
			return err
		}
		return audit(ctx, tx, m.RoomID, carillon.AuditMemberAdded, actorID, m.UserID, m.CreatedAt)
	})
}

const membershipColumns = sqlrow.MembershipColumns

func scanMembership(row sqlrow.Scanner) (*carillon.Membership, error) {
	m, err := sqlrow.Membership(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoMember()
	}
	return m, classify(err)
}

const membershipByIDs = `SELECT ` + membershipColumns + `
	FROM memberships ms JOIN users u ON u.user_id = ms.user_id JOIN rooms r ON r.room_id = ms.room_id
	WHERE ms.room_id = ? AND ms.user_id = ? AND r.deleted_at IS NULL`

func membershipQuery(ctx context.Context, q queryer, roomID, userID string) (*carillon.Membership, error) {
	return scanMembership(q.QueryRowContext(ctx, membershipByIDs, roomID, userID))
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Membership returns one membership.
func (db *DB) Membership(ctx context.Context, roomID, userID string) (*carillon.Membership, error) {
	return scanMembership(db.readRow(ctx, membershipByIDs, roomID, userID))
}

// Members lists a room's user members by full name.
func (db *DB) Members(ctx context.Context, roomID string) ([]carillon.Membership, error) {
	rows, err := db.readRows(ctx, `SELECT `+membershipColumns+`
		FROM memberships ms JOIN users u ON u.user_id = ms.user_id
		WHERE ms.room_id = ? ORDER BY u.full_name, u.user_id`, roomID)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	members := []carillon.Membership{}
	for rows.Next() {
		m, err := scanMembership(rows)
		if err != nil {
			return nil, err
		}
		members = append(members, *m)
	}
	return members, classify(rows.Err())
}

// CountMembers counts a room's user members.
func (db *DB) CountMembers(ctx context.Context, roomID string) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM memberships WHERE room_id = ?`, roomID).Scan(&n)
	return n, classify(err)
}

// lastAdministrator reports whether userID is the only Administrator of roomID.
func lastAdministrator(ctx context.Context, tx *sql.Tx, roomID, userID string) (bool, error) {
	var admins int
	var isAdmin bool
	err := tx.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM memberships WHERE room_id = ? AND role = ?),
			EXISTS (SELECT 1 FROM memberships WHERE room_id = ? AND user_id = ? AND role = ?)`,
		roomID, carillon.RoleAdministrator, roomID, userID, carillon.RoleAdministrator).Scan(&admins, &isAdmin)
	return isAdmin && admins == 1, err
}

// SetRole changes a member's role.
func (db *DB) SetRole(ctx context.Context, roomID, userID, role, actorID string, now time.Time) (*carillon.Membership, error) {
	var m *carillon.Membership
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if m, err = membershipQuery(ctx, tx, roomID, userID); err != nil {
			return err
		}
		if m.Role == role {
			return nil
		}
		if last, err := lastAdministrator(ctx, tx, roomID, userID); err != nil {
			return err
		} else if last {
			return carillon.Errorf(carillon.EConflict, "The last Administrator of a room cannot step down. Make another member Administrator first.")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE memberships SET role = ? WHERE room_id = ? AND user_id = ?`, role, roomID, userID); err != nil {
			return err
		}
		m.Role = role
		return audit(ctx, tx, roomID, carillon.AuditRoleChanged, actorID, userID, now)
	})
	return m, err
}

// RemoveMember removes a member from a room.
func (db *DB) RemoveMember(ctx context.Context, roomID, userID, actorID string, now time.Time) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		if last, err := lastAdministrator(ctx, tx, roomID, userID); err != nil {
			return err
		} else if last {
			return carillon.Errorf(carillon.EConflict, "The last Administrator cannot leave the room. Make another member Administrator first, or delete the room.")
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE room_id = ? AND user_id = ?`, roomID, userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errNoMember()
		}
		return audit(ctx, tx, roomID, carillon.AuditMemberRemoved, actorID, userID, now)
	})
}

func audit(ctx context.Context, tx *sql.Tx, roomID, action, actorID, targetID string, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_events (audit_event_id, room_id, action, actor_id, target_id, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, uuid.NewString(), roomID, action, actorID, targetID, ms(now))
	return err
}

// AuditEvents pages through a room's audit log, newest first.
func (db *DB) AuditEvents(ctx context.Context, roomID, after string, limit int) ([]carillon.AuditEvent, error) {
	var afterSeq int64 = 1 << 62
	if after != "" {
		err := db.read.QueryRowContext(ctx, `SELECT seq FROM audit_events WHERE audit_event_id = ? AND room_id = ?`, after, roomID).Scan(&afterSeq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, carillon.Errorf(carillon.EBadRequest, "NextToken is not valid for this room.")
		}
		if err != nil {
			return nil, classify(err)
		}
	}
	rows, err := db.read.QueryContext(ctx, `SELECT audit_event_id, room_id, action, actor_id, target_id, created_at
		FROM audit_events WHERE room_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`, roomID, afterSeq, limit+1)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	events := []carillon.AuditEvent{}
	for rows.Next() {
		var e carillon.AuditEvent
		var created int64
		if err := rows.Scan(&e.AuditEventID, &e.RoomID, &e.Action, &e.ActorID, &e.TargetID, &created); err != nil {
			return nil, classify(err)
		}
		e.CreatedAt = fromMS(created)
		events = append(events, e)
	}
	return events, classify(rows.Err())
}
