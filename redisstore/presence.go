package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/presence"
)

// Presence defaults (SPEC §2: present for 30 s after the last stream
// closes; in a cluster a node that dies stops counting within 40 s).
const (
	DefaultPresencePrefix  = "carillon:presence:"
	DefaultPresenceGrace   = 30 * time.Second
	DefaultPresenceTTL     = 40 * time.Second
	DefaultPresenceRefresh = 10 * time.Second
)

// presenceChunk bounds the users handled by one script call, so that no
// call holds Redis for long.
const presenceChunk = 500

// PresenceOptions tunes a Presence. The zero value gives SPEC's durations.
type PresenceOptions struct {
	// Prefix starts every key (DefaultPresencePrefix when empty). Every
	// node of a cluster uses the same.
	Prefix string
	// NodeID names this node's entries (random when empty). Two live
	// processes must never share one.
	NodeID string
	// Grace is how long a member stays present after their last stream on
	// this node closes (DefaultPresenceGrace when 0).
	Grace time.Duration
	// TTL is how long an entry of a node with open streams lives without a
	// refresh: a node that dies stops counting within TTL
	// (DefaultPresenceTTL when 0).
	TTL time.Duration
	// Refresh is how often Run renews the entries of open streams
	// (DefaultPresenceRefresh when 0); keep it well under TTL.
	Refresh time.Duration
	// Timeout bounds one call to Redis (2 s when 0).
	Timeout time.Duration
	// ProbeInterval is how often, once Redis failed, a background PING
	// checks whether it is back; meanwhile Connect and Present use this
	// node's view only (DefaultProbeInterval when 0).
	ProbeInterval time.Duration
	// Logger receives the degraded and recovered notices (slog.Default()
	// when nil).
	Logger *slog.Logger
}

// Presence tracks the members' event streams across all nodes (SPEC §2).
//
// Layout in Redis:
//   - <prefix>u:<user> — a sorted set with one member per node that has (or
//     recently had) a stream of the user; its score is when that entry
//     expires, in milliseconds of the Redis clock. A node with open
//     streams renews its entry to now+TTL every Refresh; when its last
//     stream of the user closes it sets now+Grace. The grace is an expiry,
//     not a timer, so a node that dies stops counting on its own. The key
//     itself expires with its latest entry.
//   - <prefix>due — a sorted set of users whose presence may change, scored
//     by when to look at them again: at once after a first stream opens,
//     else when their latest entry expires.
//   - <prefix>announced — the set of users last reported present.
//
// Present(user) is "the user has an entry that has not expired".
//
// Changes is decided in Redis, once for the whole cluster: it takes the
// users that are due, compares their presence now with the announced set,
// updates that set and returns the differences, all in one script. So each
// change is returned by exactly one node's Changes (whichever calls first),
// and that node's announcement reaches the other nodes' streams through
// the cluster-wide Broker. This is why Presence must be paired with a
// Broker spanning the nodes (Broker in this package), never with the
// in-process one. Only due users are looked at: the new streams, the
// closes, and each present member about once per TTL (when the expiry seen
// at the last look comes; renewals have moved it on by then), never every
// present member every second. A change whose announcement then fails to
// publish is not announced again: the Broker drops the streams that missed
// it, but their replay covers messages and notifications, not presence.
//
// While Redis is unreachable, Connect still succeeds (Run writes the entry
// once Redis is back), Present answers from this node's streams alone, and
// Changes fails, so no change is lost: it is announced after recovery.
// A close whose grace entry cannot be written leaves the member present
// until the node's last renewal expires (TTL instead of Grace).
type Presence struct {
	client  redis.UniversalClient
	prefix  string
	node    string
	grace   time.Duration
	ttl     time.Duration
	refresh time.Duration
	timeout time.Duration

	local  *presence.Tracker // this node's view, for the degraded mode
	health *health

	mu    sync.Mutex
	users map[string]*userStreams
}

