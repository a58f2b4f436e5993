package main

import (
	"os"
	"runtime"
)

// spareProcs is how many Ps `carillon serve` runs beyond Go's default
// (the CPUs it may use) when the data is in SQLite.
//
// The embedded store's writer and its two WAL syncers spend much of their
// time in blocking file system calls (pwrite, fdatasync). A P whose
// goroutine is in such a call goes to other work only once the runtime's
// monitor notices, and the writer coming back from the call then queues
// for a P behind the request goroutines. On 2 cores, two spare Ps took
// durable webhook ingest from 7,389 to 8,675 messages/s and its p99 from
// 19 to 13 ms, with fan-out unchanged (docs/performance.md). PostgreSQL's
// waits are network reads, which hold no P.
const spareProcs = 2

// addSpareProcs raises GOMAXPROCS by spareProcs for the embedded store,
// unless the GOMAXPROCS environment variable chose a value. Once set, it
// no longer follows later changes of the process's CPU limit.
func addSpareProcs(embedded bool) {
	if !embedded || os.Getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + spareProcs)
}
