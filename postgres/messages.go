package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

// The message write path.
//
// A batch is one READ COMMITTED transaction of three round trips, whatever
// its size (plus BEGIN):
//
//  1. one pipelined pgx.Batch: lock the seq_counter row (reading the newest
//     seq and CreatedAt), then one statement per entry that checks its
//     conditions and, when they hold, claims its idempotency key;
//  2. one pipelined pgx.Batch: insert the accepted messages and their
//     notifications (one multi-row INSERT each) and move the counter;
//  3. COMMIT.
//
// The counter row is held from the first statement to the commit, so
// batches from every node commit one at a time, in the order they took the
// row, and each takes seqs right after the last committed one. Seq is
// therefore commit order: once a reader has seen seq N, every seq below N
// has committed (there are no gaps either, since seqs are handed out only
// to the entries that are stored). The lock is taken first, before any
// check, so that the checks see everything committed before the batch and
// batches never wait for each other in a circle (two batches claiming the
// same idempotency keys in opposite orders would otherwise deadlock).
//
// Conditions use ON CONFLICT and WHERE EXISTS rather than catching errors:
// in PostgreSQL one failed statement aborts the whole transaction, and with
// it the other entries of the batch.
const (
	lockCounter    = `SELECT value, last_created_at FROM seq_counter WHERE id = 1 FOR NO KEY UPDATE`
	advanceCounter = `UPDATE seq_counter SET value = $1, last_created_at = $2 WHERE id = 1`
	insertMessage  = `INSERT INTO messages
		(seq, message_id, room_id, sender_type, sender_id, sender_name, display_name, content, format, html, mentions, created_at)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::text[], $12::bigint[])`
	insertNotification = `INSERT INTO notifications
		(notification_id, user_id, message_id, message_seq, room_id, reason, read, created_at)
		SELECT n.id, n.user_id, n.message_id, n.seq, n.room_id, n.reason, false, n.created_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::bigint[])
			AS n (id, user_id, message_id, seq, room_id, reason, created_at)`
)

// appendOutcome is what one entry of a batch comes to, kept aside until
// the transaction commits (a retried transaction starts afresh).
type appendOutcome struct {
	err       error
	seq       int64
	createdAt time.Time
}

func errWebhookGone() error {
	return carillon.Errorf(carillon.ENotFound, "This webhook URL was regenerated or deleted. Ask a room administrator for the current URL.")
}

func errKeyTaken() error {
	return carillon.Errorf(carillon.EConflict, "This Idempotency-Key was used by another request.")
}

// AppendMessages commits a batch of messages in one transaction; see the
// comment above for how seq and CreatedAt follow commit order across
// nodes. Entries whose condition fails get their own Err and the rest
// commit; a returned error means nothing was committed and no entry was
// changed.
func (db *DB) AppendMessages(ctx context.Context, batch []*carillon.Append) error {
	if len(batch) == 0 {
		return nil
	}
	var out []appendOutcome
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = appendBatch(ctx, tx, batch)
		return err
	})
	if err != nil {
		return err
	}
	for i, a := range batch {
		a.Err = out[i].err
		if a.Err != nil {
			continue
		}
		m := a.Message
		m.Seq, m.CreatedAt = out[i].seq, out[i].createdAt
		for _, n := range a.Notifications {
			n.MessageSeq, n.MessageID, n.RoomID, n.CreatedAt = m.Seq, m.MessageID, m.RoomID, m.CreatedAt
		}
	}
	return nil
}

