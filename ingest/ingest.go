// Package ingest is the write path of messages, shared by webhooks and
// users: validation, idempotency keys, rate budget, rendering, and a single
// writer that commits messages in batches (group commit). A request is
// answered only after the transaction holding its message has committed.
package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/metrics"
	"github.com/carillon-chat/carillon/render"
)

// Config tunes a Service.
type Config struct {
	QueueSize     int           // messages waiting for the writer; beyond → 503
	MaxBatch      int           // messages per transaction
	TouchInterval time.Duration // how often due webhook last-used times are written
	Now           func() time.Time
	Logger        *slog.Logger
	Metrics       *metrics.Metrics // may be nil

	// TouchDelay is how long a webhook's last-used time may wait to be
	// written (see touchQueue); default 3 s, under SPEC's 5 s lag for the
	// nodes of a cluster that do not hold it in memory.
	TouchDelay time.Duration
}

// Service accepts messages.
type Service struct {
	store    carillon.Store
	broker   carillon.Broker
	presence carillon.Presence
	webhooks carillon.RateLimiter
	users    carillon.RateLimiter
	cfg      Config

	// deferred, when the store has it, lets the writer commit the next
	// batch while the syncer waits for the previous ones to be durable.
	deferred carillon.DeferredSyncAppender

	queue     chan *pending
	durable   *durability             // answers committed batches once durable
	toPublish chan []*carillon.Append // durable batches, for the publisher

	mu             sync.RWMutex // guards closed against enqueues
	closed         bool
	stopped        chan struct{}
	healthMu       sync.Mutex
	lastFailure    time.Time // of the last commit, if it failed
	lastFailureErr error

	flightMu sync.Mutex
	flights  map[string]chan struct{} // idempotency keys in flight

	directories directories // mention directories of rooms' member lists

	// touched holds the webhook last-used times of durable messages, for
	// the writer to write in small, regular flushes.
	touched *touchQueue
}

// pending is one message waiting for the writer.
type pending struct {
	append carillon.Append
	err    error
	done   chan struct{}
}

// committedBatch is a batch the writer committed (or failed to: err),
// waiting to be made durable and answered.
type committedBatch struct {
	batch []*pending
	err   error
}

// New returns a Service; call Run to start its writer.
func New(store carillon.Store, broker carillon.Broker, presence carillon.Presence, webhookLimiter, userLimiter carillon.RateLimiter, cfg Config) *Service {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 8192
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 512
	}
	if cfg.TouchInterval <= 0 {
		// Each flush holds the writer for one UPDATE per webhook due:
		// often and small keeps that pause short (a 2 s interval held it
		// ~80 ms at 1,750 webhooks/s).
		cfg.TouchInterval = 100 * time.Millisecond
	}
	if cfg.TouchDelay <= 0 {
		cfg.TouchDelay = 3 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	deferred, _ := carillon.AsDeferredSyncAppender(store)
	s := &Service{
		store: store, broker: broker, presence: presence, webhooks: webhookLimiter, users: userLimiter, cfg: cfg,
		deferred:  deferred,
		queue:     make(chan *pending, cfg.QueueSize),
		toPublish: make(chan []*carillon.Append, 256),
		stopped:   make(chan struct{}),
		flights:   make(map[string]chan struct{}),
		touched:   newTouchQueue(),
	}
	var syncCommitted func() error
	if deferred != nil {
		syncCommitted = deferred.SyncCommitted
	}
	s.durable = newDurability(syncCommitted, s.answer)
	return s
}

// Post is a message to accept.
type Post struct {
	RoomID     string
	SenderType string // carillon.MemberTypeUser or MemberTypeWebhook
	SenderID   string
	SenderName string
	Content    string
	// IdempotencyKey is the request's Idempotency-Key; HasIdempotencyKey
	// tells an absent header from an empty one.
	IdempotencyKey    string
	HasIdempotencyKey bool
	// WebhookTokenHash is the hash of the token a webhook post came with.
	WebhookTokenHash []byte
}

// Accepted is the answer to an accepted post.
type Accepted struct {
	MessageID string `json:"MessageId"`
	RoomID    string `json:"RoomId"`
}

