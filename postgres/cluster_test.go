package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/postgres"
)

// The tests in this file run several *postgres.DB on one database: each
// stands for a carillon node with its own connection pool.

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// world is a small instance: a user, two rooms she administers and a
// webhook in the first.
type world struct {
	alice *carillon.User
	a, b  *carillon.Room
	hook  *carillon.Webhook
}

func newWorld(t testing.TB, s carillon.Store) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{alice: &carillon.User{UserID: uuid.NewString(), Email: "alice@example.test", Alias: "alice", FullName: "Alice", Active: true, CreatedAt: t0}}
	mustf(t, s.CreateUser(ctx, w.alice, "", nil), "CreateUser")
	w.a = &carillon.Room{RoomID: uuid.NewString(), Name: "A", CreatedBy: w.alice.UserID, CreatedAt: t0}
	w.b = &carillon.Room{RoomID: uuid.NewString(), Name: "B", CreatedBy: w.alice.UserID, CreatedAt: t0}
	mustf(t, s.CreateRoom(ctx, w.a), "CreateRoom")
	mustf(t, s.CreateRoom(ctx, w.b), "CreateRoom")
	w.hook = &carillon.Webhook{WebhookID: uuid.NewString(), RoomID: w.a.RoomID, Name: "CI", TokenHash: randomBytes(32), TokenSeal: randomBytes(60), CreatedAt: t0}
	mustf(t, s.CreateWebhook(ctx, w.hook, w.alice.UserID), "CreateWebhook")
	return w
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func (w *world) userEntry(room *carillon.Room, content string, at time.Time) *carillon.Append {
	return &carillon.Append{RequireMember: true, Message: &carillon.Message{
		MessageID: uuid.NewString(), RoomID: room.RoomID, Content: content, Format: carillon.FormatPlain, HTML: content,
		SenderType: carillon.MemberTypeUser, SenderID: w.alice.UserID, SenderName: "Alice", DisplayName: "Alice",
		Mentions: carillon.Mentions{MemberIDs: []string{}}, CreatedAt: at,
	}}
}

func (w *world) hookEntry(tokenHash []byte, content string, at time.Time) *carillon.Append {
	return &carillon.Append{WebhookTokenHash: tokenHash, Message: &carillon.Message{
		MessageID: uuid.NewString(), RoomID: w.hook.RoomID, Content: content, Format: carillon.FormatPlain, HTML: content,
		SenderType: carillon.MemberTypeWebhook, SenderID: w.hook.WebhookID, SenderName: "CI", DisplayName: "CI (Webhook)",
		Mentions: carillon.Mentions{MemberIDs: []string{}}, CreatedAt: at,
	}}
}

// allMessages returns every message of the rooms in seq order.
func allMessages(t testing.TB, s carillon.Store, rooms ...*carillon.Room) []carillon.Message {
	t.Helper()
	var all []carillon.Message
	for _, r := range rooms {
		msgs, err := s.Messages(context.Background(), r.RoomID, carillon.MessageQuery{Ascending: true, Limit: 100000})
		mustf(t, err, "Messages")
		all = append(all, msgs...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Seq < all[j].Seq })
	return all
}

