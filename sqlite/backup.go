package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
)

// BackupInfo describes a backup Backup wrote.
type BackupInfo struct {
	Bytes     int64 // size of the backup file
	Messages  int64 // messages it holds
	NewestSeq int64 // seq of its newest message (0 when none)
}

// Backup writes a consistent copy of the database in dataDir to the new
// file to, while a server may be using the database: SQLite's VACUUM INTO
// copies one read transaction's snapshot, so writers carry on (only WAL
// checkpoints wait for it). The copy is checked (PRAGMA quick_check),
// fsynced and only then given its name; to must not exist.
//
// To restore it, stop the server, put the file in place of
// <data dir>/carillon.db, remove carillon.db-wal and carillon.db-shm, and
// start the server again.
func Backup(ctx context.Context, dataDir, to string) (BackupInfo, error) {
	var info BackupInfo
	src := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(src); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Lstat(to); err == nil {
		return info, fmt.Errorf("backup: %s already exists", to)
	} else if !errors.Is(err, os.ErrNotExist) {
		return info, fmt.Errorf("backup: %w", err)
	}
	dir := filepath.Dir(to)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(to)+".tmp-*")
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath) // after the link below, only the temporary name goes

	// Read-only: the backup never writes the live database (nor creates
	// one where there was none).
	db, err := sql.Open("sqlite", fileDSN(src, "mode=ro", "_pragma=busy_timeout(10000)"))
	if err != nil {
		return info, fmt.Errorf("backup: open %s: %w", src, err)
	}
	defer db.Close()
	// VACUUM INTO writes into an empty file, so the one CreateTemp made
	// (with mode 0600, as the database holds hashes and sealed tokens) is
	// used as it is.
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmpPath); err != nil {
		return info, fmt.Errorf("backup: copy %s: %w", src, err)
	}
	db.Close()

	// immutable: the copy is not in use by anyone, so SQLite need not
	// create a WAL index or lock it.
	cp, err := sql.Open("sqlite", fileDSN(tmpPath, "mode=ro", "immutable=1"))
	if err != nil {
		return info, fmt.Errorf("backup: check the copy: %w", err)
	}
	var check string
	err = cp.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check)
	if err == nil && check != "ok" {
		err = fmt.Errorf("quick_check: %s", check)
	}
	if err == nil {
		err = cp.QueryRowContext(ctx, `SELECT count(*), coalesce(max(seq), 0) FROM messages`).Scan(&info.Messages, &info.NewestSeq)
	}
	cp.Close()
	if err != nil {
		return info, fmt.Errorf("backup: check the copy: %w", err)
	}

	if err := syncFile(tmpPath); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	// A hard link gives the copy its name only if that name is still free,
	// where a rename would replace a file created in the meantime; on a
	// file system without hard links, rename.
	if err := os.Link(tmpPath, to); errors.Is(err, os.ErrExist) {
		return info, fmt.Errorf("backup: %s already exists", to)
	} else if err != nil {
		if err := os.Rename(tmpPath, to); err != nil {
			return info, fmt.Errorf("backup: %w", err)
		}
	}
	if err := syncFile(dir); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	st, err := os.Stat(to)
	if err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	info.Bytes = st.Size()
	return info, nil
}

// fileDSN is a DSN for the database file at path with the given query
// parameters (already encoded).
func fileDSN(path string, params ...string) string {
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath()
	for i, p := range params {
		if i == 0 {
			dsn += "?" + p
		} else {
			dsn += "&" + p
		}
	}
	return dsn
}

// syncFile fsyncs the file or directory at path.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