func unavailable(msg string, retry time.Duration) error {
	return &carillon.Error{Code: carillon.EServiceUnavailable, Message: msg, RetryAfter: retry}
}

// ValidateContent checks a Content string against the size and blank
// rules (413 before 400).
func ValidateContent(content string) error {
	if len(content) > carillon.MaxContentBytes {
		return carillon.Errorf(carillon.EPayloadTooLarge,
			"Content is %d bytes of UTF-8; the limit is %d. Shorten the message or split it.", len(content), carillon.MaxContentBytes)
	}
	if render.IsBlank(content) {
		return carillon.Errorf(carillon.EBadRequest, "Content is blank. Send {\"Content\": \"your message\"}.")
	}
	return nil
}

// ValidateIdempotencyKey checks an Idempotency-Key header value.
func ValidateIdempotencyKey(key string) error {
	if key == "" || len(key) > carillon.MaxIdempotencyKeyLen {
		return carillon.Errorf(carillon.EBadRequest, "Idempotency-Key must be 1 to %d printable ASCII characters.", carillon.MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return carillon.Errorf(carillon.EBadRequest, "Idempotency-Key must be 1 to %d printable ASCII characters.", carillon.MaxIdempotencyKeyLen)
		}
	}
	return nil
}

// Submit validates, stores and publishes one message. It returns after the
// message is committed, or with an error and nothing stored.
func (s *Service) Submit(ctx context.Context, p Post) (Accepted, error) {
	if err := ValidateContent(p.Content); err != nil {
		return Accepted{}, err
	}
	if p.HasIdempotencyKey {
		if err := ValidateIdempotencyKey(p.IdempotencyKey); err != nil {
			return Accepted{}, err
		}
	}
	// Mentions resolve against the members at the time of posting; a
	// message without "@" mentions no one.
	var members []carillon.Membership
	var dir *render.Directory
	if strings.IndexByte(p.Content, '@') >= 0 {
		var err error
		if members, err = s.store.Members(ctx, p.RoomID); err != nil {
			return Accepted{}, err
		}
		dir = s.directories.of(p.RoomID, members)
	}
	// NUL cannot be stored in every backend nor shown in a page: it is kept
	// as U+FFFD, the character every renderer shows for it.
	p.Content = strings.ReplaceAll(p.Content, "\x00", "\uFFFD")
	rendered := render.Render(p.Content, dir)
	if (rendered.Mentions.All || rendered.Mentions.Present) && len(members) > carillon.MaxBroadcastMembers {
		return Accepted{}, carillon.Errorf(carillon.EBadRequest,
			"@All and @Present can be used only in rooms of at most %d members; this room has %d. Mention people by alias instead.",
			carillon.MaxBroadcastMembers, len(members))
	}

	contentHash := sha256.Sum256([]byte(p.Content))
	if p.HasIdempotencyKey {
		release, err := s.claimKey(ctx, p.SenderID, p.IdempotencyKey, contentHash[:])
		if acc, ok := IsReplay(err); ok {
			return acc, nil
		}
		if err != nil {
			return Accepted{}, err
		}
		defer release()
	}

	limiter, key := s.webhooks, "w:"+p.SenderID
	if p.SenderType == carillon.MemberTypeUser {
		limiter, key = s.users, "u:"+p.SenderID
	}
	res, err := limiter.Reserve(ctx, key)
	if err != nil {
		return Accepted{}, err
	}
	if !res.OK {
		s.cfg.Metrics.Throttled(p.SenderType)
		return Accepted{}, &carillon.Error{Code: carillon.EThrottled, RetryAfter: res.RetryAfter,
			Message: "Too many messages: the limit is " + s.limitText(p.SenderType) + ". Retry after the number of seconds in Retry-After."}
	}

	now := s.cfg.Now().UTC()
	msg := &carillon.Message{
		MessageID:   uuid.NewString(),
		RoomID:      p.RoomID,
		Content:     p.Content,
		Format:      rendered.Format,
		HTML:        rendered.HTML,
		SenderType:  p.SenderType,
		SenderID:    p.SenderID,
		SenderName:  p.SenderName,
		DisplayName: p.SenderName,
		Mentions:    rendered.Mentions,
		CreatedAt:   now,
	}
	if p.SenderType == carillon.MemberTypeWebhook {
		msg.DisplayName = p.SenderName + " (Webhook)"
	}
	pd := &pending{done: make(chan struct{}), append: carillon.Append{
		Message:          msg,
		WebhookTokenHash: p.WebhookTokenHash,
		RequireMember:    p.SenderType == carillon.MemberTypeUser,
	}}
	if p.HasIdempotencyKey {
		pd.append.Idempotency = &carillon.IdempotencyRecord{
			SenderID: p.SenderID, Key: p.IdempotencyKey, ContentHash: contentHash[:],
			MessageID: msg.MessageID, RoomID: msg.RoomID, CreatedAt: now,
		}
	}
	if pd.append.Notifications, err = s.notifications(ctx, p.SenderID, rendered.Mentions, members); err != nil {
		res.Cancel()
		return Accepted{}, err
	}
	if err := s.enqueue(pd); err != nil {
		res.Cancel()
		return Accepted{}, err
	}
	<-pd.done
	if pd.err != nil {
		res.Cancel()
		if k := pd.append.Idempotency; k != nil && carillon.ErrorCode(pd.err) == carillon.EConflict {
			// Another node took the key first: answer as it did.
			return s.replayStored(ctx, k)
		}
		return Accepted{}, pd.err
	}
	return Accepted{MessageID: msg.MessageID, RoomID: msg.RoomID}, nil
}

