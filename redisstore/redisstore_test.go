package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The tests run against a real Redis: CARILLON_TEST_REDIS (default
// redis://127.0.0.1:6379/0). Without one they skip, unless
// CARILLON_REQUIRE_REDIS=1 (as in CI), where they fail. Every test works
// under its own random key prefix and channel and deletes its keys.

func redisOptions(t *testing.T) *redis.Options {
	t.Helper()
	url := os.Getenv("CARILLON_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("CARILLON_TEST_REDIS: %v", err)
	}
	return opts
}

// newClient returns a client of the test Redis, closed at the end of the
// test; name, when set, names its connections (CLIENT LIST shows it).
func newClient(t *testing.T, name string) *redis.Client {
	t.Helper()
	opts := redisOptions(t)
	opts.ClientName = name
	return openClient(t, opts)
}

func openClient(t *testing.T, opts *redis.Options) *redis.Client {
	t.Helper()
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil && opts.Dialer == nil {
		if os.Getenv("CARILLON_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis at %s not reachable: %v", opts.Addr, err)
		}
		t.Skipf("redis at %s not reachable (set CARILLON_TEST_REDIS, or CARILLON_REQUIRE_REDIS=1 to fail): %v", opts.Addr, err)
	}
	return c
}

// deadClient returns a client of an address where nothing listens.
func deadClient(t *testing.T) *redis.Client {
	t.Helper()
	newClient(t, "") // skips when there is no Redis at all, like the others
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// testPrefix returns a key prefix of the test's own and deletes its keys at
// the end.
func testPrefix(t *testing.T) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "carillon-test:" + hex.EncodeToString(b[:]) + ":"
	admin := newClient(t, "")
	t.Cleanup(func() {
		ctx := context.Background()
		iter := admin.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			admin.Del(ctx, keys...)
		}
	})
	return prefix
}

// logBuffer collects what a logger writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, nil)), lb
}

// flakyDialer reaches the test Redis until it is set down: then it refuses
// new connections and cuts the open ones, as an outage would. Frozen, its
// connections read nothing (until their deadline), as through a network
// that swallows packets.
type flakyDialer struct {
	mu     sync.Mutex
	down   bool
	frozen bool
	conns  []net.Conn
}

func (d *flakyDialer) setFrozen(frozen bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.frozen = frozen
}

func (d *flakyDialer) isFrozen() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.frozen
}

type freezableConn struct {
	net.Conn
	d        *flakyDialer
	mu       sync.Mutex
	deadline time.Time
}

func (c *freezableConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *freezableConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *freezableConn) Read(p []byte) (int, error) {
	for c.d.isFrozen() {
		c.mu.Lock()
		dl := c.deadline
		c.mu.Unlock()
		if !dl.IsZero() && time.Now().After(dl) {
			return 0, os.ErrDeadlineExceeded
		}
		time.Sleep(5 * time.Millisecond)
	}
	return c.Conn.Read(p)
}

func (d *flakyDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return nil, errors.New("flaky dialer: connection refused")
	}
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.conns = append(d.conns, c)
	return &freezableConn{Conn: c, d: d}, nil
}

func (d *flakyDialer) setDown(down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down = down
	if down {
		for _, c := range d.conns {
			c.Close()
		}
		d.conns = nil
	}
}

func flakyClient(t *testing.T) (*redis.Client, *flakyDialer) {
	t.Helper()
	newClient(t, "") // skips when there is no Redis
	d := &flakyDialer{}
	opts := redisOptions(t)
	opts.Dialer = d.dial
	opts.MaxRetries = -1
	return openClient(t, opts), d
}

// eventually polls cond every 10 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
