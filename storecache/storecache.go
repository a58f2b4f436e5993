// Package storecache keeps the lookups made on every request in memory:
// webhooks by id and the members of a room (the message write path) and
// users by API token (every authenticated API call). It wraps any
// carillon.Store and drops entries when this process changes them; entries
// also expire, so that changes made by other nodes of a cluster show within
// the TTL. The write path stays correct with a stale entry: a message is
// stored only if its webhook still has the token it came with (checked in
// the storing transaction), and a token that does not match the cached one
// is looked up afresh before it is refused. Users are cached by API token
// and by web session only once found, so a new token or session works at
// once; a change to any user drops them all on this node, a logout drops
// its session, and other nodes see either within the TTL.
package storecache

import (
	"context"
	"sync"
	"time"

	"github.com/carillon-chat/carillon"
)

// Config sets the lifetimes and bounds of cached entries.
type Config struct {
	WebhookTTL time.Duration // default 1 minute
	MembersTTL time.Duration // default 5 seconds
	TokenTTL   time.Duration // users by API token or session; default 5 seconds, at most a minute for sessions
	MaxEntries int           // per cache; beyond it the cache starts over (default 100,000)
	Now        func() time.Time
}

// Store is a carillon.Store with cached webhook and member lookups.
type Store struct {
	carillon.Store
	cfg Config

	mu       sync.Mutex
	webhooks map[string]entry[carillon.Webhook]
	members  map[string]entry[[]carillon.Membership]
	tokens   map[string]entry[carillon.User] // by token hash
	sessions map[string]entry[carillon.User] // by session hash
	// credentialsChanged counts the user changes and logouts made through
	// this Store: a token or session lookup that raced one is not cached
	// (it may have read the user or session as it was).
	credentialsChanged uint64
}

type entry[T any] struct {
	value   T
	expires time.Time
}

