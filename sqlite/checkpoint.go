package sqlite

import (
	"context"
	"log/slog"
	"time"
)

// Checkpoints run beside the writer, not in its commits.
//
// SQLite's automatic checkpoint runs inside the commit that fills the WAL
// past 1,000 pages: that commit copies the WAL into the database file and
// fsyncs both, and with the single writer every waiting message waits for
// it (a third of the writer's time under steady load). Here the writer's
// connection never checkpoints; a connection of the checkpointer's own
// copies committed pages into the database in the background (PASSIVE:
// writers go on meanwhile). A passive checkpoint alone cannot let the WAL
// start over while commits keep coming (SQLite rewinds it only when a
// write begins with every frame copied), so once the WAL is past
// 32,768 frames the checkpointer holds the write connection and copies the
// few frames committed since its last pass; the next commit then writes
// from the WAL's start. The writer pauses for that last step only. The
// rewind needs no reader to be still reading an older snapshot from the
// WAL; reads here take milliseconds, and one that is in the way only puts
// the rewind off to the next pass. (RESTART would wait for such readers,
// in SQLite's busy handler, which sleeps for milliseconds at a time.)

const (
	checkpointInterval = 200 * time.Millisecond
	// defaultWALRestartFrames bounds the WAL: 32,768 pages of 4 KiB are
	// 128 MiB. Each rewind pauses the writer for a checkpoint's final
	// fsync of the database; at 8,192 frames those pauses came several
	// times a second under load and made the p99 latency (98 ms against
	// 40 ms).
	defaultWALRestartFrames = 32768
)

// runCheckpointer checkpoints until ctx is done, then closes done.
func (db *DB) runCheckpointer(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(checkpointInterval)
	defer tick.Stop()
	var rewound int64 // the WAL's size in frames at the last rewind
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-db.newInterval:
			tick.Reset(d)
			continue
		case <-tick.C:
		}
		frames, err := db.checkpoint(ctx, "PASSIVE")
		// After a rewind the WAL keeps its size until the next write
		// starts it over: an idle WAL needs no second one.
		if err == nil && frames >= db.walRestartFrames.Load() && frames != rewound {
			err = db.flushBeforeRewind(ctx)
			if err == nil {
				rewound, err = db.restartWAL(ctx)
			}
		}
		if err != nil && ctx.Err() == nil {
			slog.Warn("checkpoint failed", "err", classify(err))
		}
	}
}

// flushBeforeRewind copies the WAL into the database file and flushes that
// to disk, in rounds until one is short, so that the rewind, which holds
// the writer, is left the few frames committed during that round.
//
// SQLite fsyncs the database file only in the pass that copies the last
// frame, and that fsync carries every page written since the last one.
// One round was not enough: ingesting 6,000–7,600 messages/s, its flush
// carried about 1.3 s of passes and took 90–120 ms, and the frames
// committed meanwhile held the writer for 26–44 ms in the rewind (p99.9
// of 32-connection runs 37–39 ms). Once a round is short, the writer waits
// 5 ms (13 ms at most), and the p99.9 was 16–19 ms.
func (db *DB) flushBeforeRewind(ctx context.Context) error {
	const short = 5 * time.Millisecond
	for range 4 {
		roundStart := time.Now()
		// Copy what was committed during the last pass until a pass is
		// short.
		for range 8 {
			start := time.Now()
			if _, err := db.checkpoint(ctx, "PASSIVE"); err != nil {
				return err
			}
			if time.Since(start) < short {
				break
			}
		}
		if err := syncFileData(db.file); err != nil {
			return err
		}
		if time.Since(roundStart) < short {
			return nil
		}
	}
	return nil
}

// checkpoint runs a checkpoint of the given mode on the checkpointer's
// connection and returns the WAL's size in frames.
func (db *DB) checkpoint(ctx context.Context, mode string) (frames int64, err error) {
	var busy, copied int64
	err = db.ckpt.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &frames, &copied)
	return frames, err
}

// restartWAL copies what is left of the WAL into the database while no
// write runs, so that the next write starts the WAL over, and returns the
// WAL's size in frames.
func (db *DB) restartWAL(ctx context.Context) (frames int64, err error) {
	// Holding the one write connection keeps writers waiting in Go rather
	// than in SQLite's busy handler, which polls with sleeps.
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	return db.checkpoint(ctx, "PASSIVE")
}

// openCheckpointer opens the checkpointer's connection and starts it.
func (db *DB) openCheckpointer() error {
	var err error
	if db.ckpt, err = openOneConnection(dsn(db.path, "deferred")); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go db.runCheckpointer(ctx, done)
	db.stopCheckpointer = func() {
		cancel()
		<-done
		db.ckpt.Close()
	}
	return nil
}
