package main

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestServeAddsSpareProcsForSQLite: on the embedded store the server runs
// spareProcs Ps beyond Go's default (procs.go), and a GOMAXPROCS in the
// environment is kept as it is.
func TestServeAddsSpareProcsForSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	// The server's default is this process's unless GOMAXPROCS chose it.
	base := runtime.GOMAXPROCS(0)
	if os.Getenv("GOMAXPROCS") != "" {
		base = runtime.NumCPU()
	}
	t.Setenv("GOMAXPROCS", "")
	p := startServer(t, t.TempDir())
	if got, want := serverProcs(t, p.url), base+spareProcs; got != want {
		t.Errorf("GOMAXPROCS unset: the server runs %d Ps, want %d", got, want)
	}
	p.stop(t)

	t.Setenv("GOMAXPROCS", "3")
	p = startServer(t, t.TempDir())
	if got := serverProcs(t, p.url); got != 3 {
		t.Errorf("GOMAXPROCS=3: the server runs %d Ps", got)
	}
	p.stop(t)
}

// serverProcs reads the server's GOMAXPROCS from its metrics.
func serverProcs(t *testing.T, base string) int {
	t.Helper()
	status, body := apiAs(t, adminToken, "GET", base+"/metrics", nil)
	if status != 200 {
		t.Fatalf("GET /metrics: %d", status)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_sched_gomaxprocs_threads "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("go_sched_gomaxprocs_threads %q", v)
			}
			return n
		}
	}
	t.Fatal("no go_sched_gomaxprocs_threads in /metrics")
	return 0
}
