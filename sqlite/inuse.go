//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// shmDeadManSwitch is the byte of the -shm file on which every connection
// to a WAL database holds a shared POSIX lock for as long as it is open
// (UNIX_SHM_DMS in SQLite's unix VFS: 120 + SQLITE_SHM_NLOCK).
const shmDeadManSwitch = 128

// InUse reports whether another process has the database in dataDir open,
// such as a running `carillon serve`. It asks the kernel whether an
// exclusive lock on the -shm file's dead-man-switch byte could be taken,
// without taking it, so it neither waits nor disturbs the other process.
// Connections of the calling process itself are not seen.
func InUse(dataDir string) (bool, error) {
	f, err := os.Open(filepath.Join(dataDir, FileName) + "-shm")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // no WAL index: nobody has the database open
	}
	if err != nil {
		return false, fmt.Errorf("check whether the database is in use: %w", err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: shmDeadManSwitch, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return false, fmt.Errorf("check whether the database is in use: %w", err)
	}
	return lk.Type != syscall.F_UNLCK, nil
}
