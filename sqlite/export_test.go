package sqlite

import (
	"context"
	"os"
	"time"
)

// Pragmas returns the value of a pragma as the writer connection and a
// reader connection of db see it. Pragmas such as synchronous and
// foreign_keys are per connection, so only the store's own connections can
// tell whether they are in effect.
func Pragmas(ctx context.Context, db *DB, name string) (write, read string, err error) {
	if err = db.write.QueryRowContext(ctx, "PRAGMA "+name).Scan(&write); err != nil {
		return "", "", err
	}
	err = db.read.QueryRowContext(ctx, "PRAGMA "+name).Scan(&read)
	return write, read, err
}

// SetWALRestartFrames changes the WAL size, in frames, at which the
// checkpointer makes the WAL start over.
func SetWALRestartFrames(db *DB, frames int64) { db.walRestartFrames.Store(frames) }

// SetCheckpointInterval changes the time between the checkpointer's
// passes; the next pass is d from now.
func SetCheckpointInterval(db *DB, d time.Duration) { db.newInterval <- d }

// HoldWALSnapshot keeps a read transaction open on a connection of its own
// until release is called. While it is open SQLite cannot start the WAL
// over, so the WAL file only grows and its size counts the frames written.
func HoldWALSnapshot(ctx context.Context, db *DB) (release func(), err error) {
	conn, err := db.read.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		conn.Close()
		return nil, err
	}
	var n int64
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM rooms").Scan(&n); err != nil {
		conn.Close()
		return nil, err
	}
	return func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
	}, nil
}

// WALFrames returns how many frames the WAL file holds.
func WALFrames(db *DB) (int64, error) {
	fi, err := os.Stat(db.wal.path)
	if err != nil {
		return 0, err
	}
	var pageSize int64
	if err := db.read.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		return 0, err
	}
	const walHeader, frameHeader = 32, 24
	return max(0, fi.Size()-walHeader) / (pageSize + frameHeader), nil
}