// userStreams is this node's state of one user. wmu orders the writes of
// the user's entry: each writer holds it, then writes the state current at
// that moment, so the last write always carries the latest state even when
// a close and a reconnect race.
type userStreams struct {
	wmu     sync.Mutex
	streams int        // open streams; under Presence.mu
	busy    int        // goroutines holding or awaiting wmu; under Presence.mu
	written entryState // what Redis holds for this node; under wmu
}

type entryState int

const (
	entryNone  entryState = iota // nothing written, or the write failed
	entryOpen                    // expires at the last renewal + TTL
	entryGrace                   // expires at the last close + Grace
)

var _ carillon.Presence = (*Presence)(nil)

// NewPresence returns a Presence. Run must run for as long as it is used:
// it renews this node's entries.
func NewPresence(client redis.UniversalClient, opts PresenceOptions) *Presence {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPresencePrefix
	}
	if opts.NodeID == "" {
		opts.NodeID = newNodeID()
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultPresenceGrace
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultPresenceTTL
	}
	if opts.Refresh <= 0 {
		opts.Refresh = DefaultPresenceRefresh
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	return &Presence{
		client: client, prefix: opts.Prefix, node: opts.NodeID,
		grace: opts.Grace, ttl: opts.TTL, refresh: opts.Refresh, timeout: opts.Timeout,
		local: presence.New(opts.Grace, nil),
		health: newHealth(opts.Logger, opts.ProbeInterval, pinger(client),
			"redis unreachable: presence degraded to this node's streams",
			"redis reachable again: presence shared across nodes again"),
		users: make(map[string]*userStreams),
	}
}

func (p *Presence) userKey(id string) string { return p.prefix + "u:" + id }
func (p *Presence) dueKey() string           { return p.prefix + "due" }
func (p *Presence) announcedKey() string     { return p.prefix + "announced" }

// setScript writes this node's entry for each user in ARGV[4..] (their
// keys in KEYS[2..]; KEYS[1] is the due set): it expires ARGV[2]
// milliseconds from now. ARGV[1] is the node id and ARGV[3] says when the
// user is due:
//   - "open": now (a first stream opened: announce soon);
//   - "close": when this entry expires, unless due earlier already;
//   - "renew": when this entry expires, unless due already (normally
//     it is; this restores the due set after Redis lost its data).
//
// Times are milliseconds of the Redis clock.
var setScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local exp = now + tonumber(ARGV[2])
local mode = ARGV[3]
for i = 2, #KEYS do
  local k = KEYS[i]
  local user = ARGV[i + 2]
  redis.call('ZADD', k, exp, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', k, string.format('%.0f', tonumber(top[2])))
  if mode == 'open' then
    redis.call('ZADD', KEYS[1], 'LT', now, user)
  elseif mode == 'close' then
    redis.call('ZADD', KEYS[1], 'LT', exp, user)
  else
    redis.call('ZADD', KEYS[1], 'NX', exp, user)
  end
end
return 1
`)

// presentScript returns, for each key, 1 when it holds an entry that has
// not expired, else 0.
var presentScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('ZCOUNT', KEYS[i], '(' .. now, '+inf') > 0 and 1 or 0
end
return out
`)

// dueScript returns up to ARGV[1] users of the due set KEYS[1] whose time
// has come.
var dueScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
`)

// checkScript looks at the users ARGV[1..] (their keys in KEYS[3..]; KEYS[1]
// is the due set, KEYS[2] the announced set): it drops their expired
// entries, keeps a present user due for when their latest entry expires
// and forgets an absent one, and returns {user, 1|0, ...} for those whose
// presence differs from the announced one, updating it. Being one script,
// it hands each change to exactly one caller.
var checkScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, #ARGV do
  local user = ARGV[i]
  local k = KEYS[i + 2]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now)
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  local present = #top > 0
  if present then
    redis.call('ZADD', KEYS[1], top[2], user)
  else
    redis.call('ZREM', KEYS[1], user)
  end
  local was = redis.call('SISMEMBER', KEYS[2], user) == 1
  if present ~= was then
    if present then
      redis.call('SADD', KEYS[2], user)
      out[#out + 1] = user
      out[#out + 1] = 1
    else
      redis.call('SREM', KEYS[2], user)
      out[#out + 1] = user
      out[#out + 1] = 0
    end
  end
end
return out
`)

