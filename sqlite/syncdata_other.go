//go:build !linux && !windows

package sqlite

import "syscall"

func syncData(fd uintptr) error { return syscall.Fsync(int(fd)) }