// notifications decides who a message notifies (SPEC §2): @All every
// member, @Present the members present now, a direct mention that member;
// never the sender; one per member, the most specific reason winning.
func (s *Service) notifications(ctx context.Context, senderID string, m carillon.Mentions, members []carillon.Membership) ([]*carillon.Notification, error) {
	if !m.All && !m.Present && len(m.MemberIDs) == 0 {
		return nil, nil
	}
	rank := map[string]int{carillon.ReasonAll: 1, carillon.ReasonPresent: 2, carillon.ReasonDirect: 3}
	reasons := make(map[string]string)
	give := func(userID, reason string) {
		if rank[reason] > rank[reasons[userID]] {
			reasons[userID] = reason
		}
	}
	if m.All || m.Present {
		ids := make([]string, len(members))
		for i := range members {
			ids[i] = members[i].UserID
		}
		var present map[string]bool
		if m.Present {
			var err error
			if present, err = s.presence.Present(ctx, ids); err != nil {
				return nil, err
			}
		}
		for _, id := range ids {
			if m.All {
				give(id, carillon.ReasonAll)
			}
			if present[id] {
				give(id, carillon.ReasonPresent)
			}
		}
	}
	for _, id := range m.MemberIDs {
		give(id, carillon.ReasonDirect)
	}
	var notes []*carillon.Notification
	for _, mb := range members {
		reason, ok := reasons[mb.UserID]
		if !ok || mb.UserID == senderID || !mb.User.Active {
			continue
		}
		notes = append(notes, &carillon.Notification{NotificationID: uuid.NewString(), UserID: mb.UserID, Reason: reason})
	}
	return notes, nil
}

func (s *Service) limitText(senderType string) string {
	if senderType == carillon.MemberTypeUser {
		return "5 messages per second per user"
	}
	return "the webhook's rate (1 message per second by default)"
}

// claimKey makes the caller the only request in this process in flight with
// this key. When the key was already used it returns a *Replayed with the
// original answer (same Content) or a Conflict; otherwise release must be
// called when the request ends.
func (s *Service) claimKey(ctx context.Context, senderID, key string, contentHash []byte) (release func(), err error) {
	flight := senderID + "\x00" + key
	for {
		s.flightMu.Lock()
		wait, busy := s.flights[flight]
		if !busy {
			done := make(chan struct{})
			s.flights[flight] = done
			s.flightMu.Unlock()
			release = func() {
				s.flightMu.Lock()
				delete(s.flights, flight)
				s.flightMu.Unlock()
				close(done)
			}
			break
		}
		s.flightMu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, unavailable("The request was cancelled while waiting for an earlier request with the same Idempotency-Key.", time.Second)
		}
	}
	rec, err := s.store.IdempotencyRecord(ctx, senderID, key, s.cfg.Now().Add(-carillon.IdempotencyKeyTTL))
	if err != nil || rec != nil {
		release()
		if err != nil {
			return nil, err
		}
		return nil, replay(rec, contentHash)
	}
	return release, nil
}

