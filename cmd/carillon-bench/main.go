// Command carillon-bench is Carillon's load generator. It sets up what a
// scenario needs through the management API, drives the server over real
// HTTP and prints a report (plain text, or JSON with --json):
//
//	carillon-bench ingest   webhook posts over many webhooks; --baseline adds a bare net/http handler run and the ratio
//	carillon-bench baseline the bare net/http handler alone (in this process)
//	carillon-bench fanout   one room, N event streams, R messages/s: delivery latency to every stream
//	carillon-bench idle     N idle event streams held open: the server's memory
//	carillon-bench read     a room of N messages: latency of 50-message pages at random positions
//
// Every scenario ends by itself. Progress goes to standard error, the
// report to standard output. docs/performance.md describes the scenarios
// and the figures of the last run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

const usage = `carillon-bench — load generator for Carillon

usage: carillon-bench <scenario> [flags]   (carillon-bench <scenario> -h lists the flags)

scenarios:
  ingest    create rooms × webhooks, then post the Chime sample message over them
            (closed loop: --connections N; open loop: --rate R); --baseline also runs
            a bare net/http handler with the same load and prints the ratio
  baseline  only the bare net/http handler, in this process
  fanout    one room, --streams N members each with an event stream, --rate R posts/s;
            reports the delay from each post's 200 to the event on every stream
  idle      --streams N idle event streams held for --hold; reports the server's memory
  read      fill a room with --messages N, then time 50-message pages at random positions

The server's memory and CPU are read from /proc/<pid> (Linux) with --server-pid,
--server-pid-file, or found automatically for a server listening on loopback.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmds := map[string]func(context.Context, []string) error{
		"ingest":   cmdIngest,
		"baseline": cmdBaseline,
		"fanout":   cmdFanout,
		"idle":     cmdIdle,
		"read":     cmdRead,
	}
	name := os.Args[1]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Print(usage)
		return
	}
	cmd, ok := cmds[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "carillon-bench: unknown scenario %q\n\n%s", name, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// CARILLON_BENCH_CPUPROFILE=file writes the generator's own CPU
	// profile (to see what the load costs this side of the connection).
	if f := os.Getenv("CARILLON_BENCH_CPUPROFILE"); f != "" {
		out, err := os.Create(f)
		if err == nil {
			err = pprof.StartCPUProfile(out)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "carillon-bench: CPU profile: %v\n", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	err := cmd(ctx, os.Args[2:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "carillon-bench %s: %v\n", name, err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// logf prints progress on standard error.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// commonFlags are the flags every scenario against a server has.
type commonFlags struct {
	URL              string
	Token            string
	ServerPID        int
	ServerPIDFile    string
	JSON             bool
	SetupCache       string
	SetupConcurrency int
	Timeout          time.Duration
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "base URL of the Carillon server")
	// The default is read in check: a flag default would print the
	// secret in the help text.
	fs.StringVar(&c.Token, "token", "", "the instance admin's API token (default $CARILLON_ADMIN_TOKEN)")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "pid of the server, for its memory and CPU (default: found for a loopback URL; -1: don't look)")
	fs.StringVar(&c.ServerPIDFile, "server-pid-file", "", "file holding the server's pid")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	fs.StringVar(&c.SetupCache, "setup-cache", "", "file to save what the setup created (rooms, webhooks, users) and to reuse it from in later runs against the same data directory")
	fs.IntVar(&c.SetupConcurrency, "setup-concurrency", 8, "concurrent API requests during the setup")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "timeout of one request")
}

func (c *commonFlags) check() error {
	if c.Token == "" {
		c.Token = os.Getenv("CARILLON_ADMIN_TOKEN")
	}
	if c.Token == "" {
		return errors.New("--token (or CARILLON_ADMIN_TOKEN) is required: the instance admin's API token")
	}
	c.URL = strings.TrimRight(c.URL, "/")
	if !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://") {
		return fmt.Errorf("--url %q: give a URL such as http://127.0.0.1:8080", c.URL)
	}
	return nil
}

// loadFlags configure the load engine.
type loadFlags struct {
	Connections int
	Rate        float64
	MaxInFlight int
	Duration    time.Duration
	Warmup      time.Duration
	Late        time.Duration
}

func (l *loadFlags) register(fs *flag.FlagSet, duration, warmup time.Duration) {
	fs.IntVar(&l.Connections, "connections", 32, "connections; in a closed loop also the number of concurrent requests")
	fs.Float64Var(&l.Rate, "rate", 0, "open loop: requests per second on a fixed schedule (0: closed loop)")
	fs.IntVar(&l.MaxInFlight, "max-inflight", 2048, "open loop: requests in flight at most (more are counted as dropped)")
	fs.DurationVar(&l.Duration, "duration", duration, "measurement window")
	fs.DurationVar(&l.Warmup, "warmup", warmup, "warm-up before the window (not counted)")
	fs.DurationVar(&l.Late, "late", 5*time.Millisecond, "open loop: a request sent later than this after its scheduled time counts as late")
}

func (l *loadFlags) config(timeout time.Duration) LoadConfig {
	cfg := LoadConfig{Workers: l.Connections, Rate: l.Rate, Duration: l.Duration, Warmup: l.Warmup,
		LateAfter: l.Late, Drain: timeout + time.Second, Progress: func(s string) { logf("%s", s) }}
	if l.Rate > 0 {
		cfg.Workers = l.MaxInFlight
	}
	return cfg
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags are written --name value)", fs.Arg(0))
	}
	return nil
}