// appendBatch runs the statements of one batch in tx and returns each
// entry's outcome.
func appendBatch(ctx context.Context, tx pgx.Tx, batch []*carillon.Append) ([]appendOutcome, error) {
	out := make([]appendOutcome, len(batch))

	// Round trip 1: the counter lock, then the checks.
	checks := &pgx.Batch{}
	checks.Queue(lockCounter)
	checked := make([]bool, len(batch)) // whether a check statement was queued
	for i, a := range batch {
		if !storableEntry(a) {
			out[i].err = errBadText()
			continue
		}
		if query, args := checkStatement(a); query != "" {
			checks.Queue(query, args...)
			checked[i] = true
		}
	}
	var seq, lastMS int64
	br := tx.SendBatch(ctx, checks)
	err := br.QueryRow().Scan(&seq, &lastMS)
	for i := 0; err == nil && i < len(batch); i++ {
		if !checked[i] {
			continue
		}
		var webhookOK, memberOK, claimed bool
		if err = br.QueryRow().Scan(&webhookOK, &memberOK, &claimed); err != nil {
			break
		}
		switch {
		case !webhookOK:
			out[i].err = errWebhookGone()
		case !memberOK:
			out[i].err = errNoRoom()
		case !claimed:
			out[i].err = errKeyTaken()
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	// Seqs and times of the accepted entries, in batch order. CreatedAt
	// never goes below the newest one committed before (kept in the
	// counter row, so it holds across nodes and restarts); a refused entry
	// does not move it.
	last := fromMS(lastMS)
	var msgs messageColumnsBuf
	var notes notificationColumnsBuf
	for i, a := range batch {
		if out[i].err != nil {
			continue
		}
		m := a.Message
		seq++
		created := m.CreatedAt
		if created.Before(last) {
			created = last
		}
		last = created
		out[i].seq, out[i].createdAt = seq, created
		if err := msgs.add(m, seq, created); err != nil {
			return nil, err
		}
		for _, n := range a.Notifications {
			notes.add(n, m, seq, created)
		}
	}
	if len(msgs.seq) == 0 {
		return out, nil // nothing to store; the commit just ends the transaction
	}

	// Round trip 2: the inserts, and the counter moves on.
	writes := &pgx.Batch{}
	writes.Queue(insertMessage, msgs.seq, msgs.messageID, msgs.roomID, msgs.senderType, msgs.senderID, msgs.senderName,
		msgs.displayName, msgs.content, msgs.format, msgs.html, msgs.mentions, msgs.createdAt)
	if len(notes.id) > 0 {
		writes.Queue(insertNotification, notes.id, notes.userID, notes.messageID, notes.seq, notes.roomID, notes.reason, notes.createdAt)
	}
	writes.Queue(advanceCounter, seq, ms(last))
	if err := tx.SendBatch(ctx, writes).Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// checkStatement returns the statement that checks an entry's conditions
// and, when they hold, claims its idempotency key, with its arguments; ""
// when the entry has neither. The statement returns one row: whether the
// webhook condition holds, whether the membership condition holds, and
// whether the key was claimed (true for entries without a key).
//
// The key is inserted, or replaces a record older than the key's
// lifetime; a live record (from an earlier batch, or an earlier entry of
// this one) leaves the insert without a row, which is the conflict.
func checkStatement(a *carillon.Append) (string, []any) {
	if a.WebhookTokenHash == nil && !a.RequireMember && a.Idempotency == nil {
		return "", nil
	}
	m := a.Message
	var args []any
	param := func(v any, cast string) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args)) + cast
	}
	webhookOK, memberOK := "true", "true"
	if a.WebhookTokenHash != nil {
		webhookOK = `EXISTS (SELECT 1 FROM webhooks w JOIN rooms r ON r.room_id = w.room_id
			WHERE w.webhook_id = ` + param(m.SenderID, "::text") + ` AND w.token_hash = ` + param(a.WebhookTokenHash, "::bytea") + `
			AND w.deleted_at IS NULL AND r.deleted_at IS NULL)`
	}
	if a.RequireMember {
		memberOK = `EXISTS (SELECT 1 FROM memberships ms JOIN rooms r ON r.room_id = ms.room_id
			WHERE ms.room_id = ` + param(m.RoomID, "::text") + ` AND ms.user_id = ` + param(m.SenderID, "::text") + `
			AND r.deleted_at IS NULL)`
	}
	var q strings.Builder
	q.WriteString(`WITH c AS (SELECT ` + webhookOK + ` AS webhook_ok, ` + memberOK + ` AS member_ok)`)
	claimed := "true"
	if k := a.Idempotency; k != nil {
		q.WriteString(`, k AS (INSERT INTO idempotency_keys (sender_id, key, content_hash, message_id, room_id, created_at)
			SELECT ` + param(k.SenderID, "::text") + `, ` + param(k.Key, "::text") + `, ` + param(k.ContentHash, "::bytea") + `, ` +
			param(k.MessageID, "::text") + `, ` + param(k.RoomID, "::text") + `, ` + param(ms(k.CreatedAt), "::bigint") + `
			FROM c WHERE c.webhook_ok AND c.member_ok
			ON CONFLICT (sender_id, key) DO UPDATE SET content_hash = excluded.content_hash, message_id = excluded.message_id,
				room_id = excluded.room_id, created_at = excluded.created_at
			WHERE idempotency_keys.created_at < ` + param(ms(k.CreatedAt.Add(-carillon.IdempotencyKeyTTL)), "::bigint") + `
			RETURNING 1)`)
		claimed = `EXISTS (SELECT 1 FROM k)`
	}
	q.WriteString(` SELECT c.webhook_ok, c.member_ok, ` + claimed + ` FROM c`)
	return q.String(), args
}

