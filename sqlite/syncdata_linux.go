package sqlite

import (
	"os"
	"syscall"
)

// syncData flushes a file's data (and the size, not the timestamps), as
// SQLite's own syncs do on Linux.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
