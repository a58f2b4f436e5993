// Package sqlite is the embedded storage backend of Carillon: one SQLite
// database file in WAL mode with synchronous=FULL, so that a committed
// transaction survives a crash or power loss. All writes go through one
// connection (SQLite has one writer anyway); reads use a pool of their own.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/carillon-chat/carillon"
)

//go:embed migrations/*.sql
var migrations embed.FS

// FileName is the database file inside the data directory.
const FileName = "carillon.db"

// DB is a Store backed by one SQLite file.
type DB struct {
	write *sql.DB // exactly one connection: the single writer
	read  *sql.DB
	path  string
	wal   walFile // fsynced by SyncCommitted
	ckpt  *sql.DB // the checkpointer's connection; see checkpoint.go

	// file is the database file, fsynced by the checkpointer before it
	// rewinds the WAL. It stays open until every SQLite connection is
	// closed: closing a descriptor drops all of the process's POSIX locks
	// on the file, SQLite's included.
	file *os.File

	stopCheckpointer func()
	walRestartFrames atomic.Int64       // WAL size that makes the checkpointer restart it
	newInterval      chan time.Duration // a new time between checkpointer passes (tests)

	readStmts, writeStmts *stmtCache

	// appendMu serializes AppendMessages so that lastCreated, the newest
	// CreatedAt committed, keeps timestamps non-decreasing in commit order.
	appendMu    sync.Mutex
	lastCreated time.Time

	// Readers see messages up to visibleSeq: the newest seq known to be on
	// disk. A batch committed without a sync stays hidden until the sync
	// that covers it, so no page or replay shows a message that a power
	// failure could still take back (and whose seq could then be reused).
	committedSeq, visibleSeq atomic.Int64
}

var _ carillon.Store = (*DB)(nil)

// Open opens (creating if needed) the database in dataDir and applies any
// pending migrations.
func Open(ctx context.Context, dataDir string) (*DB, error) {
	path := filepath.Join(dataDir, FileName)
	db := &DB{path: path, wal: walFile{path: path + "-wal"}, newInterval: make(chan time.Duration)}
	db.walRestartFrames.Store(defaultWALRestartFrames)
	var err error
	// _txlock=immediate: a write transaction takes the write lock at BEGIN,
	// so two writers never deadlock upgrading a read lock.
	// The writer never checkpoints: the checkpointer does, beside it.
	if db.write, err = openOneConnection(dsn(path, "immediate", "wal_autocheckpoint(0)")); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}

	if err := db.migrate(ctx); err != nil {
		db.write.Close()
		return nil, err
	}
	db.writeStmts = newStmtCache(db.write)
	if err := db.prepareWrites(ctx); err != nil {
		db.writeStmts.close()
		db.write.Close()
		return nil, fmt.Errorf("prepare statements: %w", classify(err))
	}

	if db.read, err = sql.Open("sqlite", dsn(path, "deferred")+"&_pragma=query_only(1)"); err != nil {
		db.write.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// The newest message by commit order carries the newest CreatedAt
	// (AppendMessages keeps them in step), found by the primary key.
	var newestSeq, newest int64
	err = db.read.QueryRowContext(ctx, `SELECT seq, created_at FROM messages ORDER BY seq DESC LIMIT 1`).Scan(&newestSeq, &newest)
	switch {
	case err == nil:
		db.lastCreated = fromMS(newest)
		db.noteCommitted(newestSeq, true)
	case !errors.Is(err, sql.ErrNoRows):
		db.Close()
		return nil, fmt.Errorf("read %s: %w", path, classify(err))
	}
	// Two per CPU, counting no more CPUs than Ps (a CPU quota lowers
	// GOMAXPROCS) nor Ps beyond the CPUs (`carillon serve` adds spare
	// ones, cmd/carillon/procs.go): each connection maps the file on its
	// own, and its mapped pages count in resident memory once per mapping.
	n := max(4, min(runtime.NumCPU(), runtime.GOMAXPROCS(0))*2)
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	db.readStmts = newStmtCache(db.read)
	if db.file, err = os.Open(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.openCheckpointer(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// openOneConnection opens a pool of exactly one connection, kept open for
// as long as the pool: its pragmas and prepared statements stay with it.
func openOneConnection(dsn string) (*sql.DB, error) {
	pool, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	pool.SetMaxOpenConns(1)
	pool.SetMaxIdleConns(1)
	pool.SetConnMaxLifetime(0)
	pool.SetConnMaxIdleTime(0)
	return pool, nil
}

func dsn(path, txlock string, pragmas ...string) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(2000)")
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: the WAL is fsynced at every commit; NORMAL could lose the last
	// commits on power loss, and a 200 promises they are kept.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Pages are read through a memory map rather than a read call each:
	// every commit invalidates the other connections' page caches. 64 MiB
	// covers the hot pages; the mapping counts in resident memory.
	q.Add("_pragma", "mmap_size(67108864)")
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Add("_txlock", txlock)
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

func (db *DB) migrate(ctx context.Context) error {
	provider, err := goose.NewProvider(goose.DialectSQLite3, db.write, mustSub(migrations, "migrations"))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", db.path, classify(err))
	}
	return nil
}

// Close closes the database.
func (db *DB) Close() error {
	if db.stopCheckpointer != nil {
		db.stopCheckpointer()
	}
	db.readStmts.close()
	db.writeStmts.close()
	defer db.wal.close()
	err := errors.Join(db.read.Close(), db.write.Close())
	if db.file != nil {
		db.file.Close()
	}
	return err
}

// Ping checks that the database can be written: it commits a one-row
// write, so that a full disk or a read-only file shows.
func (db *DB) Ping(ctx context.Context) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('last_ping', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return classify(err)
	}
	return classify(tx.Commit())
}

// Meta reads an instance setting.
func (db *DB) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := db.read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, classify(err)
}

// SetMeta writes an instance setting.
func (db *DB) SetMeta(ctx context.Context, key, value string) error {
	_, err := db.write.ExecContext(ctx,
		`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return classify(err)
}

// inTx runs fn in a write transaction.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return inTxOn(ctx, db.write, fn)
}

// inTxOn runs fn in a write transaction begun on b.
func inTxOn(ctx context.Context, b txBeginner, fn func(tx *sql.Tx) error) error {
	tx, err := b.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return classify(err)
	}
	return classify(tx.Commit())
}

// classify turns SQLite errors that mean "cannot serve now" into errors
// wrapping carillon.ErrUnavailable; others pass through.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *carillon.Error
	if errors.As(err, &ce) || errors.Is(err, carillon.ErrUnavailable) {
		return err
	}
	var se *sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3lib.SQLITE_BUSY, sqlite3lib.SQLITE_LOCKED, sqlite3lib.SQLITE_READONLY,
			sqlite3lib.SQLITE_IOERR, sqlite3lib.SQLITE_FULL, sqlite3lib.SQLITE_CANTOPEN,
			sqlite3lib.SQLITE_NOMEM, sqlite3lib.SQLITE_PROTOCOL:
			return fmt.Errorf("%w: %v", carillon.ErrUnavailable, err)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sql.ErrConnDone) {
		return fmt.Errorf("%w: %v", carillon.ErrUnavailable, err)
	}
	return err
}

// isUniqueViolation reports whether err is a UNIQUE or PRIMARY KEY
// constraint failure.
func isUniqueViolation(err error) bool {
	var se *sqlite3.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
