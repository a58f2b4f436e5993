package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/sqlrow"
)

const userColumns = sqlrow.UserColumns

func scanUser(row sqlrow.Scanner) (*carillon.User, error) {
	u, err := sqlrow.User(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, carillon.Errorf(carillon.ENotFound, "No such user.")
	}
	return u, classify(err)
}

// CreateUser stores a new user.
func (db *DB) CreateUser(ctx context.Context, u *carillon.User, passwordHash string, tokenHash []byte) error {
	return db.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users
			(user_id, email, email_key, alias, alias_key, full_name, password_hash, is_admin, active, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.UserID, u.Email, strings.ToLower(u.Email), u.Alias, strings.ToLower(u.Alias), u.FullName,
			passwordHash, boolInt(u.IsAdmin), boolInt(u.Active), ms(u.CreatedAt))
		if isUniqueViolation(err) {
			return carillon.Errorf(carillon.EConflict, "A user with this e-mail or alias exists already.")
		}
		if err != nil {
			return err
		}
		if tokenHash != nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES (?, ?, ?)`,
				tokenHash, u.UserID, ms(u.CreatedAt))
		}
		return err
	})
}

// CountUsers counts all users.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, classify(err)
}

// User returns a user by id.
func (db *DB) User(ctx context.Context, userID string) (*carillon.User, error) {
	return scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = ?`, userID))
}

// UserByEmail returns a user by e-mail, case-insensitively.
func (db *DB) UserByEmail(ctx context.Context, email string) (*carillon.User, error) {
	return scanUser(db.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email_key = ?`,
		strings.ToLower(email)))
}

// PasswordHash returns a user's password hash.
func (db *DB) PasswordHash(ctx context.Context, userID string) (string, error) {
	var h string
	err := db.read.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE user_id = ?`, userID).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", carillon.Errorf(carillon.ENotFound, "No such user.")
	}
	return h, classify(err)
}

// UpdateUser applies upd.
func (db *DB) UpdateUser(ctx context.Context, userID string, upd carillon.UserUpdate) (*carillon.User, error) {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE user_id = ?`, userID).Scan(&exists); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return carillon.Errorf(carillon.ENotFound, "No such user.")
			}
			return err
		}
		if upd.FullName != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET full_name = ? WHERE user_id = ?`, *upd.FullName, userID); err != nil {
				return err
			}
		}
		if upd.PasswordHash != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE user_id = ?`, *upd.PasswordHash, userID); err != nil {
				return err
			}
			keep := upd.KeepSession
			if keep == nil {
				keep = []byte{}
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND session_hash <> ?`, userID, keep); err != nil {
				return err
			}
		}
		if upd.Active != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE users SET active = ? WHERE user_id = ?`, boolInt(*upd.Active), userID); err != nil {
				return err
			}
			if !*upd.Active {
				if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ?`, userID); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return scanUser(db.write.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE user_id = ?`, userID))
}

// AddAPIToken adds an API token to a user.
func (db *DB) AddAPIToken(ctx context.Context, userID string, tokenHash []byte) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO api_tokens (token_hash, user_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (token_hash) DO NOTHING`, tokenHash, userID, ms(time.Now()))
	return classify(err)
}

// UserByAPIToken returns the active owner of an API token.
func (db *DB) UserByAPIToken(ctx context.Context, tokenHash []byte) (*carillon.User, error) {
	return scanUser(db.readRow(ctx, `SELECT `+prefixed("u.", userColumns)+`
		FROM api_tokens t JOIN users u ON u.user_id = t.user_id
		WHERE t.token_hash = ? AND u.active = 1`, tokenHash))
}

// CreateSession stores a web session.
func (db *DB) CreateSession(ctx context.Context, sessionHash []byte, userID string, now time.Time) error {
	_, err := db.write.ExecContext(ctx, `INSERT INTO sessions (session_hash, user_id, created_at, last_used_at) VALUES (?, ?, ?, ?)`,
		sessionHash, userID, ms(now), ms(now))
	return classify(err)
}

// UserBySession returns the active owner of a live session and marks the
// session used. To spare the single writer, the mark is written at most
// once a minute per session.
func (db *DB) UserBySession(ctx context.Context, sessionHash []byte, now time.Time) (*carillon.User, error) {
	var lastUsed int64
	row := db.readRow(ctx, `SELECT `+prefixed("u.", userColumns)+`, s.last_used_at
		FROM sessions s JOIN users u ON u.user_id = s.user_id
		WHERE s.session_hash = ? AND u.active = 1`, sessionHash)
	var u carillon.User
	var created int64
	err := row.Scan(&u.UserID, &u.Email, &u.Alias, &u.FullName, &u.IsAdmin, &u.Active, &created, &u.HasPassword, &lastUsed)
	if errors.Is(err, sql.ErrNoRows) {
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
		if _, err := db.write.ExecContext(ctx, `UPDATE sessions SET last_used_at = ? WHERE session_hash = ?`, ms(now), sessionHash); err != nil {
			return nil, classify(err)
		}
	}
	return &u, nil
}

// DeleteSession ends a session.
func (db *DB) DeleteSession(ctx context.Context, sessionHash []byte) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM sessions WHERE session_hash = ?`, sessionHash)
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
