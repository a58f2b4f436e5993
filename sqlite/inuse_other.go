//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqlite

// InUse reports whether another process has the database in dataDir open.
// On this system it cannot tell and reports false: stop the server first.
func InUse(dataDir string) (bool, error) { return false, nil }