// TestNodesCommitOrder appends from several nodes at once, with clocks
// that jitter back and forth, while two readers on another node follow:
// one pages through a room by seq, one replays the user's whole stream.
// Seq must be commit order across nodes: neither reader may skip a
// message (one that commits after a reader passed its seq), a batch
// acknowledged before another started must have the lower seqs, and
// CreatedAt must never decrease along seq.
func TestNodesCommitOrder(t *testing.T) {
	dsn := freshDatabase(t)
	const nodes, writersPerNode, batches, perBatch = 4, 2, 20, 3
	stores := make([]*postgres.DB, nodes+1)
	for i := range stores {
		stores[i] = openDSN(t, dsn)
	}
	w := newWorld(t, stores[0])
	reader := stores[nodes]
	ctx := context.Background()

	type batchRecord struct {
		start, end time.Time
		entries    []*carillon.Append
		orig       []time.Time
		err        error
	}
	var records []*batchRecord
	var writing sync.WaitGroup
	for n := 0; n < nodes; n++ {
		for wr := 0; wr < writersPerNode; wr++ {
			r := mrand.New(mrand.NewPCG(uint64(n), uint64(wr)))
			var mine []*batchRecord
			for b := 0; b < batches; b++ {
				rec := &batchRecord{}
				for i := 0; i < perBatch; i++ {
					// Times rise slowly but jitter by up to 200 ms, so
					// that many entries carry a time below the newest
					// committed one.
					at := t0.Add(time.Duration(b*10+r.IntN(200)) * time.Millisecond)
					content := fmt.Sprintf("node %d writer %d batch %d entry %d", n, wr, b, i)
					var e *carillon.Append
					switch r.IntN(3) {
					case 0:
						e = w.userEntry(w.a, content, at)
					case 1:
						e = w.userEntry(w.b, content, at)
					default:
						e = w.hookEntry(w.hook.TokenHash, content, at)
					}
					rec.entries = append(rec.entries, e)
					rec.orig = append(rec.orig, at)
				}
				mine = append(mine, rec)
			}
			records = append(records, mine...)
			s := stores[n]
			writing.Go(func() {
				for _, rec := range mine {
					rec.start = time.Now()
					rec.err = s.AppendMessages(ctx, rec.entries)
					rec.end = time.Now()
					if rec.err != nil {
						return
					}
				}
			})
		}
	}

	done := make(chan struct{})
	var followedA, replayed []string
	var pageErr, replayErr error
	var reading sync.WaitGroup
	reading.Go(func() {
		var after int64
		for finished := false; ; {
			select {
			case <-done:
				finished = true
			default:
			}
			msgs, err := reader.Messages(ctx, w.a.RoomID, carillon.MessageQuery{Ascending: true, After: after, Limit: 5})
			if err != nil {
				pageErr = err
				return
			}
			for _, m := range msgs {
				followedA = append(followedA, m.MessageID)
				after = m.Seq
			}
			if finished && len(msgs) == 0 {
				return
			}
		}
	})
	reading.Go(func() {
		var pos carillon.EventPosition
		for finished := false; ; {
			select {
			case <-done:
				finished = true
			default:
			}
			items, err := reader.Replay(ctx, w.alice.UserID, pos, 4)
			if err != nil {
				replayErr = err
				return
			}
			for _, it := range items {
				if it.Message == nil {
					replayErr = fmt.Errorf("unexpected notification in the replay: %+v", it.Notification)
					return
				}
				replayed = append(replayed, it.Message.MessageID)
				pos = carillon.EventPosition{Seq: it.Message.Seq}
			}
			if finished && len(items) == 0 {
				return
			}
		}
	})
	writing.Wait()
	close(done)
	reading.Wait()
	for _, rec := range records {
		mustf(t, rec.err, "AppendMessages")
		for _, e := range rec.entries {
			mustf(t, e.Err, "entry of AppendMessages")
		}
	}
	mustf(t, pageErr, "Messages while appending")
	mustf(t, replayErr, "Replay while appending")

	total := nodes * writersPerNode * batches * perBatch
	stored := allMessages(t, reader, w.a, w.b)
	if len(stored) != total {
		t.Fatalf("stored %d messages, want %d", len(stored), total)
	}
	var storedA, storedAll []string
	byID := map[string]carillon.Message{}
	for i, m := range stored {
		byID[m.MessageID] = m
		storedAll = append(storedAll, m.MessageID)
		if m.RoomID == w.a.RoomID {
			storedA = append(storedA, m.MessageID)
		}
		// This backend hands seqs out only to stored messages, so there
		// are no gaps.
		if m.Seq != int64(i+1) {
			t.Errorf("message %d in seq order has Seq %d, want %d", i, m.Seq, i+1)
		}
		if i > 0 && m.CreatedAt.Before(stored[i-1].CreatedAt) {
			t.Errorf("CreatedAt decreases along seq at %d: %v after %v", m.Seq, m.CreatedAt, stored[i-1].CreatedAt)
		}
	}
	if !slices.Equal(followedA, storedA) {
		t.Errorf("a reader paging through room A saw %d messages, or in another order, of its %d", len(followedA), len(storedA))
	}
	if !slices.Equal(replayed, storedAll) {
		t.Errorf("a replaying stream saw %d messages, or in another order, of the %d", len(replayed), len(storedAll))
	}
	if newest, err := reader.NewestSeq(ctx); err != nil || newest != int64(total) {
		t.Errorf("NewestSeq = %d, %v; want %d", newest, err, total)
	}

	// The caller's copies match what is stored, and times only moved
	// forward.
	for _, rec := range records {
		for i, e := range rec.entries {
			got := byID[e.Message.MessageID]
			if got.Seq != e.Message.Seq || !got.CreatedAt.Equal(e.Message.CreatedAt) {
				t.Errorf("caller's copy (Seq %d, %v) differs from the stored message (Seq %d, %v)",
					e.Message.Seq, e.Message.CreatedAt, got.Seq, got.CreatedAt)
			}
			if e.Message.CreatedAt.Before(rec.orig[i]) {
				t.Errorf("CreatedAt moved back from %v to %v", rec.orig[i], e.Message.CreatedAt)
			}
		}
	}
	// Real-time order: a batch acknowledged before another began holds
	// lower seqs.
	span := func(rec *batchRecord) (lo, hi int64) {
		lo, hi = 1<<62, 0
		for _, e := range rec.entries {
			lo, hi = min(lo, e.Message.Seq), max(hi, e.Message.Seq)
		}
		return lo, hi
	}
	violations := 0
	for _, x := range records {
		_, xHi := span(x)
		for _, y := range records {
			if yLo, _ := span(y); x.end.Before(y.start) && xHi >= yLo {
				violations++
			}
		}
	}
	if violations > 0 {
		t.Errorf("%d pairs of batches: acknowledged before the other began, yet not below it in seq", violations)
	}
}

