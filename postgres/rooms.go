package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

func errNoRoom() error { return carillon.Errorf(carillon.ENotFound, "No such room.") }

func errNoMember() error {
	return carillon.Errorf(carillon.ENotFound, "No such member in this room.")
}

// Locks, always taken in this order within a transaction so that two
// transactions never wait for each other in a circle:
//
//  1. the seq_counter row (lockMessageLog, or AppendMessages's own lock);
//  2. a room row (lockRoom);
//  3. webhook, membership and user rows.
//
// lockMessageLog orders the calling transaction against every
// AppendMessages batch: a batch holds the counter row exclusively from its
// first statement to its commit, and this share lock waits for it (and
// holds the next batch off until this transaction ends). Operations that
// can break an append's condition take it, so that a batch never commits a
// message whose webhook token was regenerated, or whose sender was
// removed, by a transaction that committed before it.
func lockMessageLog(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT 1 FROM seq_counter WHERE id = 1 FOR SHARE`)
	return err
}

// lockRoom locks a room row (deleted or not) for the rest of tx, so that
// checks on the room's members or webhooks and the writes that follow them
// are not interleaved with another node's. FOR NO KEY UPDATE leaves
// foreign-key checks (message inserts) unblocked. It reports whether the
// room exists.
func lockRoom(ctx context.Context, tx pgx.Tx, roomID string) (bool, error) {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM rooms WHERE room_id = $1 FOR NO KEY UPDATE`, roomID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// CreateRoom stores a room with its creator as Administrator.
func (db *DB) CreateRoom(ctx context.Context, room *carillon.Room) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO rooms (room_id, name, created_by, created_at) VALUES ($1, $2, $3, $4)`,
			room.RoomID, room.Name, room.CreatedBy, ms(room.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO memberships (room_id, user_id, role, created_at, last_read_seq)
			VALUES ($1, $2, $3, $4, (SELECT coalesce(max(seq), 0) FROM messages))`,
			room.RoomID, room.CreatedBy, carillon.RoleAdministrator, ms(room.CreatedAt))
		return err
	})
}

// Room returns a live room.
func (db *DB) Room(ctx context.Context, roomID string) (*carillon.Room, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var r carillon.Room
	var created int64
	err := db.pool.QueryRow(ctx, `SELECT room_id, name, created_by, created_at FROM rooms
		WHERE room_id = $1 AND deleted_at IS NULL`, roomID).Scan(&r.RoomID, &r.Name, &r.CreatedBy, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoRoom()
	}
	if err != nil {
		return nil, classify(err)
	}
	r.CreatedAt = fromMS(created)
	return &r, nil
}

// RoomsOfUser lists a user's rooms with unread counts, ordered by name.
// Names compare byte-wise (COLLATE "C"), as in SQLite, whatever the
// database's collation.
func (db *DB) RoomsOfUser(ctx context.Context, userID string) ([]carillon.Room, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT r.room_id, r.name, r.created_by, r.created_at,
			(SELECT count(*) FROM messages m WHERE m.room_id = r.room_id AND m.seq > ms.last_read_seq AND m.sender_id <> ms.user_id),
			(SELECT count(*) FROM notifications n WHERE n.user_id = ms.user_id AND n.room_id = r.room_id AND NOT n.read)
		FROM memberships ms JOIN rooms r ON r.room_id = ms.room_id
		WHERE ms.user_id = $1 AND r.deleted_at IS NULL
		ORDER BY r.name COLLATE "C", r.room_id`, userID)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	rooms, err := sqlrow.Collect(rows, sqlrow.RoomListing)
	return rooms, classify(err)
}

// DeleteRoom soft-deletes a room; its webhooks' URLs then answer 404.
func (db *DB) DeleteRoom(ctx context.Context, roomID, actorID string, now time.Time) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockMessageLog(ctx, tx); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE rooms SET deleted_at = $1 WHERE room_id = $2 AND deleted_at IS NULL`, ms(now), roomID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNoRoom()
		}
		if _, err := tx.Exec(ctx, `UPDATE webhooks SET deleted_at = $1 WHERE room_id = $2 AND deleted_at IS NULL`, ms(now), roomID); err != nil {
			return err
		}
		return audit(ctx, tx, roomID, carillon.AuditRoomDeleted, actorID, roomID, now)
	})
}