// replayStored answers from the stored record of a key taken by another
// request.
func (s *Service) replayStored(ctx context.Context, k *carillon.IdempotencyRecord) (Accepted, error) {
	rec, err := s.store.IdempotencyRecord(ctx, k.SenderID, k.Key, s.cfg.Now().Add(-carillon.IdempotencyKeyTTL))
	if err != nil {
		return Accepted{}, err
	}
	if rec == nil {
		return Accepted{}, unavailable("The Idempotency-Key is in use by another request. Retry shortly.", time.Second)
	}
	err = replay(rec, k.ContentHash)
	if acc, ok := IsReplay(err); ok {
		return acc, nil
	}
	return Accepted{}, err
}

// replay answers a repeated Idempotency-Key from its record.
func replay(rec *carillon.IdempotencyRecord, contentHash []byte) error {
	if !bytes.Equal(rec.ContentHash, contentHash) {
		return carillon.Errorf(carillon.EConflict, "This Idempotency-Key was already used with a different Content. Use a new key for a new message.")
	}
	return &Replayed{Accepted{MessageID: rec.MessageID, RoomID: rec.RoomID}}
}

// Replayed carries the original answer for a repeated Idempotency-Key.
type Replayed struct{ Accepted Accepted }

func (r *Replayed) Error() string { return "replayed " + r.Accepted.MessageID }

func (s *Service) enqueue(p *pending) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return unavailable("The server is shutting down. Retry shortly.", time.Second)
	}
	select {
	case s.queue <- p:
		return nil
	default:
		return unavailable("The server is overloaded. Retry after the number of seconds in Retry-After.", time.Second)
	}
}

// Run is the single writer: it takes waiting messages in batches and
// commits each batch in one transaction. A syncer beside it makes the
// committed batches durable, answers their requests and hands the stored
// messages to the publisher, in commit order. Run returns after Close once
// the queue is empty and every batch is answered.
func (s *Service) Run(ctx context.Context) {
	defer close(s.stopped)
	published := make(chan struct{})
	go s.runPublisher(published)
	var syncers sync.WaitGroup
	for range syncersInFlight {
		syncers.Go(s.durable.run)
	}
	defer func() {
		s.durable.close()
		syncers.Wait()
		s.flushTouches(time.Unix(1<<40, 0)) // every one, now all are answered
		close(s.toPublish)
		<-published
	}()
	touch := time.NewTicker(s.cfg.TouchInterval)
	defer touch.Stop()
	for {
		select {
		case p, ok := <-s.queue:
			if !ok {
				return
			}
			batch := []*pending{p}
		drain:
			for len(batch) < s.cfg.MaxBatch {
				select {
				case p, ok := <-s.queue:
					if !ok {
						break drain
					}
					batch = append(batch, p)
				default:
					break drain
				}
			}
			s.commit(batch)
		case <-touch.C:
			s.flushTouches(s.cfg.Now().Add(-s.cfg.TouchDelay))
		}
	}
}

// commit stores a batch and passes it to the syncer. With a deferred-sync
// store the batch is not yet durable: the syncer answers it.
func (s *Service) commit(batch []*pending) {
	appends := make([]*carillon.Append, len(batch))
	for i, p := range batch {
		appends[i] = &p.append
	}
	// The commit is not cut short by a cancelled request: other requests
	// share the transaction.
	var err error
	if s.deferred != nil {
		err = s.deferred.AppendMessagesUnsynced(context.Background(), appends)
	} else {
		err = s.store.AppendMessages(context.Background(), appends)
	}
	s.durable.add(committedBatch{batch: batch, err: err})
}