// conditionChanges are changes that break an append's condition: what to
// append under the old condition, and the change, made on another node.
var conditionChanges = []struct {
	name  string
	setup func(t *testing.T, s carillon.Store, w *world) (entry func() *carillon.Append, change func() error)
}{
	{"RegenerateWebhook", func(t *testing.T, s carillon.Store, w *world) (func() *carillon.Append, func() error) {
		old := w.hook.TokenHash
		return func() *carillon.Append { return w.hookEntry(old, "old token", t0) },
			func() error {
				_, err := s.RegenerateWebhook(context.Background(), w.hook.WebhookID, randomBytes(32), randomBytes(60), w.alice.UserID, t0)
				return err
			}
	}},
	{"DeleteWebhook", func(t *testing.T, s carillon.Store, w *world) (func() *carillon.Append, func() error) {
		return func() *carillon.Append { return w.hookEntry(w.hook.TokenHash, "deleted webhook", t0) },
			func() error { return s.DeleteWebhook(context.Background(), w.hook.WebhookID, w.alice.UserID, t0) }
	}},
	{"DeleteRoom", func(t *testing.T, s carillon.Store, w *world) (func() *carillon.Append, func() error) {
		return func() *carillon.Append { return w.userEntry(w.a, "in a deleted room", t0) },
			func() error { return s.DeleteRoom(context.Background(), w.a.RoomID, w.alice.UserID, t0) }
	}},
	{"RemoveMember", func(t *testing.T, s carillon.Store, w *world) (func() *carillon.Append, func() error) {
		bob := &carillon.User{UserID: uuid.NewString(), Email: "bob@example.test", Alias: "bob", FullName: "Bob", Active: true, CreatedAt: t0}
		ctx := context.Background()
		mustf(t, s.CreateUser(ctx, bob, "", nil), "CreateUser")
		mustf(t, s.AddMember(ctx, &carillon.Membership{RoomID: w.a.RoomID, UserID: bob.UserID, Role: carillon.RoleMember, CreatedAt: t0}, w.alice.UserID), "AddMember")
		return func() *carillon.Append {
				e := w.userEntry(w.a, "from bob", t0)
				e.Message.SenderID = bob.UserID
				return e
			}, func() error {
				return s.RemoveMember(ctx, w.a.RoomID, bob.UserID, bob.UserID, t0)
			}
	}},
}