// Connect records an open stream of userID; the returned function records
// its close. It fails only when ctx is cancelled: while Redis is
// unreachable the stream is recorded on this node and written by Run later.
func (p *Presence) Connect(ctx context.Context, userID string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	localClose, _ := p.local.Connect(ctx, userID)
	p.mu.Lock()
	st := p.users[userID]
	if st == nil {
		st = &userStreams{}
		p.users[userID] = st
	}
	st.streams++
	st.busy++
	p.mu.Unlock()
	p.sync(ctx, userID, st)

	var once sync.Once
	return func() {
		once.Do(func() {
			localClose()
			p.mu.Lock()
			st.streams--
			st.busy++
			p.mu.Unlock()
			p.sync(context.Background(), userID, st)
		})
	}, nil
}

// sync brings this node's entry for userID in line with its streams now,
// then releases the caller's hold on st (busy).
func (p *Presence) sync(ctx context.Context, userID string, st *userStreams) {
	st.wmu.Lock()
	p.mu.Lock()
	open := st.streams > 0
	p.mu.Unlock()
	var mode string
	var ttl time.Duration
	var next entryState
	switch {
	case open && st.written != entryOpen:
		mode, ttl, next = "open", p.ttl, entryOpen
	case !open:
		mode, ttl, next = "close", p.grace, entryGrace
	}
	if mode != "" && p.health.try() {
		if err := p.set(ctx, mode, ttl, []string{userID}); err != nil {
			if ctx.Err() == nil {
				p.health.fail(err)
			}
			st.written = entryNone
		} else {
			p.health.ok()
			st.written = next
		}
	}
	st.wmu.Unlock()
	p.release(userID, st)
}

// release drops a hold on st and forgets the user once nothing refers to
// it any more.
func (p *Presence) release(userID string, st *userStreams) {
	p.mu.Lock()
	st.busy--
	if st.streams == 0 && st.busy == 0 && p.users[userID] == st {
		delete(p.users, userID)
	}
	p.mu.Unlock()
}

func (p *Presence) set(ctx context.Context, mode string, ttl time.Duration, userIDs []string) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	keys := make([]string, 0, len(userIDs)+1)
	keys = append(keys, p.dueKey())
	args := make([]any, 0, len(userIDs)+3)
	args = append(args, p.node, ttl.Milliseconds(), mode)
	for _, id := range userIDs {
		keys = append(keys, p.userKey(id))
		args = append(args, id)
	}
	return setScript.Run(ctx, p.client, keys, args...).Err()
}

// Run renews this node's entries every Refresh until ctx ends (and writes
// those that an outage kept from Redis). A node that stops running it
// stops counting within TTL, as a dead one does.
func (p *Presence) Run(ctx context.Context) {
	t := time.NewTicker(p.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.renew(ctx)
		p.local.Changes(ctx) // only forgets the fallback's departed users
	}
}

