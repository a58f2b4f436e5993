package postgres

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

func errNoWebhook() error { return carillon.Errorf(carillon.ENotFound, "No such webhook.") }

const webhookColumns = sqlrow.WebhookColumns

func scanWebhook(row sqlrow.Scanner) (*carillon.Webhook, error) {
	w, err := sqlrow.Webhook(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoWebhook()
	}
	return w, classify(err)
}

const webhookByID = `SELECT ` + webhookColumns + `
	FROM webhooks w JOIN rooms r ON r.room_id = w.room_id WHERE w.webhook_id = $1`

// CreateWebhook stores a new webhook and its first token hash. The room row
// is locked first, so that concurrent creations on several nodes cannot
// pass the limit of webhooks per room.
func (db *DB) CreateWebhook(ctx context.Context, w *carillon.Webhook, actorID string) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if ok, err := lockRoom(ctx, tx, w.RoomID); err != nil {
			return err
		} else if !ok {
			return errNoRoom()
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhooks WHERE room_id = $1 AND deleted_at IS NULL`, w.RoomID).Scan(&n); err != nil {
			return err
		}
		if n >= carillon.MaxWebhooksPerRoom {
			return carillon.Errorf(carillon.EResourceLimit,
				"A room has at most %d webhooks. Delete one before adding another.", carillon.MaxWebhooksPerRoom)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhooks (webhook_id, room_id, name, token_hash, token_seal, created_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, w.WebhookID, w.RoomID, w.Name, w.TokenHash, w.TokenSeal, ms(w.CreatedAt)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_tokens (token_hash, webhook_id, created_at) VALUES ($1, $2, $3)`,
			w.TokenHash, w.WebhookID, ms(w.CreatedAt)); err != nil {
			return err
		}
		return audit(ctx, tx, w.RoomID, carillon.AuditWebhookCreated, actorID, w.WebhookID, w.CreatedAt)
	})
}

// Webhook returns a webhook, tombstones included.
func (db *DB) Webhook(ctx context.Context, webhookID string) (*carillon.Webhook, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	return scanWebhook(db.pool.QueryRow(ctx, webhookByID, webhookID))
}

// WebhooksOfRoom lists a room's live webhooks by name (byte-wise, as in
// SQLite).
func (db *DB) WebhooksOfRoom(ctx context.Context, roomID string) ([]carillon.Webhook, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, `SELECT `+webhookColumns+`
		FROM webhooks w JOIN rooms r ON r.room_id = w.room_id
		WHERE w.room_id = $1 AND w.deleted_at IS NULL AND r.deleted_at IS NULL
		ORDER BY w.name COLLATE "C", w.created_at, w.webhook_id`, roomID)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	hooks := []carillon.Webhook{}
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		hooks = append(hooks, *w)
	}
	return hooks, classify(rows.Err())
}

// liveWebhook loads and locks a webhook inside tx, ENotFound if it is
// deleted. The lock orders renames, regenerations and deletions of one
// webhook across nodes.
func liveWebhook(ctx context.Context, tx pgx.Tx, webhookID string) (*carillon.Webhook, error) {
	w, err := scanWebhook(tx.QueryRow(ctx, webhookByID+` FOR NO KEY UPDATE OF w`, webhookID))
	if err != nil {
		return nil, err
	}
	if w.DeletedAt != nil {
		return nil, errNoWebhook()
	}
	return w, nil
}

// RenameWebhook renames a webhook.
func (db *DB) RenameWebhook(ctx context.Context, webhookID, name, actorID string, now time.Time) (*carillon.Webhook, error) {
	var w *carillon.Webhook
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if w, err = liveWebhook(ctx, tx, webhookID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhooks SET name = $1 WHERE webhook_id = $2`, name, webhookID); err != nil {
			return err
		}
		w.Name = name
		return audit(ctx, tx, w.RoomID, carillon.AuditWebhookRenamed, actorID, webhookID, now)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// RegenerateWebhook gives a webhook a new token, keeping the old hash. It
// is ordered against message batches (lockMessageLog): once it has
// committed, no batch on any node stores a message under the old token.
func (db *DB) RegenerateWebhook(ctx context.Context, webhookID string, tokenHash, tokenSeal []byte, actorID string, now time.Time) (*carillon.Webhook, error) {
	var w *carillon.Webhook
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockMessageLog(ctx, tx); err != nil {
			return err
		}
		var err error
		if w, err = liveWebhook(ctx, tx, webhookID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhooks SET token_hash = $1, token_seal = $2 WHERE webhook_id = $3`,
			tokenHash, tokenSeal, webhookID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_tokens (token_hash, webhook_id, created_at) VALUES ($1, $2, $3)`,
			tokenHash, webhookID, ms(now)); err != nil {
			return err
		}
		w.TokenHash, w.TokenSeal = tokenHash, tokenSeal
		return audit(ctx, tx, w.RoomID, carillon.AuditWebhookRegenerated, actorID, webhookID, now)
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// DeleteWebhook leaves a tombstone of the webhook. Like RegenerateWebhook
// it is ordered against message batches.
func (db *DB) DeleteWebhook(ctx context.Context, webhookID, actorID string, now time.Time) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockMessageLog(ctx, tx); err != nil {
			return err
		}
		w, err := liveWebhook(ctx, tx, webhookID)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhooks SET deleted_at = $1 WHERE webhook_id = $2`, ms(now), webhookID); err != nil {
			return err
		}
		return audit(ctx, tx, w.RoomID, carillon.AuditWebhookDeleted, actorID, webhookID, now)
	})
}

// WebhookHadToken reports whether a token hash ever belonged to a webhook.
func (db *DB) WebhookHadToken(ctx context.Context, webhookID string, tokenHash []byte) (bool, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var had bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_tokens WHERE token_hash = $1 AND webhook_id = $2)`,
		tokenHash, webhookID).Scan(&had)
	return had, classify(err)
}

// TouchWebhooks records last-used times; a time never moves backwards.
// Rows are updated in id order, so that two nodes touching overlapping sets
// lock them in the same order.
func (db *DB) TouchWebhooks(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	ids := make([]string, 0, len(lastUsed))
	for id := range lastUsed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return db.inTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, id := range ids {
			b.Queue(`UPDATE webhooks SET last_used_at = GREATEST(coalesce(last_used_at, 0), $1) WHERE webhook_id = $2`,
				ms(lastUsed[id]), id)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}
