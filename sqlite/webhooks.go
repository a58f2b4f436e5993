package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

func errNoWebhook() error { return carillon.Errorf(carillon.ENotFound, "No such webhook.") }

const webhookColumns = sqlrow.WebhookColumns

func scanWebhook(row sqlrow.Scanner) (*carillon.Webhook, error) {
	w, err := sqlrow.Webhook(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNoWebhook()
	}
	return w, classify(err)
}

const webhookByID = `SELECT ` + webhookColumns + `
	FROM webhooks w JOIN rooms r ON r.room_id = w.room_id WHERE w.webhook_id = ?`

func webhookQuery(ctx context.Context, q queryer, webhookID string) (*carillon.Webhook, error) {
	return scanWebhook(q.QueryRowContext(ctx, webhookByID, webhookID))
}

// CreateWebhook stores a new webhook and its first token hash.
func (db *DB) CreateWebhook(ctx context.Context, w *carillon.Webhook, actorID string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhooks WHERE room_id = ? AND deleted_at IS NULL`, w.RoomID).Scan(&n); err != nil {
			return err
		}
		if n >= carillon.MaxWebhooksPerRoom {
			return carillon.Errorf(carillon.EResourceLimit,
				"A room has at most %d webhooks. Delete one before adding another.", carillon.MaxWebhooksPerRoom)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks (webhook_id, room_id, name, token_hash, token_seal, created_at)
			VALUES (?, ?, ?, ?, ?, ?)`, w.WebhookID, w.RoomID, w.Name, w.TokenHash, w.TokenSeal, ms(w.CreatedAt)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_tokens (token_hash, webhook_id, created_at) VALUES (?, ?, ?)`,
			w.TokenHash, w.WebhookID, ms(w.CreatedAt)); err != nil {
			return err
		}
		return audit(ctx, tx, w.RoomID, carillon.AuditWebhookCreated, actorID, w.WebhookID, w.CreatedAt)
	})
}

// Webhook returns a webhook, tombstones included.
func (db *DB) Webhook(ctx context.Context, webhookID string) (*carillon.Webhook, error) {
	return scanWebhook(db.readRow(ctx, webhookByID, webhookID))
}

// WebhooksOfRoom lists a room's live webhooks by name.
func (db *DB) WebhooksOfRoom(ctx context.Context, roomID string) ([]carillon.Webhook, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+webhookColumns+`
		FROM webhooks w JOIN rooms r ON r.room_id = w.room_id
		WHERE w.room_id = ? AND w.deleted_at IS NULL AND r.deleted_at IS NULL
		ORDER BY w.name, w.created_at, w.webhook_id`, roomID)
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

// liveWebhook loads a webhook inside tx, ENotFound if it is deleted.
func liveWebhook(ctx context.Context, tx *sql.Tx, webhookID string) (*carillon.Webhook, error) {
	w, err := webhookQuery(ctx, tx, webhookID)
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
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if w, err = liveWebhook(ctx, tx, webhookID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET name = ? WHERE webhook_id = ?`, name, webhookID); err != nil {
			return err
		}
		w.Name = name
		return audit(ctx, tx, w.RoomID, carillon.AuditWebhookRenamed, actorID, webhookID, now)
	})
	return w, err
}

// RegenerateWebhook gives a webhook a new token, keeping the old hash.
func (db *DB) RegenerateWebhook(ctx context.Context, webhookID string, tokenHash, tokenSeal []byte, actorID string, now time.Time) (*carillon.Webhook, error) {
	var w *carillon.Webhook
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if w, err = liveWebhook(ctx, tx, webhookID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET token_hash = ?, token_seal = ? WHERE webhook_id = ?`,
			tokenHash, tokenSeal, webhookID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_tokens (token_hash, webhook_id, created_at) VALUES (?, ?, ?)`,
			tokenHash, webhookID, ms(now)); err != nil {
			return err
		}
		w.TokenHash, w.TokenSeal = tokenHash, tokenSeal
		return audit(ctx, tx, w.RoomID, carillon.AuditWebhookRegenerated, actorID, webhookID, now)
	})
	return w, err
}

// DeleteWebhook leaves a tombstone of the webhook.
func (db *DB) DeleteWebhook(ctx context.Context, webhookID, actorID string, now time.Time) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		w, err := liveWebhook(ctx, tx, webhookID)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET deleted_at = ? WHERE webhook_id = ?`, ms(now), webhookID); err != nil {
			return err
		}
		return audit(ctx, tx, w.RoomID, carillon.AuditWebhookDeleted, actorID, webhookID, now)
	})
}

// WebhookHadToken reports whether a token hash ever belonged to a webhook.
func (db *DB) WebhookHadToken(ctx context.Context, webhookID string, tokenHash []byte) (bool, error) {
	var one int
	err := db.readRow(ctx, `SELECT 1 FROM webhook_tokens WHERE token_hash = ? AND webhook_id = ?`,
		tokenHash, webhookID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, classify(err)
}

// TouchWebhooks records last-used times.
func (db *DB) TouchWebhooks(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	return db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE webhooks SET last_used_at = max(coalesce(last_used_at, 0), ?) WHERE webhook_id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for id, t := range lastUsed {
			if _, err := stmt.ExecContext(ctx, ms(t), id); err != nil {
				return err
			}
		}
		return nil
	})
}