// New wraps store.
func New(store carillon.Store, cfg Config) *Store {
	if cfg.WebhookTTL <= 0 {
		cfg.WebhookTTL = time.Minute
	}
	if cfg.MembersTTL <= 0 {
		cfg.MembersTTL = 5 * time.Second
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 5 * time.Second
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Store{Store: store, cfg: cfg,
		webhooks: make(map[string]entry[carillon.Webhook]),
		members:  make(map[string]entry[[]carillon.Membership]),
		tokens:   make(map[string]entry[carillon.User]),
		sessions: make(map[string]entry[carillon.User])}
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() carillon.Store { return s.Store }

// Webhook returns a webhook, from memory when it was looked up recently.
// Callers must not modify the result.
func (s *Store) Webhook(ctx context.Context, webhookID string) (*carillon.Webhook, error) {
	return lookupCopy(s, s.webhooks, webhookID, s.cfg.Now(), s.cfg.WebhookTTL, nil, func() (*carillon.Webhook, error) {
		return s.Store.Webhook(ctx, webhookID)
	})
}

// lookupCopy is lookup for values the store returns by pointer: the cache
// keeps a copy, and each caller gets a copy of its own.
func lookupCopy[T any](s *Store, m map[string]entry[T], key string, now time.Time, ttl time.Duration, changes *uint64, load func() (*T, error)) (*T, error) {
	v, err := lookup(s, m, key, now, ttl, changes, func() (T, error) {
		p, err := load()
		if err != nil {
			var zero T
			return zero, err
		}
		return *p, nil
	})
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// lookup returns the value of key in m while it is fresh at now, or loads
// it and keeps it for ttl. With changes set, a value loaded while the count
// it points to went up is not kept: it may predate the change.
func lookup[T any](s *Store, m map[string]entry[T], key string, now time.Time, ttl time.Duration, changes *uint64, load func() (T, error)) (T, error) {
	s.mu.Lock()
	e, ok := m[key]
	var changesBefore uint64
	if changes != nil {
		changesBefore = *changes
	}
	s.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.value, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	s.mu.Lock()
	if changes == nil || *changes == changesBefore {
		if len(m) >= s.cfg.MaxEntries {
			clear(m)
		}
		m[key] = entry[T]{v, now.Add(ttl)}
	}
	s.mu.Unlock()
	return v, nil
}

// ForgetWebhook drops a cached webhook, so that the next lookup reads the
// store (a token that does not match the cached one may be a new one).
func (s *Store) ForgetWebhook(webhookID string) {
	s.mu.Lock()
	delete(s.webhooks, webhookID)
	s.mu.Unlock()
}

// TouchWebhooks records last-used times and updates cached webhooks with
// them: a webhook shown from the cache must not lag behind by its lifetime.
func (s *Store) TouchWebhooks(ctx context.Context, lastUsed map[string]time.Time) error {
	if err := s.Store.TouchWebhooks(ctx, lastUsed); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range lastUsed {
		e, ok := s.webhooks[id]
		if !ok {
			continue
		}
		t = time.UnixMilli(t.UnixMilli()).UTC() // as stored
		if e.value.LastUsedAt == nil || t.After(*e.value.LastUsedAt) {
			e.value.LastUsedAt = &t
			s.webhooks[id] = e
		}
	}
	return nil
}

// Members returns a room's members, from memory when looked up recently.
// Callers must not modify the result.
func (s *Store) Members(ctx context.Context, roomID string) ([]carillon.Membership, error) {
	return lookup(s, s.members, roomID, s.cfg.Now(), s.cfg.MembersTTL, nil, func() ([]carillon.Membership, error) {
		return s.Store.Members(ctx, roomID)
	})
}

func (s *Store) forgetMembers(roomID string) {
	s.mu.Lock()
	delete(s.members, roomID)
	s.mu.Unlock()
}

// The changes below drop what they make stale.

// CreateWebhook stores a webhook.
func (s *Store) CreateWebhook(ctx context.Context, w *carillon.Webhook, actorID string) error {
	defer s.ForgetWebhook(w.WebhookID)
	return s.Store.CreateWebhook(ctx, w, actorID)
}

// RenameWebhook renames a webhook.
func (s *Store) RenameWebhook(ctx context.Context, webhookID, name, actorID string, now time.Time) (*carillon.Webhook, error) {
	defer s.ForgetWebhook(webhookID)
	return s.Store.RenameWebhook(ctx, webhookID, name, actorID, now)
}

// RegenerateWebhook gives a webhook a new token.
func (s *Store) RegenerateWebhook(ctx context.Context, webhookID string, tokenHash, tokenSeal []byte, actorID string, now time.Time) (*carillon.Webhook, error) {
	defer s.ForgetWebhook(webhookID)
	return s.Store.RegenerateWebhook(ctx, webhookID, tokenHash, tokenSeal, actorID, now)
}

// DeleteWebhook deletes a webhook.
func (s *Store) DeleteWebhook(ctx context.Context, webhookID, actorID string, now time.Time) error {
	defer s.ForgetWebhook(webhookID)
	return s.Store.DeleteWebhook(ctx, webhookID, actorID, now)
}

// DeleteRoom deletes a room, and with it its webhooks.
func (s *Store) DeleteRoom(ctx context.Context, roomID, actorID string, now time.Time) error {
	defer func() {
		s.mu.Lock()
		for id, e := range s.webhooks {
			if e.value.RoomID == roomID {
				delete(s.webhooks, id)
			}
		}
		delete(s.members, roomID)
		s.mu.Unlock()
	}()
	return s.Store.DeleteRoom(ctx, roomID, actorID, now)
}

// AddMember adds a member.
func (s *Store) AddMember(ctx context.Context, m *carillon.Membership, actorID string) error {
	defer s.forgetMembers(m.RoomID)
	return s.Store.AddMember(ctx, m, actorID)
}

// SetRole changes a member's role.
func (s *Store) SetRole(ctx context.Context, roomID, userID, role, actorID string, now time.Time) (*carillon.Membership, error) {
	defer s.forgetMembers(roomID)
	return s.Store.SetRole(ctx, roomID, userID, role, actorID, now)
}

// RemoveMember removes a member.
func (s *Store) RemoveMember(ctx context.Context, roomID, userID, actorID string, now time.Time) error {
	defer s.forgetMembers(roomID)
	return s.Store.RemoveMember(ctx, roomID, userID, actorID, now)
}

// UpdateUser changes a user, whose name and activity rosters carry, as do
// the users cached by token and session (deactivation revokes the user's
// tokens, a new password ends their sessions).
func (s *Store) UpdateUser(ctx context.Context, userID string, upd carillon.UserUpdate) (*carillon.User, error) {
	defer func() {
		s.mu.Lock()
		clear(s.members)
		clear(s.tokens)
		clear(s.sessions)
		s.credentialsChanged++
		s.mu.Unlock()
	}()
	return s.Store.UpdateUser(ctx, userID, upd)
}

// UserByAPIToken returns the active user owning an API token, from memory
// when looked up recently.
func (s *Store) UserByAPIToken(ctx context.Context, tokenHash []byte) (*carillon.User, error) {
	return lookupCopy(s, s.tokens, string(tokenHash), s.cfg.Now(), s.cfg.TokenTTL, &s.credentialsChanged, func() (*carillon.User, error) {
		return s.Store.UserByAPIToken(ctx, tokenHash)
	})
}

// UserBySession returns the active user of a live web session, from memory
// when looked up recently. The store marks a session used at most once a
// minute, so a session is read again after a minute at the latest: its
// last use as stored then lags by two minutes at most, against a lifetime
// of carillon.SessionTTL. now (the caller's clock) also times the entry.
func (s *Store) UserBySession(ctx context.Context, sessionHash []byte, now time.Time) (*carillon.User, error) {
	return lookupCopy(s, s.sessions, string(sessionHash), now, min(s.cfg.TokenTTL, time.Minute), &s.credentialsChanged, func() (*carillon.User, error) {
		return s.Store.UserBySession(ctx, sessionHash, now)
	})
}

// DeleteSession ends a session (a logout) on this node at once.
func (s *Store) DeleteSession(ctx context.Context, sessionHash []byte) error {
	defer func() {
		s.mu.Lock()
		delete(s.sessions, string(sessionHash))
		s.credentialsChanged++
		s.mu.Unlock()
	}()
	return s.Store.DeleteSession(ctx, sessionHash)
}
