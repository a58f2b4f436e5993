package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"sync"

	"github.com/carillon-chat/carillon"
)

// Deferred sync of message batches.
//
// A commit with synchronous=FULL writes the transaction's pages to the WAL
// and fsyncs it before returning, and the single writer can do nothing else
// meanwhile: most of a batch's time was that wait. AppendMessagesUnsynced
// commits with synchronous=NORMAL instead (the pages are in the WAL, in the
// kernel's cache) and SyncCommitted fsyncs the WAL afterwards, so the ingest
// writer commits the next batch while the previous one is synced, and one
// fsync covers every batch committed before it. A commit is durable once
// its WAL frames are on disk: recovery replays the WAL up to the last
// complete commit, and a checkpoint syncs the WAL before copying it into
// the database.

var _ carillon.DeferredSyncAppender = (*DB)(nil)

// AppendMessagesUnsynced commits a batch like AppendMessages but returns
// before the commit is on disk; the next SyncCommitted makes it durable.
func (db *DB) AppendMessagesUnsynced(ctx context.Context, batch []*carillon.Append) error {
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return classify(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return classify(err)
	}
	defer func() {
		// Every other write relies on the connection's FULL: one that
		// cannot be set back is discarded (a new one starts with the DSN's).
		if _, err := conn.ExecContext(context.Background(), `PRAGMA synchronous = FULL`); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return db.appendMessages(ctx, conn, batch)
}

// SyncCommitted makes every commit made before the call durable.
func (db *DB) SyncCommitted() error {
	if err := db.wal.sync(); err != nil {
		return fmt.Errorf("sync %s: %w: %w", db.wal.path, carillon.ErrUnavailable, err)
	}
	return nil
}

// walFile is the database's write-ahead log, opened to be fsynced. SQLite
// takes no locks on this file (WAL mode locks the -shm file), so a
// descriptor of our own closes without disturbing its locks.
type walFile struct {
	path string

	mu   sync.Mutex
	f    *os.File
	info os.FileInfo
}

// sync fsyncs the WAL. The file is found by name each time: SQLite deletes
// it when the last connection closes and creates it again on the next
// write, and a descriptor of the old file would sync nothing of the new.
func (w *walFile) sync() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	info, err := os.Stat(w.path)
	if err != nil {
		return err
	}
	if w.f == nil || !os.SameFile(info, w.info) {
		if w.f != nil {
			w.f.Close()
		}
		if w.f, err = os.OpenFile(w.path, os.O_RDWR, 0); err != nil {
			w.f = nil
			return err
		}
		w.info = info
	}
	return syncData(w.f)
}

func (w *walFile) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
}

// txBeginner is a *sql.DB or a *sql.Conn of the writer.
type txBeginner interface {
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}
