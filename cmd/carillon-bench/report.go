package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// latencyJSON summarizes a histogram, in milliseconds.
type latencyJSON struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"meanMs"`
	P50Ms  float64 `json:"p50Ms"`
	P90Ms  float64 `json:"p90Ms"`
	P99Ms  float64 `json:"p99Ms"`
	P999Ms float64 `json:"p999Ms"`
	MaxMs  float64 `json:"maxMs"`
}

func summarize(h *Histogram) latencyJSON {
	return latencyJSON{Count: h.Count(), MeanMs: ms(h.Mean()), P50Ms: ms(h.Quantile(0.5)), P90Ms: ms(h.Quantile(0.9)),
		P99Ms: ms(h.Quantile(0.99)), P999Ms: ms(h.Quantile(0.999)), MaxMs: ms(h.Max())}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtDur prints a latency with three significant digits in ms (µs below
// 0.1 ms).
func fmtDur(d time.Duration) string {
	return fmtMs(ms(d))
}

func fmtMs(v float64) string {
	switch {
	case v < 0.1:
		return fmt.Sprintf("%.0fµs", v*1000)
	case v < 10:
		return fmt.Sprintf("%.2fms", v)
	case v < 100:
		return fmt.Sprintf("%.1fms", v)
	default:
		return fmt.Sprintf("%.0fms", v)
	}
}

func (l latencyJSON) String() string {
	if l.Count == 0 {
		return "no answers"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  mean %s",
		fmtMs(l.P50Ms), fmtMs(l.P90Ms), fmtMs(l.P99Ms), fmtMs(l.P999Ms), fmtMs(l.MaxMs), fmtMs(l.MeanMs))
}

// loadJSON is one load run's report.
type loadJSON struct {
	Target          string            `json:"target"` // "server" or "baseline"
	URL             string            `json:"url"`
	Mode            string            `json:"mode"` // "closed" or "open"
	Connections     int               `json:"connections"`
	Rate            float64           `json:"rate,omitempty"`
	MaxInFlight     int               `json:"maxInFlight,omitempty"`
	WindowS         float64           `json:"windowSeconds"`
	WarmupS         float64           `json:"warmupSeconds"`
	Requests        uint64            `json:"requests"`
	OK              uint64            `json:"ok"`
	RequestsPerSec  float64           `json:"requestsPerSec"`
	OKPerSec        float64           `json:"okPerSec"`
	Latency         latencyJSON       `json:"latency"`
	Status          map[string]uint64 `json:"status"`
	TransportErrors map[string]uint64 `json:"transportErrors"`
	BadBodies       uint64            `json:"badBodies"`
	BadSample       string            `json:"badSample,omitempty"`
	Scheduled       uint64            `json:"scheduled,omitempty"`
	Late            uint64            `json:"late,omitempty"`
	Dropped         uint64            `json:"dropped,omitempty"`
	MaxLagMs        float64           `json:"maxLagMs,omitempty"`
	LateAfterMs     float64           `json:"lateAfterMs,omitempty"`
	Skipped         uint64            `json:"skipped,omitempty"`
	PaceWaits       uint64            `json:"paceWaits,omitempty"`
	WarmupRequests  uint64            `json:"warmupRequests"`
	WarmupFailures  uint64            `json:"warmupFailures"`
	Unfinished      uint64            `json:"unfinished,omitempty"`
	GeneratorCPU    float64           `json:"generatorCpuCores"`
	MachineCPU      float64           `json:"machineCpuCores"` // all processes: busy cores of the machine
	Server          *serverStats      `json:"server,omitempty"`
}

func toLoadJSON(target, url string, cfg LoadConfig, r *Result) loadJSON {
	j := loadJSON{Target: target, URL: url, Mode: r.Mode, Connections: cfg.Workers,
		WindowS: r.Window.Seconds(), WarmupS: cfg.Warmup.Seconds(),
		Requests: r.Requests, OK: r.OK, RequestsPerSec: r.Throughput(), OKPerSec: r.OKThroughput(),
		Latency: summarize(r.Hist), Status: map[string]uint64{}, TransportErrors: r.Errors,
		BadBodies: r.Bad, BadSample: r.BadSample, Skipped: r.Skipped,
		WarmupRequests: r.WarmupReqs, WarmupFailures: r.WarmupFails, Unfinished: r.Unfinished}
	for k, v := range r.Status {
		j.Status[strconv.Itoa(k)] = v
	}
	if r.Mode == "open" {
		j.Rate, j.MaxInFlight = cfg.Rate, cfg.Workers
		j.Scheduled, j.Late, j.Dropped, j.MaxLagMs = r.Scheduled, r.Late, r.Dropped, ms(r.MaxLag)
		j.LateAfterMs = ms(r.LateAfter)
	}
	return j
}

func (j *loadJSON) print(w io.Writer) {
	mode := fmt.Sprintf("closed loop, %d connections", j.Connections)
	if j.Mode == "open" {
		mode = fmt.Sprintf("open loop at %.0f requests/s (at most %d in flight)", j.Rate, j.MaxInFlight)
	}
	fmt.Fprintf(w, "%-9s %s — %s, %.1f s measured after %.0f s warm-up\n", j.Target, j.URL, mode, j.WindowS, j.WarmupS)
	fmt.Fprintf(w, "  requests   %d  (%.1f/s)   OK %d  (%.1f/s)\n", j.Requests, j.RequestsPerSec, j.OK, j.OKPerSec)
	fmt.Fprintf(w, "  latency    %s\n", j.Latency)
	fmt.Fprintf(w, "  status     %s\n", countsLine(j.Status))
	errs := countsLine(j.TransportErrors)
	if j.BadBodies > 0 {
		errs += fmt.Sprintf("; %d answers failed verification (e.g. %s)", j.BadBodies, j.BadSample)
	}
	fmt.Fprintf(w, "  errors     %s  (not OK: %d of %d)\n", errs, j.Requests-j.OK, j.Requests)
	if j.Mode == "open" {
		fmt.Fprintf(w, "  schedule   %d scheduled; %d sent late (>%s after schedule, max lag %s); %d dropped (in-flight limit)\n",
			j.Scheduled, j.Late, fmtMs(j.LateAfterMs), fmtMs(j.MaxLagMs), j.Dropped)
	}
	if j.PaceWaits > 0 {
		fmt.Fprintf(w, "  pacing     %d requests waited for their webhook's rate budget (one post per webhook per min gap)\n", j.PaceWaits)
	}
	if j.Skipped > 0 {
		fmt.Fprintf(w, "  unsent     %d requests still waiting (for a slot or their webhook) when the window ended; not counted\n", j.Skipped)
	}
	if j.WarmupFailures > 0 || j.Unfinished > 0 {
		fmt.Fprintf(w, "  warm-up    %d requests, %d not OK; %d still unanswered at the end\n", j.WarmupRequests, j.WarmupFailures, j.Unfinished)
	}
	if s := j.Server; s != nil {
		fmt.Fprintf(w, "  server     %s\n", s)
	}
	if j.MachineCPU > 0 {
		fmt.Fprintf(w, "  CPU        %s\n", cpuLine(j.Server, j.GeneratorCPU, j.MachineCPU))
	}
}

// countsLine prints counts as "k: v, k: v" sorted by key, or "none".
func countsLine[K comparable](m map[K]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%v: %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// envJSON describes where a run happened.
type envJSON struct {
	Date       string `json:"date"`
	Host       string `json:"host"`
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"goVersion"`
}

