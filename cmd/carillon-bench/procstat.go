package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The server's memory and CPU come from /proc (Linux): VmRSS (resident
// now) and VmHWM (peak resident since start) in /proc/<pid>/status, CPU
// time from /proc/<pid>/stat.

// procMem is a reading of /proc/<pid>/status, in bytes.
type procMem struct {
	RSS     int64 // VmRSS: resident now
	HWM     int64 // VmHWM: peak resident since the process started
	RSSAnon int64 // RssAnon: heap, stacks (the process's own memory)
	RSSFile int64 // RssFile: resident pages of mapped files (e.g. an mmapped database)
}

// readProcMem reads the memory figures of pid.
func readProcMem(pid int) (procMem, error) {
	var m procMem
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &m.RSS
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &m.HWM
		case strings.HasPrefix(line, "RssAnon:"):
			dst = &m.RSSAnon
		case strings.HasPrefix(line, "RssFile:"):
			dst = &m.RSSFile
		default:
			continue
		}
		fields := strings.Fields(line)
		if len(fields) >= 2 {
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			*dst = kb * 1024
		}
	}
	return m, sc.Err()
}

// machineBusy is the CPU time all CPUs of the machine spent not idle
// (the first line of /proc/stat; iowait counts as idle).
func machineBusy() time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already in user.
		if i == 3 || i == 4 || i >= 8 {
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// cpuMeter measures CPU use over a window: this process's and the whole
// machine's.
type cpuMeter struct {
	t0          time.Time
	self0, all0 time.Duration
}

func startCPUMeter() cpuMeter {
	return cpuMeter{t0: time.Now(), self0: selfCPU(), all0: machineBusy()}
}

// cores returns this process's and the machine's average busy cores
// since the start.
func (m cpuMeter) cores() (self, machine float64) {
	el := time.Since(m.t0).Seconds()
	if el <= 0 {
		return 0, 0
	}
	return (selfCPU() - m.self0).Seconds() / el, (machineBusy() - m.all0).Seconds() / el
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// procCPU is the CPU time (user + system) pid has used.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after its ')'
	// start at field 3 (state). utime and stime are fields 14 and 15.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memSample is one reading of the server's memory.
type memSample struct {
	At time.Time
	procMem
}

// sampler reads the server's memory every second while it runs.
type sampler struct {
	pid     int
	mu      sync.Mutex
	samples []memSample
	stop    context.CancelFunc
	done    chan struct{}
}

// startSampler starts sampling pid (nil when pid is 0: nothing to read).
func startSampler(pid int) *sampler {
	if pid <= 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sampler{pid: pid, stop: cancel, done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *sampler) sample() {
	m, err := readProcMem(s.pid)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.samples = append(s.samples, memSample{time.Now(), m})
	s.mu.Unlock()
}

func (s *sampler) Stop() {
	if s == nil {
		return
	}
	s.stop()
	<-s.done
}

// serverStats is the server's memory and CPU over one window.
type serverStats struct {
	PID        int     `json:"pid"`
	RSSMaxMB   float64 `json:"rssMaxMB"`   // highest VmRSS sampled in the window
	RSSLastMB  float64 `json:"rssLastMB"`  // VmRSS at the window's end
	RSSStartMB float64 `json:"rssStartMB"` // VmRSS at the window's start
	HWMMB      float64 `json:"hwmMB"`      // VmHWM at the end: peak since the server started
	AnonMaxMB  float64 `json:"anonMaxMB"`  // highest RssAnon: the process's own memory
	FileMaxMB  float64 `json:"fileMaxMB"`  // highest RssFile: mapped files (database pages)
	CPUCores   float64 `json:"cpuCores"`   // server CPU time / window
	Samples    int     `json:"samples"`
}

// window measures the server from now until the returned func is called.
func (s *sampler) window() func() *serverStats {
	if s == nil {
		return func() *serverStats { return nil }
	}
	s.sample()
	start := time.Now()
	cores := s.cpuSince()
	return func() *serverStats {
		s.sample()
		st := &serverStats{PID: s.pid, CPUCores: cores()}
		s.mu.Lock()
		defer s.mu.Unlock()
		first := true
		for _, m := range s.samples {
			if m.At.Before(start) {
				continue
			}
			if first {
				st.RSSStartMB = mb(m.RSS)
				first = false
			}
			st.RSSMaxMB = max(st.RSSMaxMB, mb(m.RSS))
			st.RSSLastMB = mb(m.RSS)
			st.HWMMB = mb(m.HWM)
			st.AnonMaxMB = max(st.AnonMaxMB, mb(m.RSSAnon))
			st.FileMaxMB = max(st.FileMaxMB, mb(m.RSSFile))
			st.Samples++
		}
		return st
	}
}

// cpuSince returns a function giving the server's average busy cores
// from now until it is called.
func (s *sampler) cpuSince() func() float64 {
	if s == nil {
		return func() float64 { return 0 }
	}
	start := time.Now()
	cpu0, _ := procCPU(s.pid)
	return func() float64 {
		cpu1, err := procCPU(s.pid)
		el := time.Since(start)
		if err != nil || el <= 0 {
			return 0
		}
		return (cpu1 - cpu0).Seconds() / el.Seconds()
	}
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// serverPID finds the server process: --server-pid, else the pid in
// --server-pid-file, else (for a loopback URL) the process of this user
// listening on the URL's port. 0 when none is found.
func serverPID(flagPID int, pidFile, rawURL string, logf func(string, ...any)) int {
	if flagPID > 0 {
		return flagPID
	}
	if pidFile != "" {
		data, err := os.ReadFile(pidFile)
		if err != nil {
			logf("server pid file: %v", err)
			return 0
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			logf("server pid file %s: %v", pidFile, err)
			return 0
		}
		return pid
	}
	if flagPID < 0 {
		return 0
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return 0
	}
	host, portStr := u.Hostname(), u.Port()
	if portStr == "" {
		portStr = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	port, _ := strconv.Atoi(portStr)
	if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) || port == 0 {
		return 0
	}
	pid := listenerPID(port)
	if pid > 0 {
		logf("server process: pid %d (listening on port %d; --server-pid to choose another)", pid, port)
	} else {
		logf("server process not found (give --server-pid to report its memory)")
	}
	return pid
}

// listenerPID returns the pid of a process (readable by this user) with a
// TCP socket listening on port, or 0.
func listenerPID(port int) int {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			if len(fs) < 10 || fs[3] != "0A" { // 0A = LISTEN
				continue
			}
			i := strings.LastIndexByte(fs[1], ':')
			p, err := strconv.ParseInt(fs[1][i+1:], 16, 32)
			if err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0
	}
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		fds, err := os.ReadDir(d + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if target, err := os.Readlink(d + "/fd/" + fd.Name()); err == nil && inodes[target] {
				return pid
			}
		}
	}
	return 0
}

// raiseFileLimit lifts the soft limit on open files to need (or the hard
// limit) and says so when even the hard limit is too low.
func raiseFileLimit(need uint64, logf func(string, ...any)) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur >= need {
		return
	}
	lim.Cur = min(need, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		logf("raising the open-file limit: %v", err)
	}
	if lim.Cur < need {
		logf("warning: the open-file limit is %d (hard), below the %d needed; raise it (ulimit -Hn) or expect 'too many open files'", lim.Max, need)
	}
}