// TestConditionsAcrossNodes checks that a change committed on one node
// that breaks an append's condition (a regenerated token, a deleted
// webhook or room, a removed member) holds on every node at once: an append that
// begins after the change has returned is refused, and no message under
// the old condition commits after the change.
func TestConditionsAcrossNodes(t *testing.T) {
	for _, c := range conditionChanges {
		t.Run(c.name, func(t *testing.T) {
			dsn := freshDatabase(t)
			admin, poster := openDSN(t, dsn), openDSN(t, dsn)
			w := newWorld(t, admin)
			entry, change := c.setup(t, admin, w)
			ctx := context.Background()

			type attempt struct {
				start time.Time
				a     *carillon.Append
			}
			var attempts []attempt
			stop := make(chan struct{})
			var posting sync.WaitGroup
			var postErr error
			posting.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					a := entry()
					start := time.Now()
					if err := poster.AppendMessages(ctx, []*carillon.Append{a}); err != nil {
						postErr = err
						return
					}
					attempts = append(attempts, attempt{start, a})
				}
			})
			time.Sleep(50 * time.Millisecond)
			mustf(t, change(), "change")
			changed := time.Now()
			// A message committed after the change, on the posting node
			// (in room B, which no change touches).
			after := w.userEntry(w.b, "after the change", t0)
			mustf(t, poster.AppendMessages(ctx, []*carillon.Append{after}), "AppendMessages")
			mustf(t, after.Err, "entry after the change")
			time.Sleep(50 * time.Millisecond)
			close(stop)
			posting.Wait()
			mustf(t, postErr, "AppendMessages")

			accepted, refused := 0, 0
			for _, at := range attempts {
				if at.a.Err == nil {
					accepted++
					if at.a.Message.Seq > after.Message.Seq {
						t.Errorf("a message under the old condition committed after the change (Seq %d > %d)", at.a.Message.Seq, after.Message.Seq)
					}
					if at.start.After(changed) {
						t.Errorf("an append that began after the change returned was accepted")
					}
					continue
				}
				refused++
				if carillon.ErrorCode(at.a.Err) != carillon.ENotFound {
					t.Errorf("refused entry: %v, want NotFound", at.a.Err)
				}
			}
			if accepted == 0 || refused == 0 {
				t.Errorf("%d appends accepted and %d refused: the test wants both", accepted, refused)
			}
		})
	}
}