// MarkRead moves a member's read marker forward to messageID.
func (db *DB) MarkRead(ctx context.Context, roomID, userID, messageID string) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		var seq int64
		err := tx.QueryRow(ctx, `SELECT seq FROM messages WHERE message_id = $1 AND room_id = $2`, messageID, roomID).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return carillon.Errorf(carillon.ENotFound, "No such message in this room.")
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE memberships SET last_read_seq = GREATEST(last_read_seq, $1) WHERE room_id = $2 AND user_id = $3`,
			seq, roomID, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNoMember()
		}
		// Reading a room reads the mentions up to there too.
		_, err = tx.Exec(ctx, `UPDATE notifications SET read = true
			WHERE user_id = $1 AND room_id = $2 AND message_seq <= $3 AND NOT read`, userID, roomID, seq)
		return err
	})
}

// AddMember adds a user to a room. The room row is locked first, so that
// concurrent additions on several nodes cannot pass the member limit.
func (db *DB) AddMember(ctx context.Context, m *carillon.Membership, actorID string) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if ok, err := lockRoom(ctx, tx, m.RoomID); err != nil {
			return err
		} else if !ok {
			return errNoRoom()
		}
		var active bool
		err := tx.QueryRow(ctx, `SELECT active FROM users WHERE user_id = $1`, m.UserID).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !active) {
			return errNoUser()
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE room_id = $1`, m.RoomID).Scan(&n); err != nil {
			return err
		}
		if n >= carillon.MaxMembersPerRoom {
			return carillon.Errorf(carillon.EResourceLimit, "A room has at most %d members.", carillon.MaxMembersPerRoom)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO memberships (room_id, user_id, role, created_at, last_read_seq)
			VALUES ($1, $2, $3, $4, (SELECT coalesce(max(seq), 0) FROM messages))
			ON CONFLICT (room_id, user_id) DO NOTHING`,
			m.RoomID, m.UserID, m.Role, ms(m.CreatedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return carillon.Errorf(carillon.EConflict, "This user is a member of the room already.")
		}
		return audit(ctx, tx, m.RoomID, carillon.AuditMemberAdded, actorID, m.UserID, m.CreatedAt)
	})
}

const membershipColumns = sqlrow.MembershipColumns

func scanMembership(row sqlrow.Scanner) (*carillon.Membership, error) {
	m, err := sqlrow.Membership(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoMember()
	}
	return m, classify(err)
}

const membershipByIDs = `SELECT ` + membershipColumns + `
	FROM memberships ms JOIN users u ON u.user_id = ms.user_id JOIN rooms r ON r.room_id = ms.room_id
	WHERE ms.room_id = $1 AND ms.user_id = $2 AND r.deleted_at IS NULL`

// Membership returns one membership.
func (db *DB) Membership(ctx context.Context, roomID, userID string) (*carillon.Membership, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	return scanMembership(db.pool.QueryRow(ctx, membershipByIDs, roomID, userID))
}

// Members lists a room's user members by full name (byte-wise, as in
// SQLite).
func (db *DB) Members(ctx context.Context, roomID string) ([]carillon.Membership, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT `+membershipColumns+`
		FROM memberships ms JOIN users u ON u.user_id = ms.user_id
		WHERE ms.room_id = $1 ORDER BY u.full_name COLLATE "C", u.user_id`, roomID)
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
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE room_id = $1`, roomID).Scan(&n)
	return n, classify(err)
}

// lastAdministrator reports whether userID is the only Administrator of
// roomID. The caller holds the room's lock, so the answer stays true until
// it commits.
func lastAdministrator(ctx context.Context, tx pgx.Tx, roomID, userID string) (bool, error) {
	var admins int
	var isAdmin bool
	err := tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM memberships WHERE room_id = $1 AND role = $2),
			EXISTS (SELECT 1 FROM memberships WHERE room_id = $1 AND user_id = $3 AND role = $2)`,
		roomID, carillon.RoleAdministrator, userID).Scan(&admins, &isAdmin)
	return isAdmin && admins == 1, err
}

// SetRole changes a member's role.
func (db *DB) SetRole(ctx context.Context, roomID, userID, role, actorID string, now time.Time) (*carillon.Membership, error) {
	var m *carillon.Membership
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := lockRoom(ctx, tx, roomID); err != nil {
			return err
		}
		var err error
		if m, err = scanMembership(tx.QueryRow(ctx, membershipByIDs, roomID, userID)); err != nil {
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
		if _, err := tx.Exec(ctx, `UPDATE memberships SET role = $1 WHERE room_id = $2 AND user_id = $3`, role, roomID, userID); err != nil {
			return err
		}
		m.Role = role
		return audit(ctx, tx, roomID, carillon.AuditRoleChanged, actorID, userID, now)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// RemoveMember removes a member from a room. It is ordered against message
// batches (lockMessageLog): a message of the removed member that commits
// after it is refused.
func (db *DB) RemoveMember(ctx context.Context, roomID, userID, actorID string, now time.Time) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockMessageLog(ctx, tx); err != nil {
			return err
		}
		if _, err := lockRoom(ctx, tx, roomID); err != nil {
			return err
		}
		if last, err := lastAdministrator(ctx, tx, roomID, userID); err != nil {
			return err
		} else if last {
			return carillon.Errorf(carillon.EConflict, "The last Administrator cannot leave the room. Make another member Administrator first, or delete the room.")
		}
		tag, err := tx.Exec(ctx, `DELETE FROM memberships WHERE room_id = $1 AND user_id = $2`, roomID, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errNoMember()
		}
		return audit(ctx, tx, roomID, carillon.AuditMemberRemoved, actorID, userID, now)
	})
}

// audit records an action in a room's log. Events are ordered by an
// identity column: events of one room written concurrently by transactions
// that do not share a lock (renames of two webhooks) may commit in the
// other order, which only matters to a reader paging at that very moment.
func audit(ctx context.Context, tx pgx.Tx, roomID, action, actorID, targetID string, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO audit_events (audit_event_id, room_id, action, actor_id, target_id, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, uuid.NewString(), roomID, action, actorID, targetID, ms(now))
	return err
}

// AuditEvents pages through a room's audit log, newest first.
func (db *DB) AuditEvents(ctx context.Context, roomID, after string, limit int) ([]carillon.AuditEvent, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var afterSeq int64 = 1 << 62
	if after != "" {
		err := db.pool.QueryRow(ctx, `SELECT seq FROM audit_events WHERE audit_event_id = $1 AND room_id = $2`, after, roomID).Scan(&afterSeq)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, carillon.Errorf(carillon.EBadRequest, "NextToken is not valid for this room.")
		}
		if err != nil {
			return nil, classify(err)
		}
	}
	rows, err := db.pool.Query(ctx, `SELECT audit_event_id, room_id, action, actor_id, target_id, created_at
		FROM audit_events WHERE room_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, roomID, afterSeq, limit+1)
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
