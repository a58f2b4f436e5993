package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/fanout"
	"github.com/carillon-chat/carillon/postgres"
	"github.com/carillon-chat/carillon/presence"
	"github.com/carillon-chat/carillon/ratelimit"
	"github.com/carillon-chat/carillon/redisstore"
	"github.com/carillon-chat/carillon/sqlite"
)

// openStore opens the embedded SQLite database in the data directory, or
// PostgreSQL when --database names one.
func openStore(ctx context.Context, cfg Config) (carillon.Store, error) {
	switch {
	case cfg.Database == "":
		return sqlite.Open(ctx, cfg.DataDir)
	case strings.HasPrefix(cfg.Database, "postgres://"), strings.HasPrefix(cfg.Database, "postgresql://"):
		return postgres.Open(ctx, cfg.Database)
	default:
		return nil, fmt.Errorf("--database must be a postgres:// URL (or unset for the embedded SQLite database)")
	}
}

// streamBuffer is how many events a stream may fall behind before it is
// dropped.
const streamBuffer = 1024

// shared holds the services a node shares with the other nodes of a
// cluster through Redis, or keeps to itself when it runs alone.
type shared struct {
	broker interface {
		carillon.Broker
		Close()
	}
	presence                                  carillon.Presence
	webhookLimiter, userLimiter, loginLimiter carillon.RateLimiter
	// crossNode: events come from several nodes, in no guaranteed order.
	crossNode bool
	close     func()
}

func newShared(ctx context.Context, cfg Config, log *slog.Logger) (*shared, error) {
	loginRate := LoginAttemptsPerMinute / 60.0
	if cfg.Redis == "" {
		webhook := ratelimit.New(cfg.WebhookRate, cfg.WebhookBurst, nil)
		user := ratelimit.New(carillon.UserMessagesPerSecond, carillon.UserMessagesPerSecond, nil)
		login := ratelimit.New(loginRate, LoginAttemptsPerMinute, nil)
		for _, l := range []*ratelimit.Limiter{webhook, user, login} {
			go l.Run(ctx, time.Minute)
		}
		return &shared{broker: fanout.New(streamBuffer), presence: presence.New(PresenceGrace, nil),
			webhookLimiter: webhook, userLimiter: user, loginLimiter: login, close: func() {}}, nil
	}

	opts, err := redis.ParseURL(cfg.Redis)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	client := redis.NewClient(opts)
	prefix := cfg.RedisPrefix
	if prefix == "" {
		prefix = "carillon:"
	}
	limiter := func(name string, rate float64, burst int) *redisstore.RateLimiter {
		l := redisstore.NewRateLimiter(client, rate, burst, redisstore.RateLimiterOptions{Prefix: prefix + "rl:" + name + ":", Logger: log})
		go l.Run(ctx, time.Minute)
		return l
	}
	pres := redisstore.NewPresence(client, redisstore.PresenceOptions{Prefix: prefix + "presence:", Grace: PresenceGrace})
	go pres.Run(ctx)
	broker := redisstore.NewBroker(client, redisstore.BrokerOptions{Channel: prefix + "events"})
	return &shared{
		broker:         broker,
		presence:       pres,
		webhookLimiter: limiter("webhook", cfg.WebhookRate, cfg.WebhookBurst),
		userLimiter:    limiter("user", carillon.UserMessagesPerSecond, carillon.UserMessagesPerSecond),
		loginLimiter:   limiter("login", loginRate, LoginAttemptsPerMinute),
		crossNode:      true,
		close:          func() { client.Close() },
	}, nil
}
