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
// Until then reads of messages, replays and notifications do not show it
// (visibleSeq), and a power failure may lose it (a crash of the process
// alone does not: the kernel keeps the WAL's pages, and the next start
// shows them).
func (db *DB) AppendMessagesUnsynced(ctx context.Context, batch []*carillon.Append) error {
	if err := db.wal.failed(); err != nil {
		return err
	}
	db.appendMu.Lock()
	defer db.appendMu.Unlock()
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
	return db.appendMessages(ctx, conn, batch, false)
}

// SyncCommitted makes every commit made before the call durable. Once a
// sync has failed, every later one fails too, and so does every unsynced
// append: Linux may drop the pages of a failed write-back and report the
// error only once, so a later sync that succeeds proves nothing about
// them. The process must be restarted (SQLite then recovers the WAL as
// it is on disk).
func (db *DB) SyncCommitted() error {
	committed := db.committedSeq.Load()
	if err := db.wal.sync(); err != nil {
		return fmt.Errorf("sync %s: %w: %w", db.wal.path, carillon.ErrUnavailable, err)
	}
	raise(&db.visibleSeq, committed)
	return nil
}

// SyncFailure returns the error of the WAL sync that failed, if one did:
// messages are refused from then on.
func (db *DB) SyncFailure() error { return db.wal.failed() }

// walFile is the database's write-ahead log, opened to be fsynced. SQLite
// takes no locks on this file (WAL mode locks the -shm file), so a
// descriptor of our own closes without disturbing its locks.
type walFile struct {
	path string

	mu   sync.Mutex
	f    *os.File
	info os.FileInfo
	err  error // the first failed sync, for good
}

// failed returns the error of the first failed sync, if any.
func (w *walFile) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return fmt.Errorf("an earlier sync of %s failed: %w: %w", w.path, carillon.ErrUnavailable, w.err)
	}
	return nil
}

// sync fsyncs the WAL. Two syncs may run at once. The file is found by
// name each time: SQLite deletes it when the last connection closes and
// creates it again on the next write, and a descriptor of the old file
// would sync nothing of the new.
func (w *walFile) sync() error {
	f, err := w.current()
	if err == nil {
		err = syncFileData(f)
	}
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
	return err
}

// syncFileData flushes f's data through the file's own handle, so that a
// Close of f waits for the sync.
func syncFileData(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if cerr := rc.Control(func(fd uintptr) { err = syncData(fd) }); cerr != nil {
		return cerr
	}
	return err
}

// current returns a descriptor of the WAL file now at the path.
func (w *walFile) current() (*os.File, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return nil, w.err
	}
	info, err := os.Stat(w.path)
	if err != nil {
		return nil, err
	}
	if w.f == nil || !os.SameFile(info, w.info) {
		if w.f != nil {
			w.f.Close()
		}
		if w.f, err = os.OpenFile(w.path, os.O_RDWR, 0); err != nil {
			w.f = nil
			return nil, err
		}
		w.info = info
	}
	return w.f, nil
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
