package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync/atomic"
	"time"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

// The statements of the message write path, prepared once at open.
const (
	appendWebhookCheck = `SELECT EXISTS (SELECT 1 FROM webhooks w JOIN rooms r ON r.room_id = w.room_id
			WHERE w.webhook_id = ? AND w.token_hash = ? AND w.deleted_at IS NULL AND r.deleted_at IS NULL)`
	appendMemberCheck = `SELECT EXISTS (SELECT 1 FROM memberships ms JOIN rooms r ON r.room_id = ms.room_id
			WHERE ms.room_id = ? AND ms.user_id = ? AND r.deleted_at IS NULL)`
	appendIdempotencyKey = `INSERT INTO idempotency_keys (sender_id, key, content_hash, message_id, room_id, created_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (sender_id, key) DO UPDATE SET content_hash = excluded.content_hash, message_id = excluded.message_id,
				room_id = excluded.room_id, created_at = excluded.created_at
			WHERE idempotency_keys.created_at < ?`
	appendMessage = `INSERT INTO messages
		(message_id, room_id, sender_type, sender_id, sender_name, display_name, content, format, html, mentions, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	appendWebhookMessage = `INSERT INTO messages
		(message_id, room_id, sender_type, sender_id, sender_name, display_name, content, format, html, mentions, created_at)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
		WHERE EXISTS (SELECT 1 FROM webhooks w JOIN rooms r ON r.room_id = w.room_id
			WHERE w.webhook_id = ? AND w.token_hash = ? AND w.deleted_at IS NULL AND r.deleted_at IS NULL)`
)

// AppendMessages commits a batch of messages in one transaction.
func (db *DB) AppendMessages(ctx context.Context, batch []*carillon.Append) error {
	db.appendMu.Lock()
	defer db.appendMu.Unlock()
	return db.appendMessages(ctx, db.write, batch, true)
}

// appendMessages commits a batch in a transaction begun on b. The caller
// holds appendMu, taken before the write connection by every path. synced
// tells whether the commit is on disk when it returns (synchronous=FULL).
func (db *DB) appendMessages(ctx context.Context, b txBeginner, batch []*carillon.Append, synced bool) error {
	last := db.lastCreated
	err := inTxOn(ctx, b, func(tx *sql.Tx) error {
		last = db.lastCreated
		for _, a := range batch {
			a.Err = nil
			if err := db.appendOne(ctx, tx, a, &last); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	db.lastCreated = last
	var newest int64
	for _, a := range batch {
		if a.Err == nil {
			newest = max(newest, a.Message.Seq)
		}
	}
	db.noteCommitted(newest, synced)
	return nil
}

// noteCommitted records that messages up to seq are committed and, when
// synced, on disk: readers then see them.
func (db *DB) noteCommitted(seq int64, synced bool) {
	raise(&db.committedSeq, seq)
	if synced {
		// A synced commit fsyncs the whole WAL, earlier unsynced commits
		// included.
		raise(&db.visibleSeq, db.committedSeq.Load())
	}
}

// raise sets v to n unless it holds more already.
func raise(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// appendOne stores one entry of a batch. Failed conditions are recorded in
// a.Err; a returned error aborts the batch.
func (db *DB) appendOne(ctx context.Context, tx *sql.Tx, a *carillon.Append, last *time.Time) error {
	m := a.Message
	var ok bool
	// Most webhook messages carry no idempotency key: for them one
	// statement both checks the token and inserts.
	checkInInsert := a.WebhookTokenHash != nil && a.Idempotency == nil && !a.RequireMember
	gone := func() {
		a.Err = carillon.Errorf(carillon.ENotFound, "This webhook URL was regenerated or deleted. Ask a room administrator for the current URL.")
	}
	if a.WebhookTokenHash != nil && !checkInInsert {
		err := db.txQueryRow(ctx, tx, appendWebhookCheck,
			m.SenderID, a.WebhookTokenHash).Scan(&ok)
		if err != nil {
			return err
		}
		if !ok {
			gone()
			return nil
		}
	}
	if a.RequireMember {
		err := db.txQueryRow(ctx, tx, appendMemberCheck, m.RoomID, m.SenderID).Scan(&ok)
		if err != nil {
			return err
		}
		if !ok {
			a.Err = errNoRoom()
			return nil
		}
	}
	if k := a.Idempotency; k != nil {
		// A record older than the key's lifetime may be replaced.
		res, err := db.txExec(ctx, tx, appendIdempotencyKey,
			k.SenderID, k.Key, k.ContentHash, k.MessageID, k.RoomID, ms(k.CreatedAt), ms(k.CreatedAt.Add(-carillon.IdempotencyKeyTTL)))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			a.Err = carillon.Errorf(carillon.EConflict, "This Idempotency-Key was used by another request.")
			return nil
		}
	}
	// Commit order is the order of CreatedTimestamp too.
	if m.CreatedAt.Before(*last) {
		m.CreatedAt = *last
	}
	mentions, err := sqlrow.MentionsJSON(m.Mentions)
	if err != nil {
		return err
	}
	args := []any{m.MessageID, m.RoomID, m.SenderType, m.SenderID, m.SenderName, m.DisplayName, m.Content, m.Format, m.HTML,
		mentions, ms(m.CreatedAt)}
	query := appendMessage
	if checkInInsert {
		query, args = appendWebhookMessage, append(args, m.SenderID, a.WebhookTokenHash)
	}
	res, err := db.txExec(ctx, tx, query, args...)
	if err != nil {
		return err
	}
	if checkInInsert {
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			gone()
			return nil
		}
	}
	if m.Seq, err = res.LastInsertId(); err != nil {
		return err
	}
	if err := db.insertNotifications(ctx, tx, m, a.Notifications); err != nil {
		return err
	}
	*last = m.CreatedAt
	return nil
}

const messageColumns = sqlrow.MessageColumns

// Messages pages through a room.
func (db *DB) Messages(ctx context.Context, roomID string, q carillon.MessageQuery) ([]carillon.Message, error) {
	visible := db.visibleSeq.Load()
	if q.Ascending {
		return queryMessages(ctx, db.read, `SELECT `+messageColumns+` FROM messages WHERE room_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
			roomID, q.After, visible, q.Limit)
	}
	before := visible + 1
	if q.After != 0 {
		before = min(q.After, before)
	}
	return queryMessages(ctx, db.read, `SELECT `+messageColumns+` FROM messages WHERE room_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
		roomID, before, q.Limit)
}

type rowsQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryMessages runs a query selecting messageColumns.
func queryMessages(ctx context.Context, q rowsQueryer, query string, args ...any) ([]carillon.Message, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	msgs, err := sqlrow.Collect(rows, sqlrow.Message)
	return msgs, classify(err)
}

// IdempotencyRecord returns a live idempotency record or nil.
func (db *DB) IdempotencyRecord(ctx context.Context, senderID, key string, since time.Time) (*carillon.IdempotencyRecord, error) {
	r := carillon.IdempotencyRecord{SenderID: senderID, Key: key}
	var created int64
	err := db.readRow(ctx, `SELECT content_hash, message_id, room_id, created_at FROM idempotency_keys
		WHERE sender_id = ? AND key = ? AND created_at >= ?`, senderID, key, ms(since)).
		Scan(&r.ContentHash, &r.MessageID, &r.RoomID, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err)
	}
	r.CreatedAt = fromMS(created)
	return &r, nil
}