func runEnv() envJSON {
	h, _ := os.Hostname()
	return envJSON{Date: time.Now().UTC().Format(time.RFC3339), Host: h, CPUs: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
}

func (e envJSON) print(w io.Writer, scenario string) {
	fmt.Fprintf(w, "carillon-bench %s — %s, %d CPUs, %s\n", scenario, e.Date, e.CPUs, e.GoVersion)
}

// emit prints a report as JSON (--json) or through its text printer.
func emit(asJSON bool, v any, text func(io.Writer)) {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(v)
		return
	}
	text(os.Stdout)
}

// verdict prints "met" or "NOT met" for a target line.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func (s *serverStats) String() string {
	return fmt.Sprintf("RSS max %.1f MB (anonymous %.1f MB, mapped files %.1f MB), last %.1f MB, peak since start (VmHWM) %.1f MB; CPU %.2f cores (pid %d)",
		s.RSSMaxMB, s.AnonMaxMB, s.FileMaxMB, s.RSSLastMB, s.HWMMB, s.CPUCores, s.PID)
}

// cpuLine splits the machine's busy cores between the server, this
// process and everything else (other processes, kernel threads such as
// the file system's journal): a large "other" share means the figures were
// taken on a busy machine.
func cpuLine(server *serverStats, generator, machine float64) string {
	var line string
	other := max(0, machine-generator)
	if server == nil {
		line = fmt.Sprintf("generator %.2f cores; machine %.2f of %d cores busy (other processes and kernel %.2f)",
			generator, machine, runtime.NumCPU(), other)
	} else {
		other = max(0, other-server.CPUCores)
		line = fmt.Sprintf("server %.2f + generator %.2f cores; machine %.2f of %d cores busy (other processes and kernel %.2f)",
			server.CPUCores, generator, machine, runtime.NumCPU(), other)
	}
	// The kernel's own share (loopback networking, the file system's
	// journal) is typically a few tenths of a core under load.
	if other > 0.5 {
		line += fmt.Sprintf(" — note: %.2f cores went to other processes or the kernel; if other work ran meanwhile, the figures understate what this machine can do", other)
	}
	return line
}
