package sqlite

import "syscall"

// syncData flushes a file's data (and the size, not the timestamps), as
// SQLite's own syncs do on Linux.
func syncData(fd uintptr) error {
	for {
		err := syscall.Fdatasync(int(fd))
		if err != syscall.EINTR {
			return err
		}
	}
}