// storableEntry reports whether PostgreSQL can store the entry's text. An
// entry it cannot store (NUL characters) is refused on its own, rather
// than failing the statement and with it the whole batch.
func storableEntry(a *carillon.Append) bool {
	m := a.Message
	for _, s := range []string{m.MessageID, m.RoomID, m.Content, m.Format, m.HTML, m.SenderType, m.SenderID, m.SenderName, m.DisplayName} {
		if !storable(s) {
			return false
		}
	}
	if k := a.Idempotency; k != nil && !(storable(k.SenderID) && storable(k.Key) && storable(k.MessageID) && storable(k.RoomID)) {
		return false
	}
	for _, n := range a.Notifications {
		if !(storable(n.NotificationID) && storable(n.UserID) && storable(n.Reason)) {
			return false
		}
	}
	return true
}

// messageColumnsBuf gathers the accepted messages of a batch column by
// column, for one INSERT … SELECT FROM unnest(…).
type messageColumnsBuf struct {
	seq, createdAt                                      []int64
	messageID, roomID, senderType, senderID, senderName []string
	displayName, content, format, html, mentions        []string
}

func (b *messageColumnsBuf) add(m *carillon.Message, seq int64, created time.Time) error {
	mentions, err := sqlrow.MentionsJSON(m.Mentions)
	if err != nil {
		return fmt.Errorf("mentions of message %s: %w", m.MessageID, err)
	}
	b.seq = append(b.seq, seq)
	b.createdAt = append(b.createdAt, ms(created))
	b.messageID = append(b.messageID, m.MessageID)
	b.roomID = append(b.roomID, m.RoomID)
	b.senderType = append(b.senderType, m.SenderType)
	b.senderID = append(b.senderID, m.SenderID)
	b.senderName = append(b.senderName, m.SenderName)
	b.displayName = append(b.displayName, m.DisplayName)
	b.content = append(b.content, m.Content)
	b.format = append(b.format, m.Format)
	b.html = append(b.html, m.HTML)
	b.mentions = append(b.mentions, mentions)
	return nil
}

// notificationColumnsBuf gathers the notifications of a batch's accepted
// messages column by column.
type notificationColumnsBuf struct {
	id, userID, messageID, roomID, reason []string
	seq, createdAt                        []int64
}

func (b *notificationColumnsBuf) add(n *carillon.Notification, m *carillon.Message, seq int64, created time.Time) {
	b.id = append(b.id, n.NotificationID)
	b.userID = append(b.userID, n.UserID)
	b.messageID = append(b.messageID, m.MessageID)
	b.roomID = append(b.roomID, m.RoomID)
	b.reason = append(b.reason, n.Reason)
	b.seq = append(b.seq, seq)
	b.createdAt = append(b.createdAt, ms(created))
}

const messageColumns = sqlrow.MessageColumns

// Messages pages through a room in seq (commit) order.
func (db *DB) Messages(ctx context.Context, roomID string, q carillon.MessageQuery) ([]carillon.Message, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	if q.Ascending {
		return queryMessages(ctx, db.pool, `SELECT `+messageColumns+` FROM messages WHERE room_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
			roomID, q.After, q.Limit)
	}
	before := q.After
	if before == 0 {
		before = math.MaxInt64
	}
	return queryMessages(ctx, db.pool, `SELECT `+messageColumns+` FROM messages WHERE room_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`,
		roomID, before, q.Limit)
}

// querier is what the pool and a transaction have in common.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// queryMessages runs a query selecting messageColumns.
func queryMessages(ctx context.Context, q querier, query string, args ...any) ([]carillon.Message, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	msgs, err := sqlrow.Collect(rows, sqlrow.Message)
	return msgs, classify(err)
}

// IdempotencyRecord returns a live idempotency record or nil.
func (db *DB) IdempotencyRecord(ctx context.Context, senderID, key string, since time.Time) (*carillon.IdempotencyRecord, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	r := carillon.IdempotencyRecord{SenderID: senderID, Key: key}
	var created int64
	err := db.pool.QueryRow(ctx, `SELECT content_hash, message_id, room_id, created_at FROM idempotency_keys
		WHERE sender_id = $1 AND key = $2 AND created_at >= $3`, senderID, key, ms(since)).
		Scan(&r.ContentHash, &r.MessageID, &r.RoomID, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, classify(err)
	}
	r.CreatedAt = fromMS(created)
	return &r, nil
}
