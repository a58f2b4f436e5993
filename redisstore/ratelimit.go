package redisstore

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/ratelimit"
)

// DefaultRateLimitPrefix starts the keys of a RateLimiter.
const DefaultRateLimitPrefix = "carillon:rl:"

// RateLimiterOptions tunes a RateLimiter. The zero value is ready to use.
type RateLimiterOptions struct {
	// Prefix starts every key (DefaultRateLimitPrefix when empty). Two
	// limiters with different limits must not share a prefix.
	Prefix string
	// Timeout bounds one call to Redis (DefaultTimeout when 0); past it the
	// request is decided by the per-node fallback.
	Timeout time.Duration
	// ProbeInterval is how often, once Redis failed, a background PING
	// checks whether it is back; meanwhile every request goes to the
	// fallback (DefaultProbeInterval when 0).
	ProbeInterval time.Duration
	// Logger receives the degraded and recovered notices (slog.Default()
	// when nil).
	Logger *slog.Logger
}

// RateLimiter is a GCRA limiter (the token bucket as a "theoretical arrival
// time") kept in Redis, so that a key's budget is shared by every node.
//
// Per key, Redis holds one number: the TAT, the time at which the bucket
// would be full again, in microseconds of the Redis server's clock. A
// reservation succeeds when TAT + interval - burst*interval <= now and then
// moves TAT on by one interval; a refusal writes nothing, so refused
// requests spend no budget; Cancel moves TAT back by one interval. The key
// expires when its bucket is full again: from then on, a missing key and
// the stored one mean the same, so idle keys cost nothing. (That expiry is
// derived, not configured: any shorter one would hand out budget, any
// longer one only holds memory.)
//
// While Redis is unreachable, each node limits alone with an in-process
// limiter of the same rate and burst (SPEC §1), and the limiter logs once
// that it is degraded and once that it recovered.
type RateLimiter struct {
	client    redis.UniversalClient
	prefix    string
	interval  int64 // microseconds between two units
	burst     int
	unlimited bool
	timeout   time.Duration

	local  *ratelimit.Limiter
	health *health
}

var _ carillon.RateLimiter = (*RateLimiter)(nil)

// maxInterval stands for "never refills" (a rate of 0), about 31 years.
const maxInterval = 1e15

// NewRateLimiter returns a limiter allowing perSecond events per key with
// the given burst, as ratelimit.New does: burst is at least 1, an infinite
// rate allows everything, and a rate of 0 or below lets a key's burst
// through once and never refills it. The resolution is a microsecond, so
// rates up to about a million per second per key are exact.
func NewRateLimiter(client redis.UniversalClient, perSecond float64, burst int, opts RateLimiterOptions) *RateLimiter {
	if opts.Prefix == "" {
		opts.Prefix = DefaultRateLimitPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	burst = max(burst, 1)
	interval := int64(maxInterval)
	if perSecond > 0 {
		interval = int64(math.Max(1, math.Min(math.Round(1e6/perSecond), maxInterval)))
	}
	return &RateLimiter{
		client:    client,
		prefix:    opts.Prefix,
		interval:  interval,
		burst:     burst,
		unlimited: math.IsInf(perSecond, 1),
		timeout:   opts.Timeout,
		local:     ratelimit.New(perSecond, burst, nil),
		health: newHealth(opts.Logger, opts.ProbeInterval, pinger(client),
			"redis unreachable: rate limits degraded to per-node limits",
			"redis reachable again: rate limits shared across nodes again"),
	}
}

// reserveScript takes one unit of KEYS[1]'s budget if one is free now.
// ARGV[1] is the interval between units and ARGV[2] the burst. It returns
// {1, 0} when a unit was taken, else {0, microseconds until one is free}.
// Numbers are written with %.0f: Lua's default formatting of a number this
// large would round it.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
local newtat = tat + interval
local allowat = newtat - interval * tonumber(ARGV[2])
if now < allowat then
  return {0, allowat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', math.ceil((newtat - now) / 1000))
return {1, 0}
`)

// refundScript gives one unit back to KEYS[1] (ARGV[1] is the interval).
// A missing key is a full bucket: nothing to give back.
var refundScript = redis.NewScript(`
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local newtat = tat - tonumber(ARGV[1])
if newtat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.0f', newtat), 'PX', math.ceil((newtat - now) / 1000))
end
return 1
`)

// Reserve takes one unit of key's budget if one is free now. Only a
// cancelled ctx makes it fail: when Redis does not answer, the per-node
// fallback decides.
func (l *RateLimiter) Reserve(ctx context.Context, key string) (carillon.Reservation, error) {
	if l.unlimited {
		return carillon.Reservation{OK: true, Cancel: func() {}}, nil
	}
	if !l.health.try() {
		return l.local.Reserve(ctx, key)
	}
	rkey := l.prefix + key
	rctx, cancel := context.WithTimeout(ctx, l.timeout)
	res, err := reserveScript.Run(rctx, l.client, []string{rkey}, l.interval, l.burst).Int64Slice()
	cancel()
	if err == nil && len(res) != 2 {
		err = errors.New("redisstore: unexpected reply from the rate limit script")
	}
	if err != nil {
		if ctx.Err() != nil {
			return carillon.Reservation{}, ctx.Err() // the caller left: not Redis's fault
		}
		l.health.fail(err)
		return l.local.Reserve(ctx, key)
	}
	l.health.ok()
	if res[0] == 0 {
		return carillon.Reservation{RetryAfter: time.Duration(res[1]) * time.Microsecond}, nil
	}
	var once sync.Once
	return carillon.Reservation{OK: true, Cancel: func() {
		once.Do(func() { l.refund(rkey) })
	}}, nil
}

// refund gives a unit back. A refund lost to an outage (or skipped during
// one, so that a failing request is not held up) only leaves the key a
// little stricter until its bucket refills.
func (l *RateLimiter) refund(rkey string) {
	if !l.health.try() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := refundScript.Run(ctx, l.client, []string{rkey}, l.interval).Err(); err != nil {
		l.health.fail(err)
		return
	}
	l.health.ok()
}

// Run evicts the idle buckets of the per-node fallback every interval
// until ctx ends (as ratelimit.Limiter.Run; Redis keys expire by
// themselves).
func (l *RateLimiter) Run(ctx context.Context, interval time.Duration) {
	l.local.Run(ctx, interval)
}

// Degraded reports whether the last call to Redis failed, so that requests
// are limited per node.
func (l *RateLimiter) Degraded() bool { return l.health.degraded.Load() }
