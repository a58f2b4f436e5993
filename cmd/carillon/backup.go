package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/carillon-chat/carillon/sqlite"
)

// backupCmd copies the SQLite database of a data directory, while the
// server runs. A PostgreSQL deployment is backed up with pg_dump instead
// (docs/deploy.md).
type backupCmd struct {
	Data string `default:"./carillon-data" env:"CARILLON_DATA" help:"Data directory of the SQLite database to back up."`
	To   string `required:"" type:"path" help:"File to write the backup to (must not exist)."`
}

func (c *backupCmd) Run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	info, err := sqlite.Backup(ctx, c.Data, c.To)
	if err != nil {
		fmt.Fprintln(os.Stderr, "carillon:", err)
		return err
	}
	fmt.Printf("Backed up %s to %s in %v: %d bytes, %d messages (newest seq %d).\n",
		filepath.Join(c.Data, sqlite.FileName), c.To, time.Since(start).Round(time.Millisecond), info.Bytes, info.Messages, info.NewestSeq)
	fmt.Printf("Keep a copy of the secret key (%s or --secret-key-file) apart from it: a server restored from this backup needs the same key.\n",
		filepath.Join(c.Data, "secret.key"))
	return nil
}
