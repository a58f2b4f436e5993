// Package postgres is the clustered storage backend of Carillon: any number
// of carillon nodes share one PostgreSQL database through pgxpool.
//
// It passes the same contract suite (package storetest) as the SQLite
// backend, and keeps its semantics where several nodes write at once:
//
//   - Message seqs are commit order across all nodes. They come from the
//     one row of seq_counter, which every AppendMessages transaction locks
//     first and updates last (see messages.go); a reader paging by seq can
//     therefore never skip a row that commits later with a smaller seq, as
//     it could with a PostgreSQL sequence. CreatedAt never decreases along
//     seq: the counter row also keeps the newest CreatedAt.
//   - An append's conditions (webhook token still current, sender still a
//     member) hold at commit: the operations that could break them take the
//     counter row in share mode, so they are ordered strictly before or
//     after each batch.
//   - Limits and "last Administrator" checks lock the room row, so
//     concurrent requests on different nodes cannot both pass them.
//
// Write transactions run at READ COMMITTED whatever the server's default,
// because the locking above relies on each statement seeing what committed
// before it started; deadlocks and serialization failures are retried.
// Errors that mean "cannot serve now" (server unreachable or restarting,
// read-only, disk full, out of connections, timeouts) wrap
// carillon.ErrUnavailable, so that callers answer 503 and retry.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jackc/puddle/v2"
	"github.com/pressly/goose/v3"

	"github.com/carillon-chat/carillon"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a Store backed by a PostgreSQL database.
type DB struct {
	pool      *pgxpool.Pool
	closeOnce sync.Once
}

var _ carillon.Store = (*DB)(nil)

// Session settings applied unless the DSN sets them. They bound how long
// a node that stops answering in the middle of a transaction (frozen,
// partitioned) can hold the counter row or another lock: without them the
// other nodes would wait for TCP keep-alive, hours by default.
var defaultRuntimeParams = map[string]string{
	"application_name":                    "carillon",
	"idle_in_transaction_session_timeout": "15000", // ms
	"lock_timeout":                        "10000", // ms
}

// defaultConnectTimeout applies when the DSN has no connect_timeout, so
// that an unreachable server is reported (503) rather than waited for.
const defaultConnectTimeout = 5 * time.Second

// opTimeout bounds a store call whose context has no deadline (the message
// writer commits with a background context): a call that has not finished
// by then is reported as unavailable.
const opTimeout = 30 * time.Second

// Open connects to the database at dsn (a postgres:// URL or libpq
// key=value string; pgxpool settings such as pool_max_conns are accepted)
// and applies any pending migrations. Several nodes may open the same
// database at once: migrations run under an advisory lock.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx leaves the password out of its parse errors.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	for k, v := range defaultRuntimeParams {
		if _, ok := cfg.ConnConfig.RuntimeParams[k]; !ok {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", classify(err))
	}
	db := &DB{pool: pool}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) migrate(ctx context.Context) error {
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err) // embedded at build time
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub,
		goose.WithSessionLocker(migrationLock{}), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", classify(err))
	}
	return nil
}

// migrationLock serializes the migrations of nodes starting together with
// a session advisory lock. Unlike goose's own PostgreSQL locker it waits
// for the lock rather than polling every few seconds.
type migrationLock struct{}

// migrationLockID is the advisory lock key ("carillon" in ASCII).
const migrationLockID = 0x636172696c6c6f6e

func (migrationLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLockID))
	return err
}

func (migrationLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, int64(migrationLockID))
	return err
}

// Close closes the pool. Closing twice is harmless.
func (db *DB) Close() error {
	db.closeOnce.Do(db.pool.Close)
	return nil
}

// Ping checks that the database can be written: it commits a one-row
// write, so that a read-only server (a standby, default_transaction_read_only)
// or a full disk shows, not only a live connection.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := db.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('last_ping', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, time.Now().UTC().Format(time.RFC3339Nano))
	return classify(err)
}

// Meta reads an instance setting.
func (db *DB) Meta(ctx context.Context, key string) (string, error) {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var v string
	err := db.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return v, classify(err)
}

// SetMeta writes an instance setting.
func (db *DB) SetMeta(ctx context.Context, key, value string) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	_, err := db.pool.Exec(ctx,
		`INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return classify(err)
}

// withTimeout gives ctx a deadline of opTimeout unless it has one.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, opTimeout)
}

// maxTxAttempts is how often inTx runs a transaction that PostgreSQL
// aborted for a deadlock or serialization failure before reporting it.
const maxTxAttempts = 4

// inTx runs fn in a READ COMMITTED write transaction and commits it. A
// transaction aborted by a deadlock or serialization failure (nothing of it
// committed) is run again, so fn must leave no state behind that a second
// run would trip over. fn's errors are returned as they are (after
// classify), so *carillon.Error values pass through.
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	var err error
	for attempt := 1; ; attempt++ {
		err = db.tryTx(ctx, fn)
		if err == nil || !retryable(err) || attempt == maxTxAttempts || ctx.Err() != nil {
			return classify(err)
		}
		// Back off a little, more each time, so that the transactions that
		// collided do not collide again.
		select {
		case <-time.After(time.Duration(attempt*attempt) * 5 * time.Millisecond):
		case <-ctx.Done():
			return classify(err)
		}
	}
}

func (db *DB) tryTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		// Rollback with a context of its own: ctx may be what failed.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
		return err
	}
	return tx.Commit(ctx)
}

// retryable reports whether err aborted a transaction that may simply be
// run again: a deadlock or a serialization failure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// classify turns errors that mean "cannot serve now" into errors wrapping
// carillon.ErrUnavailable and text PostgreSQL cannot store into a
// BadRequest; others pass through.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *carillon.Error
	if errors.As(err, &ce) || errors.Is(err, carillon.ErrUnavailable) {
		return err
	}
	if unavailable(err) {
		return fmt.Errorf("%w: %v", carillon.ErrUnavailable, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "22021" { // character_not_in_repertoire
		return errBadText()
	}
	return err
}

// unavailable reports whether err means the database cannot serve now, as
// opposed to a mistake in the request or a bug.
func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "25006", // read_only_sql_transaction: a standby, or writes switched off
			"25P03", // idle_in_transaction_session_timeout
			"55P03": // lock_not_available: lock_timeout
			return true
		}
		switch pe.Code[:2] {
		case "08", // connection exception
			"40", // serialization failure, deadlock (after the retries of inTx)
			"53", // insufficient resources: disk full, out of memory, too many connections
			"57", // operator intervention: shutdown, crash, cannot connect now, query cancelled (timeouts)
			"58": // system error: I/O
			return true
		}
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) {
		return true
	}
	return errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, puddle.ErrClosedPool) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// isUniqueViolation reports whether err is a unique constraint failure.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func errBadText() error {
	return carillon.Errorf(carillon.EBadRequest, "Text must be UTF-8 without NUL characters.")
}

// storable reports whether PostgreSQL can store s in a text column: it
// refuses NUL characters and invalid UTF-8, which SQLite would keep.
func storable(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }
