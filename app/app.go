// Package app assembles a Carillon server from its parts (storage, secret
// key, rate limiters, fan-out, write path, HTTP) and runs it until its
// context ends, then shuts it down gracefully.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/feed"
	"github.com/carillon-chat/carillon/ingest"
	"github.com/carillon-chat/carillon/metrics"
	"github.com/carillon-chat/carillon/secret"
	"github.com/carillon-chat/carillon/server"
	"github.com/carillon-chat/carillon/storecache"
)

// Config is the configuration of `carillon serve`.
type Config struct {
	Addr     string
	DataDir  string
	Database string // a postgres:// DSN selects PostgreSQL (not in this build)
	Redis    string
	// RedisPrefix starts every Redis key and channel name (default
	// "carillon:"), so that several clusters can share one Redis.
	RedisPrefix   string
	PublicURL     string
	TLSCert       string
	TLSKey        string
	WebhookRate   float64
	WebhookBurst  int
	AdminEmail    string
	AdminToken    string
	SecretKeyFile string
	// TrustedProxies are CIDRs of reverse proxies whose X-Forwarded-For
	// names the client (for per-address login limits).
	TrustedProxies []string
	// MaxInFlight bounds webhook requests in progress (0: the server's
	// default).
	MaxInFlight int
	// DrainDelay is how long to keep serving, not ready, after the stop
	// signal (0: stop at once).
	DrainDelay time.Duration
	// MetricsToken is a scrape-only bearer token for GET /metrics.
	MetricsToken string
	Logger       *slog.Logger
	// Banner receives the start-up banner (standard output).
	Banner io.Writer
	// Ready, when set, is called with the listening address once the
	// server accepts connections.
	Ready func(addr net.Addr)

	// HTTP timeouts; zero means the default below. Tests shorten them to
	// exercise slow clients quickly.
	ReadHeaderTimeout time.Duration // request line and headers (slowloris)
	ReadTimeout       time.Duration // whole request, for requests without a shorter bound
	IdleTimeout       time.Duration // keep-alive connections between requests
	BodyTimeout       time.Duration // a webhook request body, from its first read
}

// Defaults of the HTTP server's limits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultBodyTimeout       = server.DefaultBodyTimeout
	MaxHeaderBytes           = 64 << 10
)

// PresenceGrace is how long a member stays present after their last event
// stream closes.
const PresenceGrace = 30 * time.Second

// LoginAttemptsPerMinute is how many failed logins a client address, and
// separately an account, may make per minute (in a burst, then refilling).
const LoginAttemptsPerMinute = 10

// ShutdownTimeout bounds the wait for in-flight requests on SIGTERM, after
// the drain delay.
const ShutdownTimeout = 7 * time.Second

// DefaultDrainDelay is how long a stopping server keeps serving with
// readiness failing, so that load balancers stop sending it new requests.
const DefaultDrainDelay = 2 * time.Second

