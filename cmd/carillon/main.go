// Command carillon is the Carillon chat-room server and its command-line
// client. `carillon serve` runs the server; see `carillon --help`.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/carillon-chat/carillon/app"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type serveCmd struct {
	Addr          string        `default:":8080" env:"CARILLON_ADDR" help:"Address to listen on."`
	Data          string        `default:"./carillon-data" env:"CARILLON_DATA" help:"Data directory (SQLite database, secret key)."`
	Database      string        `env:"CARILLON_DATABASE" help:"postgres:// DSN to store data in PostgreSQL instead of SQLite."`
	Redis         string        `env:"CARILLON_REDIS" help:"redis:// URL for running several nodes."`
	RedisPrefix   string        `name:"redis-prefix" default:"carillon:" env:"CARILLON_REDIS_PREFIX" help:"Prefix of Redis keys and channels (one per cluster)."`
	PublicURL     string        `name:"public-url" env:"CARILLON_PUBLIC_URL" help:"URL under which clients reach this server (used in webhook URLs)."`
	TLSCert       string        `name:"tls-cert" env:"CARILLON_TLS_CERT" help:"TLS certificate file (PEM)." type:"path"`
	TLSKey        string        `name:"tls-key" env:"CARILLON_TLS_KEY" help:"TLS private key file (PEM)." type:"path"`
	WebhookRate   float64       `name:"webhook-rate" default:"1" env:"CARILLON_WEBHOOK_RATE" help:"Messages per second per webhook."`
	WebhookBurst  int           `name:"webhook-burst" default:"1" env:"CARILLON_WEBHOOK_BURST" help:"Messages a webhook may send at once."`
	LogFormat     string        `name:"log-format" default:"text" enum:"text,json" env:"CARILLON_LOG_FORMAT" help:"Log format: text or json."`
	AdminEmail    string        `name:"admin-email" env:"CARILLON_ADMIN_EMAIL" help:"E-mail of the instance admin created on first start (default admin@localhost)."`
	AdminToken    string        `name:"admin-token" env:"CARILLON_ADMIN_TOKEN" help:"API token of the instance admin (at least 32 characters)."`
	SecretKeyFile string        `name:"secret-key-file" env:"CARILLON_SECRET_KEY_FILE" help:"Secret key file (default <data>/secret.key)."`
	DrainDelay    time.Duration `name:"drain-delay" default:"2s" env:"CARILLON_DRAIN_DELAY" help:"On SIGTERM, keep serving this long with /readyz failing before stopping."`
	MetricsToken  string        `name:"metrics-token" env:"CARILLON_METRICS_TOKEN" help:"Scrape-only bearer token for GET /metrics (the admin's API token works too)."`
	TrustedProxy  []string      `name:"trusted-proxy" env:"CARILLON_TRUSTED_PROXY" help:"CIDR of a reverse proxy whose X-Forwarded-For names the client (repeatable)."`
}

func (c *serveCmd) Run() error {
	var handler slog.Handler = slog.NewTextHandler(os.Stderr, nil)
	if c.LogFormat == "json" {
		handler = slog.NewJSONHandler(os.Stderr, nil)
	}
	log := slog.New(handler)
	slog.SetDefault(log)
	addSpareProcs(c.Database == "")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := app.Run(ctx, app.Config{
		Addr: c.Addr, DataDir: c.Data, Database: c.Database, Redis: c.Redis, RedisPrefix: c.RedisPrefix, PublicURL: c.PublicURL,
		TLSCert: c.TLSCert, TLSKey: c.TLSKey, WebhookRate: c.WebhookRate, WebhookBurst: c.WebhookBurst,
		AdminEmail: c.AdminEmail, AdminToken: c.AdminToken, SecretKeyFile: c.SecretKeyFile, TrustedProxies: c.TrustedProxy, MetricsToken: c.MetricsToken, DrainDelay: c.DrainDelay,
		Logger: log, Banner: os.Stdout,
	})
	if err != nil {
		log.Error("carillon serve failed", "err", err)
	}
	return err
}

type versionCmd struct{}

func (versionCmd) Run() error {
	fmt.Println("carillon", version)
	return nil
}

var cli struct {
	Serve    serveCmd    `cmd:"" help:"Run the server."`
	Post     postCmd     `cmd:"" help:"Post a message to a Chime-format webhook URL."`
	Users    usersCmd    `cmd:"" help:"Manage users (instance admin)."`
	Rooms    roomsCmd    `cmd:"" help:"Manage rooms."`
	Webhooks webhooksCmd `cmd:"" help:"Manage a room's webhooks (room administrators)."`
	Version  versionCmd  `cmd:"" help:"Print the version."`

	// Operations on the stored data (docs/deploy.md).
	Backup         backupCmd         `cmd:"" help:"Copy the SQLite database to a file while the server runs."`
	MigrateStorage migrateStorageCmd `cmd:"" name:"migrate-storage" help:"Copy a stopped server's SQLite database into an empty PostgreSQL database."`
}

func main() {
	ctx := kong.Parse(&cli,
		kong.Name("carillon"),
		kong.Description("Self-hosted chat rooms with Amazon Chime-compatible incoming webhooks."),
		kong.UsageOnError())
	var err error
	switch cmd := ctx.Command(); {
	case strings.HasPrefix(cmd, "users ") || strings.HasPrefix(cmd, "rooms ") || strings.HasPrefix(cmd, "webhooks "):
		err = runAdmin(cmd)
	default:
		err = ctx.Run()
	}
	if err != nil {
		os.Exit(1)
	}
}
