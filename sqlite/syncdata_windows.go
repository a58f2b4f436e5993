package sqlite

import "syscall"

func syncData(fd uintptr) error { return syscall.FlushFileBuffers(syscall.Handle(fd)) }