// Run serves until ctx ends, then drains and returns.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Banner == nil {
		cfg.Banner = io.Discard
	}
	if cfg.AdminToken != "" && len(cfg.AdminToken) < carillon.MinAdminTokenLen {
		return fmt.Errorf("CARILLON_ADMIN_TOKEN must be at least %d characters long (it has %d)", carillon.MinAdminTokenLen, len(cfg.AdminToken))
	}
	if cfg.WebhookRate <= 0 || cfg.WebhookBurst < 1 {
		return errors.New("--webhook-rate must be above 0 and --webhook-burst at least 1")
	}
	proxies, err := parsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return err
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	keyFile := cfg.SecretKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "secret.key")
	}
	key, err := secret.LoadOrCreateKey(keyFile)
	if err != nil {
		return err
	}

	db, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	var cacheCfg storecache.Config
	if cfg.Database == "" {
		// The embedded database has this process as its only writer, and
		// the cache forgets whatever the process changes: lifetimes only
		// matter for changes made by other nodes of a cluster.
		cacheCfg.WebhookTTL, cacheCfg.MembersTTL, cacheCfg.TokenTTL = 10*time.Minute, 10*time.Minute, 10*time.Minute
	}
	store := storecache.New(db, cacheCfg)
	if err := checkKeyFingerprint(ctx, store, key); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = defaultPublicURL(ln.Addr(), cfg.TLSCert != "")
	}
	first, err := bootstrap(ctx, store, key, cfg, publicURL)
	if err != nil {
		return err
	}

	bg, stopBackground := context.WithCancel(context.Background())
	defer stopBackground()
	shared, err := newShared(bg, cfg, log)
	if err != nil {
		return err
	}
	defer shared.close()
	broker, tracker := shared.broker, shared.presence
	if shared.crossNode {
		// Nodes publish in no common order: each node reads messages
		// back from storage, in commit order, for its streams.
		ordered, err := feed.New(ctx, shared.broker, store, streamBuffer, log)
		if err != nil {
			return err
		}
		broker = ordered
	}
	webhookLimiter, userLimiter, loginLimiter := shared.webhookLimiter, shared.userLimiter, shared.loginLimiter
	go announcePresence(bg, store, tracker, broker, log)

	meters := metrics.New()
	ingestCfg := ingest.Config{Logger: log, Metrics: meters}
	if cfg.Database == "" {
		// This process serves every read of the embedded database and
		// shows unwritten last-used times from memory: they can wait
		// long, so a webhook costs one UPDATE a minute, not one per post.
		// A crash loses at most that minute of last-used times, never a
		// message.
		ingestCfg.TouchDelay = time.Minute
	}
	writer := ingest.New(store, broker, tracker, webhookLimiter, userLimiter, ingestCfg)
	go writer.Run(bg)

	srv := server.New(server.Config{Store: store, Ingest: writer, Key: key, PublicURL: publicURL, Logger: log,
		Broker: broker, Presence: tracker, LoginLimiter: loginLimiter, TrustedProxies: proxies, MaxInFlight: cfg.MaxInFlight,
		Metrics: meters, MetricsToken: cfg.MetricsToken,
		SecureCookies: cfg.TLSCert != "", BodyTimeout: orDefault(cfg.BodyTimeout, DefaultBodyTimeout)})
	httpServer := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: orDefault(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(cfg.ReadTimeout, DefaultReadTimeout),
		IdleTimeout:       orDefault(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return bg },
	}
	if cfg.TLSCert != "" {
		httpServer.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}

	printBanner(cfg.Banner, publicURL, first)
	log.Info("carillon listening", "addr", ln.Addr().String(), "public_url", publicURL, "data", cfg.DataDir)
	serveErr := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			serveErr <- httpServer.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			serveErr <- httpServer.Serve(ln)
		}
	}()
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}

	select {
	case err := <-serveErr:
		writer.Close()
		return err
	case <-ctx.Done():
	}

	// Drain: readiness fails and event streams close (their clients
	// reconnect elsewhere) while requests are still served for the drain
	// delay; then in-flight requests finish (their messages commit), and
	// the writer empties its queue.
	log.Info("shutting down", "drain_delay", cfg.DrainDelay)
	srv.SetDraining()
	broker.Close()
	time.Sleep(cfg.DrainDelay)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err = httpServer.Shutdown(shutdownCtx)
	writer.Close()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	log.Info("stopped")
	return nil
}

// parsePrefixes reads CIDRs (a bare address counts as a single host).
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if !strings.Contains(s, "/") {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return nil, fmt.Errorf("--trusted-proxy %q: %v", s, err)
				}
				s = netip.PrefixFrom(a, a.BitLen()).String()
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("--trusted-proxy %q: %v", s, err)
			}
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// orDefault is d, or def when d is not set.
func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

const metaKeyFingerprint = "secret_key_fingerprint"

// checkKeyFingerprint records the secret key's fingerprint on first start
// and refuses a different key later: its webhook URLs could not be shown.
func checkKeyFingerprint(ctx context.Context, store carillon.Store, key *secret.Key) error {
	fp, err := store.Meta(ctx, metaKeyFingerprint)
	if err != nil {
		return err
	}
	switch fp {
	case "":
		return store.SetMeta(ctx, metaKeyFingerprint, key.Fingerprint())
	case key.Fingerprint():
		return nil
	default:
		return errors.New("the secret key does not match the one this database was created with; use the original secret.key (or CARILLON_SECRET_KEY_FILE)")
	}
}

func defaultPublicURL(addr net.Addr, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return scheme + "://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// sampleContent is Amazon Chime's own sample webhook message.
const sampleContent = "Message Body emoji test: :) :+1: link test: http://sample.com email test: marymajor@example.com All Members: @All All Present Members: @Present"

func printBanner(w io.Writer, publicURL string, first *firstRun) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n  Carillon is running at %s\n", publicURL)
	if first != nil {
		fmt.Fprintf(&b, "\n  First start: created the instance admin, the room %q and its webhook %q.\n", first.RoomName, first.WebhookName)
		fmt.Fprintf(&b, "    admin e-mail:  %s\n", first.Email)
		if first.Password != "" {
			fmt.Fprintf(&b, "    password:      %s\n", first.Password)
			fmt.Fprintf(&b, "    API token:     %s\n", first.Token)
			fmt.Fprintf(&b, "    (saved in %s; this is the only time they are printed)\n", first.CredentialsFile)
		} else {
			fmt.Fprintf(&b, "    API token:     the one in CARILLON_ADMIN_TOKEN\n")
		}
		fmt.Fprintf(&b, "\n  Post to the demo webhook:\n\n")
		fmt.Fprintf(&b, "    curl -X POST '%s' \\\n      -H 'Content-Type: application/json' \\\n      -d '{\"Content\":\"%s\"}'\n", first.WebhookURL, sampleContent)
	}
	b.WriteString("\n")
	io.WriteString(w, b.String())
}
