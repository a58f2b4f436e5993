package sqlite

import "context"

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