// renew writes now+TTL for every user with open streams on this node.
func (p *Presence) renew(ctx context.Context) {
	type held struct {
		id string
		st *userStreams
	}
	var all []held
	p.mu.Lock()
	for id, st := range p.users {
		if st.streams > 0 {
			st.busy++
			all = append(all, held{id, st})
		}
	}
	p.mu.Unlock()

	for len(all) > 0 && ctx.Err() == nil {
		chunk := all[:min(len(all), presenceChunk)]
		all = all[len(chunk):]
		// Hold the writers of the chunk, so that no close lands between
		// the check below and the write.
		for _, h := range chunk {
			h.st.wmu.Lock()
		}
		var renewIDs, openIDs []string
		var renewSt, openSt []*userStreams
		p.mu.Lock()
		for _, h := range chunk {
			if h.st.streams == 0 {
				continue // closed meanwhile: its close writes the grace
			}
			if h.st.written == entryOpen {
				renewIDs, renewSt = append(renewIDs, h.id), append(renewSt, h.st)
			} else {
				openIDs, openSt = append(openIDs, h.id), append(openSt, h.st)
			}
		}
		p.mu.Unlock()
		err := errors.Join(
			p.setAll(ctx, "renew", renewIDs, renewSt),
			p.setAll(ctx, "open", openIDs, openSt))
		if err != nil && ctx.Err() == nil {
			p.health.fail(err)
		} else if err == nil {
			p.health.ok()
		}
		for _, h := range chunk {
			h.st.wmu.Unlock()
			p.release(h.id, h.st)
		}
	}
	for _, h := range all { // left over when ctx ended
		p.release(h.id, h.st)
	}
}

// setAll writes entries (their writers held) and records the outcome.
func (p *Presence) setAll(ctx context.Context, mode string, ids []string, sts []*userStreams) error {
	if len(ids) == 0 {
		return nil
	}
	err := p.set(ctx, mode, p.ttl, ids)
	for _, st := range sts {
		if err != nil {
			st.written = entryNone
		} else {
			st.written = entryOpen
		}
	}
	return err
}

// Present reports which of the given users are present on any node. While
// Redis is unreachable it answers from this node's streams.
func (p *Presence) Present(ctx context.Context, userIDs []string) (map[string]bool, error) {
	out := make(map[string]bool, len(userIDs))
	if len(userIDs) == 0 {
		return out, nil
	}
	if !p.health.try() {
		return p.local.Present(ctx, userIDs)
	}
	rctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	for start := 0; start < len(userIDs); start += presenceChunk {
		ids := userIDs[start:min(len(userIDs), start+presenceChunk)]
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = p.userKey(id)
		}
		res, err := presentScript.Run(rctx, p.client, keys).Int64Slice()
		if err == nil && len(res) != len(ids) {
			err = errors.New("redisstore: unexpected reply from the presence script")
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			p.health.fail(err)
			return p.local.Present(ctx, userIDs)
		}
		for i, id := range ids {
			if res[i] == 1 {
				out[id] = true
			}
		}
	}
	p.health.ok()
	return out, nil
}

// Changes returns the users whose presence changed since it was last
// announced by any node, with their presence now. Each change is returned
// to one caller in the cluster only (see Presence). While Redis is
// unreachable it fails; the changes are returned once it is back.
func (p *Presence) Changes(ctx context.Context) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	out := map[string]bool{}
	// A few rounds at most, so that a burst of changes (a node's streams
	// all reconnecting) drains without one call taking long.
	for round := 0; round < 4; round++ {
		due, err := dueScript.Run(ctx, p.client, []string{p.dueKey()}, presenceChunk).StringSlice()
		if err != nil {
			p.health.fail(err)
			return nil, fmt.Errorf("redisstore: presence changes: %w", err)
		}
		if len(due) == 0 {
			break
		}
		keys := make([]string, 0, len(due)+2)
		keys = append(keys, p.dueKey(), p.announcedKey())
		args := make([]any, len(due))
		for i, id := range due {
			keys = append(keys, p.userKey(id))
			args[i] = id
		}
		res, err := checkScript.Run(ctx, p.client, keys, args...).Slice()
		if err != nil {
			p.health.fail(err)
			return nil, fmt.Errorf("redisstore: presence changes: %w", err)
		}
		for i := 0; i+1 < len(res); i += 2 {
			id, _ := res[i].(string)
			n, _ := res[i+1].(int64)
			out[id] = n == 1
		}
		if len(due) < presenceChunk {
			break
		}
	}
	p.health.ok()
	return out, nil
}
