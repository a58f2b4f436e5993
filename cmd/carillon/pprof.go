package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
)

// CARILLON_PPROF_ADDR (e.g. 127.0.0.1:6060) serves Go's profiler on a
// listener of its own, never on the public address: the figures in
// docs/performance.md come from profiles taken this way.
func init() {
	addr := os.Getenv("CARILLON_PPROF_ADDR")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		if err := http.ListenAndServe(addr, mux); err != nil {
			slog.Error("profiler listener failed", "addr", addr, "err", err)
		}
	}()
}
