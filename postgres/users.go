package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

const userColumns = sqlrow.UserColumns

func errNoUser() error { return carillon.Errorf(carillon.ENotFound, "No such user.") }

func scanUser(row sqlrow.Scanner) (*carillon.User, error) {
	u, err := sqlrow.User(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errNoUser()
	}
	return u, classify(err)
}

// CreateUser stores a new user. A taken e-mail or alias (compared through
// the lower-cased key columns) is EConflict.
func (db *DB) CreateUser(ctx context.Context, u *carillon.User, passwordHash string, tokenHash []byte) error {
	return db.inTx(ctx, func(tx pgx.Tx) error {
		// ON CONFLICT rather than catching the unique violation: either
		// way the transaction ends, but this way a concurrent insert of the
		// same e-mail is waited for and then reported as a conflict.
		tag, err := tx.Exec(ctx, `INSERT INTO users
			(user_id, email, email_key, alias, alias_key, full_name, password_hash, is_admin, active, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT DO NOTHING`,
			u.UserID, u.Email, strings.ToLower(u.Email), u.Alias, strings.ToLower(u.Alias), u.FullName,
			passwordHash, u.IsAdmin, u.Active, ms(u.CreatedAt))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return carillon.Errorf(carillon.EConflict, "A user with this e-mail or alias exists already.")
		}
		if tokenHash != nil {
			_, err = tx.Exec(ctx, `INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)`,
				tokenHash, u.UserID, ms(u.CreatedAt))
		}
		return err
	})
}

// CountUsers counts all users.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var n int
	err := db.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, classify(err)
}

// User returns a user by id.
func (db *DB) User(ctx context.Context, userID string) (*carillon.User, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	return scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = $1`, userID))
}

// UserByEmail returns a user by e-mail, case-insensitively.
func (db *DB) UserByEmail(ctx context.Context, email string) (*carillon.User, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	return scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email_key = $1`,
		strings.ToLower(email)))
}

// PasswordHash returns a user's password hash.
func (db *DB) PasswordHash(ctx context.Context, userID string) (string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var h string
	err := db.pool.QueryRow(ctx, `SELECT password_hash FROM users WHERE user_id = $1`, userID).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", errNoUser()
	}
	return h, classify(err)
}

// UpdateUser applies upd.
func (db *DB) UpdateUser(ctx context.Context, userID string, upd carillon.UserUpdate) (*carillon.User, error) {
	var u *carillon.User
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var active bool
		// The row lock orders concurrent updates of one user; NO KEY leaves
		// foreign-key checks (new sessions, memberships) unblocked.
		err := tx.QueryRow(ctx, `SELECT active FROM users WHERE user_id = $1 FOR NO KEY UPDATE`, userID).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNoUser()
		}
		if err != nil {
			return err
		}
		if upd.FullName != nil {
			if _, err := tx.Exec(ctx, `UPDATE users SET full_name = $1 WHERE user_id = $2`, *upd.FullName, userID); err != nil {
				return err
			}
		}
		if upd.PasswordHash != nil {
			if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE user_id = $2`, *upd.PasswordHash, userID); err != nil {
				return err
			}
			keep := upd.KeepSession
			if keep == nil {
				keep = []byte{}
			}
			if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 AND session_hash <> $2`, userID, keep); err != nil {
				return err
			}
		}
		if upd.Active != nil {
			if _, err := tx.Exec(ctx, `UPDATE users SET active = $1 WHERE user_id = $2`, *upd.Active, userID); err != nil {
				return err
			}
			if !*upd.Active {
				if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `DELETE FROM api_tokens WHERE user_id = $1`, userID); err != nil {
					return err
				}
			}
		}
		u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = $1`, userID))
		return err
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// AddAPIToken adds an API token to a user; a token hash stored already is
// left as it is.
func (db *DB) AddAPIToken(ctx context.Context, userID string, tokenHash []byte) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := db.pool.Exec(ctx, `INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (token_hash) DO NOTHING`, tokenHash, userID, ms(time.Now()))
	return classify(err)
}

// UserByAPIToken returns the active owner of an API token.
func (db *DB) UserByAPIToken(ctx context.Context, tokenHash []byte) (*carillon.User, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	return scanUser(db.pool.QueryRow(ctx, `SELECT `+prefixed("u.", userColumns)+`
		FROM api_tokens t JOIN users u ON u.user_id = t.user_id
		WHERE t.token_hash = $1 AND u.active`, tokenHash))
}

// CreateSession stores a web session.
func (db *DB) CreateSession(ctx context.Context, sessionHash []byte, userID string, now time.Time) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := db.pool.Exec(ctx, `INSERT INTO sessions (session_hash, user_id, created_at, last_used_at) VALUES ($1, $2, $3, $4)`,
		sessionHash, userID, ms(now), ms(now))
	return classify(err)
}

// UserBySession returns the active owner of a live session and marks the
// session used. The mark is written at most once a minute per session, so
// that busy web clients do not write on every request.
func (db *DB) UserBySession(ctx context.Context, sessionHash []byte, now time.Time) (*carillon.User, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var lastUsed int64
	row := db.pool.QueryRow(ctx, `SELECT `+prefixed("u.", userColumns)+`, s.last_used_at
		FROM sessions s JOIN users u ON u.user_id = s.user_id
		WHERE s.session_hash = $1 AND u.active`, sessionHash)
	var u carillon.User
	var created int64
	err := row.Scan(&u.UserID, &u.Email, &u.Alias, &u.FullName, &u.IsAdmin, &u.Active, &created, &u.HasPassword, &lastUsed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, carillon.Errorf(carillon.EUnauthorized, "The session has ended. Log in again.")
	}
	if err != nil {
		return nil, classify(err)
	}
	u.CreatedAt = fromMS(created)
	if now.Sub(fromMS(lastUsed)) > carillon.SessionTTL {
		_ = db.DeleteSession(ctx, sessionHash)
		return nil, carillon.Errorf(carillon.EUnauthorized, "The session has ended. Log in again.")
	}
	if now.Sub(fromMS(lastUsed)) > time.Minute {
		// GREATEST: two nodes marking the same session at once leave the
		// later time.
		if _, err := db.pool.Exec(ctx, `UPDATE sessions SET last_used_at = GREATEST(last_used_at, $1) WHERE session_hash = $2`,
			ms(now), sessionHash); err != nil {
			return nil, classify(err)
		}
	}
	return &u, nil
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, sessionHash []byte) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := db.pool.Exec(ctx, `DELETE FROM sessions WHERE session_hash = $1`, sessionHash)
	return classify(err)
}

// prefixed qualifies each column of a comma-separated list with p.
func prefixed(p, columns string) string {
	parts := strings.Split(columns, ", ")
	for i, c := range parts {
		parts[i] = p + c
	}
	return strings.Join(parts, ", ")
}