// TestConditionsBatchInFlight makes the race of TestConditionsAcrossNodes
// certain: a batch has passed its checks and is still inserting (a
// trigger makes the insert take 300 ms) when another node makes the
// change. The change must wait for the batch to commit; were it to commit
// first, the batch would then commit a message under the old condition
// after it.
func TestConditionsBatchInFlight(t *testing.T) {
	for _, c := range conditionChanges {
		t.Run(c.name, func(t *testing.T) {
			dsn := freshDatabase(t)
			admin, poster := openDSN(t, dsn), openDSN(t, dsn)
			w := newWorld(t, admin)
			entry, change := c.setup(t, admin, w)
			ctx := context.Background()
			exec(t, dsn, `CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS
				$$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$`,
				`CREATE TRIGGER slow_insert BEFORE INSERT ON messages FOR EACH STATEMENT EXECUTE FUNCTION slow_insert()`)
			observer, err := pgxpool.New(ctx, dsn)
			mustf(t, err, "pool")
			defer observer.Close()
			inserting := func() int {
				t.Helper()
				var n int
				err := observer.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND state = 'active' AND query LIKE 'INSERT INTO messages%'`).Scan(&n)
				mustf(t, err, "pg_stat_activity")
				return n
			}

			inFlight := entry()
			var posting sync.WaitGroup
			var postErr error
			posting.Go(func() { postErr = poster.AppendMessages(ctx, []*carillon.Append{inFlight}) })
			for deadline := time.Now().Add(5 * time.Second); inserting() == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the batch never reached its insert")
				}
			}
			mustf(t, change(), "change")
			if n := inserting(); n != 0 {
				t.Errorf("the change returned while a batch that passed its checks before it was still inserting: it would commit after the change")
			}
			posting.Wait()
			mustf(t, postErr, "AppendMessages")
			mustf(t, inFlight.Err, "the batch in flight (it began before the change)")

			late := entry()
			mustf(t, poster.AppendMessages(ctx, []*carillon.Append{late}), "AppendMessages")
			if carillon.ErrorCode(late.Err) != carillon.ENotFound {
				t.Errorf("append after the change: %v, want NotFound", late.Err)
			}
		})
	}
}

// TestConcurrentOpen starts several nodes on an empty database at once:
// the migrations run once, under their lock, and every node works.
func TestConcurrentOpen(t *testing.T) {
	dsn := freshDatabase(t)
	const n = 4
	stores := make([]*postgres.DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(context.Background(), dsn) })
	}
	wg.Wait()
	for i := range n {
		mustf(t, errs[i], "Open %d", i)
		t.Cleanup(func() { stores[i].Close() })
	}
	w := newWorld(t, stores[0])
	for i, s := range stores {
		e := w.userEntry(w.a, fmt.Sprint(i), t0)
		mustf(t, s.AppendMessages(context.Background(), []*carillon.Append{e}), "AppendMessages on node %d", i)
		mustf(t, e.Err, "entry on node %d", i)
	}
	if got := allMessages(t, stores[n-1], w.a); len(got) != n {
		t.Errorf("stored %d messages, want %d", len(got), n)
	}
}

// TestReopen checks that data survives closing and opening the database
// again, and that Seq and CreatedAt go on from where they were: a node
// whose clock is behind the newest message does not make times go back.
func TestReopen(t *testing.T) {
	dsn := freshDatabase(t)
	ctx := context.Background()
	db := openDSN(t, dsn)
	w := newWorld(t, db)
	newest := t0.Add(time.Hour)
	first := w.userEntry(w.a, "first", newest)
	mustf(t, db.AppendMessages(ctx, []*carillon.Append{first}), "AppendMessages")
	mustf(t, db.SetMeta(ctx, "k", "v"), "SetMeta")
	mustf(t, db.Close(), "Close")

	db = openDSN(t, dsn)
	if v, err := db.Meta(ctx, "k"); err != nil || v != "v" {
		t.Errorf("Meta after reopening: %q, %v", v, err)
	}
	second := w.userEntry(w.a, "second", t0)
	mustf(t, db.AppendMessages(ctx, []*carillon.Append{second}), "AppendMessages after reopening")
	mustf(t, second.Err, "entry after reopening")
	msgs := allMessages(t, db, w.a)
	if len(msgs) != 2 || msgs[1].MessageID != second.Message.MessageID || msgs[1].Seq <= msgs[0].Seq {
		t.Fatalf("Messages after reopening = %+v", msgs)
	}
	if !msgs[1].CreatedAt.Equal(newest) || !second.Message.CreatedAt.Equal(newest) {
		t.Errorf("CreatedAt after reopening = %v (caller's copy %v), want %v", msgs[1].CreatedAt, second.Message.CreatedAt, newest)
	}
}

// TestUnstorableText checks that text PostgreSQL cannot store (a NUL
// character) fails only its own entry, or its own call, as a BadRequest.
func TestUnstorableText(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	w := newWorld(t, db)
	bad, good := w.userEntry(w.a, "a\x00b", t0), w.userEntry(w.a, "fine", t0)
	mustf(t, db.AppendMessages(ctx, []*carillon.Append{bad, good}), "AppendMessages")
	if carillon.ErrorCode(bad.Err) != carillon.EBadRequest {
		t.Errorf("entry with a NUL: %v, want BadRequest", bad.Err)
	}
	mustf(t, good.Err, "the other entry")
	if got := allMessages(t, db, w.a); len(got) != 1 || got[0].MessageID != good.Message.MessageID {
		t.Errorf("stored %+v, want the good entry only", got)
	}
	u := &carillon.User{UserID: uuid.NewString(), Email: "nul@example.test", Alias: "nul", FullName: "Nul\x00", Active: true, CreatedAt: t0}
	if err := db.CreateUser(ctx, u, "", nil); carillon.ErrorCode(err) != carillon.EBadRequest {
		t.Errorf("CreateUser with a NUL in the name: %v, want BadRequest", err)
	}
}

// wantUnavailable checks that err says "cannot serve now" (503 with
// Retry-After), not an internal error.
func wantUnavailable(t testing.TB, err error, what string) {
	t.Helper()
	if !errors.Is(err, carillon.ErrUnavailable) || carillon.ErrorCode(err) != carillon.EServiceUnavailable {
		t.Errorf("%s: %v (code %s), want an error wrapping ErrUnavailable", what, err, carillon.ErrorCode(err))
	}
}

// TestUnavailable checks the errors of a database that cannot serve: they
// wrap ErrUnavailable, nothing of a failed batch is stored, and the store
// recovers by itself once the database can serve again.
func TestUnavailable(t *testing.T) {
	t.Run("Unreachable", func(t *testing.T) {
		// Port 1 on loopback: connection refused.
		start := time.Now()
		_, err := postgres.Open(context.Background(), "postgres://postgres@127.0.0.1:1/carillon?sslmode=disable")
		wantUnavailable(t, err, "Open of an unreachable server")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Open of an unreachable server took %v", d)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		db := open(t)
		db.Close()
		wantUnavailable(t, db.Ping(context.Background()), "Ping of a closed store")
	})

	t.Run("ReadOnly", func(t *testing.T) {
		dsn := freshDatabase(t)
		ctx := context.Background()
		w := newWorld(t, openDSN(t, dsn))
		name := databaseOf(t, dsn)
		exec(t, baseDSN, "ALTER DATABASE "+name+" SET default_transaction_read_only = on")
		ro := openDSN(t, dsn) // new sessions take the setting
		wantUnavailable(t, ro.Ping(ctx), "Ping")
		wantUnavailable(t, ro.AppendMessages(ctx, []*carillon.Append{w.userEntry(w.a, "x", t0)}), "AppendMessages")
		wantUnavailable(t, ro.SetMeta(ctx, "k", "v"), "SetMeta")
		wantUnavailable(t, ro.DeleteRoom(ctx, w.b.RoomID, w.alice.UserID, t0), "DeleteRoom")
		if _, err := ro.Room(ctx, w.a.RoomID); err != nil {
			t.Errorf("Room on a read-only database: %v", err)
		}
		exec(t, baseDSN, "ALTER DATABASE "+name+" RESET default_transaction_read_only")
		rw := openDSN(t, dsn)
		mustf(t, rw.Ping(ctx), "Ping once writable again")
	})

	t.Run("LockHeld", func(t *testing.T) {
		// Another session (a node that stopped answering mid-batch) holds
		// the counter row: a batch gives up at its deadline, or at
		// lock_timeout, and stores nothing.
		dsn := freshDatabase(t)
		ctx := context.Background()
		db := openDSN(t, dsn)
		w := newWorld(t, db)
		holder, err := pgxpool.New(ctx, dsn)
		mustf(t, err, "pool")
		defer holder.Close()
		tx, err := holder.Begin(ctx)
		mustf(t, err, "Begin")
		_, err = tx.Exec(ctx, "SELECT 1 FROM seq_counter FOR UPDATE")
		mustf(t, err, "lock the counter")

		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		wantUnavailable(t, db.AppendMessages(dctx, []*carillon.Append{w.userEntry(w.a, "x", t0)}), "AppendMessages past its deadline")

		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		short := openDSN(t, dsn+sep+"lock_timeout=200")
		wantUnavailable(t, short.AppendMessages(ctx, []*carillon.Append{w.userEntry(w.a, "y", t0)}), "AppendMessages past lock_timeout")
		_, err = short.RegenerateWebhook(ctx, w.hook.WebhookID, randomBytes(32), randomBytes(60), w.alice.UserID, t0)
		wantUnavailable(t, err, "RegenerateWebhook past lock_timeout")

		mustf(t, tx.Rollback(ctx), "Rollback")
		e := w.userEntry(w.a, "z", t0)
		mustf(t, db.AppendMessages(ctx, []*carillon.Append{e}), "AppendMessages once the lock is free")
		if got := allMessages(t, db, w.a); len(got) != 1 || got[0].MessageID != e.Message.MessageID {
			t.Errorf("stored %d messages, want only the one after the lock was released", len(got))
		}
	})

	t.Run("ConnectionsTerminated", func(t *testing.T) {
		// What a restart of PostgreSQL does to the pool: every connection
		// ends. Calls fail as unavailable, then the pool reconnects.
		dsn := freshDatabase(t)
		ctx := context.Background()
		db := openDSN(t, dsn)
		w := newWorld(t, db)
		warm := make([]*carillon.Append, 0, 8)
		for i := 0; i < 8; i++ {
			warm = append(warm, w.userEntry(w.a, "warm", t0))
		}
		mustf(t, db.AppendMessages(ctx, warm), "AppendMessages")
		stored := len(warm)
		exec(t, baseDSN, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '"+databaseOf(t, dsn)+"'")
		ok := false
		for i := 0; i < 10 && !ok; i++ {
			e := w.userEntry(w.a, "after", t0)
			err := db.AppendMessages(ctx, []*carillon.Append{e})
			if err != nil {
				wantUnavailable(t, err, "AppendMessages on a terminated connection")
				continue
			}
			mustf(t, e.Err, "entry")
			stored++
			ok = true
		}
		if !ok {
			t.Fatal("the store did not recover after its connections were terminated")
		}
		mustf(t, db.Ping(ctx), "Ping after recovery")
		if got := allMessages(t, db, w.a); len(got) != stored {
			t.Errorf("stored %d messages, want %d", len(got), stored)
		}
	})
}