// answer tells a batch's requests how their messages fared and publishes
// the stored ones.
func (s *Service) answer(b committedBatch, syncErr error) {
	err := b.err
	if err != nil {
		s.cfg.Logger.Error("message batch not stored", "messages", len(b.batch), "err", err)
	} else if syncErr != nil {
		// Committed but maybe not on disk: the sender is told to retry.
		err = syncErr
		s.cfg.Logger.Error("message batch not made durable", "messages", len(b.batch), "err", err)
	}
	s.noteCommit(err)
	if err != nil {
		err = unavailable("The message could not be stored. Retry after the number of seconds in Retry-After.", 2*time.Second)
	}
	var stored []*carillon.Append
	now := s.cfg.Now()
	for _, p := range b.batch {
		p.err = err
		if err == nil {
			p.err = p.append.Err
		}
		if p.err == nil {
			stored = append(stored, &p.append)
			// Only a durable message uses its webhook: one whose sync
			// failed may be lost, and its sender is told to retry.
			if m := p.append.Message; m.SenderType == carillon.MemberTypeWebhook {
				s.touched.add(m.SenderID, m.CreatedAt, now)
			}
		}
		close(p.done)
	}
	if err == nil {
		s.cfg.Metrics.Committed(len(stored), len(b.batch))
	}
	if len(stored) > 0 {
		// Publishing (serializing events, fanning out) runs beside the
		// writer, in commit order, while the next batch commits.
		s.toPublish <- stored
	}
}

// writeFailureMemory is how long a failed commit keeps the service
// unready unless a commit succeeds meanwhile.
const writeFailureMemory = 10 * time.Second

func (s *Service) noteCommit(err error) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if err == nil {
		s.lastFailure = time.Time{}
		return
	}
	s.lastFailure, s.lastFailureErr = s.cfg.Now(), err
}

// Healthy reports the last commit's error if it failed recently and no
// commit has succeeded since: storage may take a small test write while it
// cannot take messages (a nearly full disk).
func (s *Service) Healthy() error {
	if s.deferred != nil {
		if err := s.deferred.SyncFailure(); err != nil {
			return err // for good: see carillon.DeferredSyncAppender
		}
	}
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if !s.lastFailure.IsZero() && s.cfg.Now().Sub(s.lastFailure) < writeFailureMemory {
		return s.lastFailureErr
	}
	return nil
}

// runPublisher publishes committed messages in commit order.
func (s *Service) runPublisher(done chan<- struct{}) {
	defer close(done)
	for batch := range s.toPublish {
		for _, a := range batch {
			s.publish(a)
		}
	}
}

// publish sends a stored message to the room's streams, then each of its
// notifications to the member concerned.
func (s *Service) publish(a *carillon.Append) {
	events := []carillon.Event{carillon.MessageEvent(a.Message)}
	for _, n := range a.Notifications {
		events = append(events, carillon.NotificationEvent(n))
	}
	for _, ev := range events {
		if err := s.broker.Publish(context.Background(), ev); err != nil {
			s.cfg.Logger.Warn("live event not published", "type", ev.Type, "err", err)
		}
	}
}

// flushTouches writes the last-used times of the webhooks dirty since
// dirtyBefore or earlier. Those it could not write are tried again later.
func (s *Service) flushTouches(dirtyBefore time.Time) {
	due := s.touched.due(dirtyBefore)
	if len(due) == 0 {
		return
	}
	if err := s.store.TouchWebhooks(context.Background(), due); err != nil {
		s.cfg.Logger.Warn("webhook last-used times not written", "webhooks", len(due), "err", err)
		now := s.cfg.Now()
		for id, used := range due {
			s.touched.add(id, used, now)
		}
	}
	s.touched.written()
}

// LastUsed returns the time of a webhook's newest durable message when it
// is newer than what the store holds yet, for the API to show.
func (s *Service) LastUsed(webhookID string) (time.Time, bool) {
	return s.touched.latest(webhookID)
}

// Close stops accepting messages, lets the writer commit what is queued,
// and waits for it to finish.
func (s *Service) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	<-s.stopped
}

// IsReplay reports whether err carries the original answer of a repeated
// Idempotency-Key, and returns it.
func IsReplay(err error) (Accepted, bool) {
	var r *Replayed
	if errors.As(err, &r) {
		return r.Accepted, true
	}
	return Accepted{}, false
}
