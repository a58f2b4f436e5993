package storetest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
)

func testMessages(t *testing.T, open Opener) {
	t.Run("RoundTrip", func(t *testing.T) {
		cases := []struct {
			name     string
			mentions func(u *carillon.User) carillon.Mentions
			want     func(u *carillon.User) carillon.Mentions
		}{
			{"no mentions, nil MemberIDs",
				func(*carillon.User) carillon.Mentions { return carillon.Mentions{} },
				func(*carillon.User) carillon.Mentions { return carillon.Mentions{MemberIDs: []string{}} }},
			{"All",
				func(*carillon.User) carillon.Mentions { return carillon.Mentions{All: true, MemberIDs: []string{}} },
				func(*carillon.User) carillon.Mentions { return carillon.Mentions{All: true, MemberIDs: []string{}} }},
			{"Present and members",
				func(u *carillon.User) carillon.Mentions {
					return carillon.Mentions{Present: true, MemberIDs: []string{u.UserID, "0d9ac4a4-6a43-4d3c-8f55-6a1f3c0e4b21"}}
				},
				func(u *carillon.User) carillon.Mentions {
					return carillon.Mentions{Present: true, MemberIDs: []string{u.UserID, "0d9ac4a4-6a43-4d3c-8f55-6a1f3c0e4b21"}}
				}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f := setup(t, open)
				alice := f.user("Alice Young")
				room := f.room(alice, "Ops")
				hook := f.webhook(room, "CI")
				m := f.webhookMessage(hook, "Grüße 🚀 <b>@alice.young</b>\n`code`")
				m.Format = carillon.FormatMarkdown
				m.HTML = "<p>Grüße 🚀 &lt;b&gt;</p>"
				m.Mentions = c.mentions(alice)
				sent := *m
				f.post(m)

				if m.Seq <= 0 {
					t.Errorf("Seq after commit = %d, want > 0", m.Seq)
				}
				if !sameTime(m.CreatedAt, sent.CreatedAt) {
					t.Errorf("CreatedAt changed to %v, want %v kept", m.CreatedAt, sent.CreatedAt)
				}
				msgs := f.messages(room.RoomID)
				if len(msgs) != 1 {
					t.Fatalf("Messages = %d, want 1", len(msgs))
				}
				want := sent
				want.Seq = m.Seq
				want.Mentions = c.want(alice)
				checkMessage(t, "stored message", &msgs[0], &want)
			})
		}
	})

	t.Run("SeqFollowsCommitOrder", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		a := f.room(alice, "A")
		b := f.room(alice, "B")
		var committed []*carillon.Message
		for batch := 0; batch < 3; batch++ {
			var entries []*carillon.Append
			for i := 0; i < 3; i++ {
				room := a
				if i == 1 {
					room = b // Seq is the commit order of the whole store
				}
				m := f.userMessage(room, alice, fmt.Sprintf("%d.%d", batch, i))
				entries = append(entries, &carillon.Append{Message: m})
				committed = append(committed, m)
			}
			f.appendBatch(entries...)
		}
		for i := 1; i < len(committed); i++ {
			if committed[i].Seq <= committed[i-1].Seq {
				t.Errorf("Seq %d of message %d is not above Seq %d of the one before", committed[i].Seq, i, committed[i-1].Seq)
			}
		}
		var wantA []string
		for _, m := range committed {
			if m.RoomID == a.RoomID {
				wantA = append(wantA, m.MessageID)
			}
		}
		if got := ids(f.messages(a.RoomID)); !slices.Equal(got, wantA) {
			t.Errorf("Messages(A) = %v, want commit order %v", got, wantA)
		}
	})

	t.Run("CreatedAtNeverDecreases", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		hook := f.webhook(room, "CI")
		at := func(d time.Duration) *carillon.Append {
			m := f.userMessage(room, alice, d.String())
			m.CreatedAt = t0.Add(d)
			return &carillon.Append{Message: m}
		}
		committed := map[string]*carillon.Message{}
		check := func(what string, a *carillon.Append, want time.Duration) {
			t.Helper()
			committed[a.Message.MessageID] = a.Message
			if a.Err != nil {
				t.Errorf("%s: %v", what, a.Err)
			} else if !sameTime(a.Message.CreatedAt, t0.Add(want)) {
				t.Errorf("%s: CreatedAt = t0%+v, want t0%+v", what, a.Message.CreatedAt.Sub(t0), want)
			}
		}

		// Within a batch: an entry carrying an earlier time than one before
		// it is stored with that later time, and the caller sees it.
		e := []*carillon.Append{at(time.Hour), at(time.Hour - 5*time.Second), at(time.Hour + 10*time.Second)}
		f.appendBatch(e...)
		check("first", e[0], time.Hour)
		check("earlier than the one before", e[1], time.Hour)
		check("later", e[2], time.Hour+10*time.Second)

		// Across batches.
		e = []*carillon.Append{at(time.Hour + time.Second)}
		f.appendBatch(e...)
		check("earlier than the previous batch", e[0], time.Hour+10*time.Second)

		// An entry that is refused does not move the clock.
		stale := f.webhookMessage(hook, "stale")
		stale.CreatedAt = t0.Add(48 * time.Hour)
		e = []*carillon.Append{{Message: stale, WebhookTokenHash: randomHash()}, at(time.Hour + 20*time.Second)}
		f.appendBatch(e...)
		wantCode(t, e[0].Err, carillon.ENotFound, "entry with a wrong token hash")
		check("after a refused later entry", e[1], time.Hour+20*time.Second)

		// Nor does a batch that failed as a whole. A message id used twice
		// cannot be stored twice: the backend refuses the batch (or, at
		// least, that entry).
		late, dup := at(72*time.Hour), at(0)
		dup.Message.MessageID = e[1].Message.MessageID
		before := f.messages(room.RoomID)
		err := f.s.AppendMessages(f.ctx, []*carillon.Append{late, dup})
		after := f.messages(room.RoomID)
		if err != nil {
			if len(after) != len(before) {
				t.Fatalf("a failed batch stored %d messages", len(after)-len(before))
			}
			e = []*carillon.Append{at(time.Hour + 30*time.Second)}
			f.appendBatch(e...)
			check("after a failed batch with a later entry", e[0], time.Hour+30*time.Second)
		} else if dup.Err == nil {
			t.Errorf("a message id was stored twice")
		}

		msgs := f.messages(room.RoomID)
		for i := range msgs {
			if i > 0 && msgs[i].CreatedAt.Before(msgs[i-1].CreatedAt) {
				t.Errorf("stored CreatedAt decreases at %d: %v after %v", i, msgs[i].CreatedAt, msgs[i-1].CreatedAt)
			}
			// The caller publishes its copy: it must match what is stored.
			if c, ok := committed[msgs[i].MessageID]; ok && !sameTime(c.CreatedAt, msgs[i].CreatedAt) {
				t.Errorf("stored CreatedAt %v differs from the caller's copy %v", msgs[i].CreatedAt, c.CreatedAt)
			}
		}
	})

	t.Run("EntryConditions", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		carol := f.user("Carol Outside")
		dave := f.user("Dave Left")
		room := f.room(alice, "Ops")
		doomed := f.room(alice, "Doomed")
		f.join(room, dave, carillon.RoleMember)
		must(t, f.s.RemoveMember(f.ctx, room.RoomID, dave.UserID, dave.UserID, f.tick()), "RemoveMember")

		live := f.webhook(room, "Live")
		regen := f.webhook(room, "Regenerated")
		oldHash := regen.TokenHash
		newHash := randomHash()
		_, err := f.s.RegenerateWebhook(f.ctx, regen.WebhookID, newHash, randomBytes(60), alice.UserID, f.tick())
		must(t, err, "RegenerateWebhook")
		deleted := f.webhook(room, "Deleted")
		must(t, f.s.DeleteWebhook(f.ctx, deleted.WebhookID, alice.UserID, f.tick()), "DeleteWebhook")
		inDoomed := f.webhook(doomed, "In doomed room")
		must(t, f.s.DeleteRoom(f.ctx, doomed.RoomID, alice.UserID, f.tick()), "DeleteRoom")

		cases := []struct {
			name string
			a    *carillon.Append
			ok   bool
		}{
			{"member with RequireMember", &carillon.Append{Message: f.userMessage(room, alice, "1"), RequireMember: true}, true},
			{"non-member with RequireMember", &carillon.Append{Message: f.userMessage(room, carol, "2"), RequireMember: true}, false},
			{"removed member with RequireMember", &carillon.Append{Message: f.userMessage(room, dave, "3"), RequireMember: true}, false},
			{"member of a deleted room", &carillon.Append{Message: f.userMessage(doomed, alice, "4"), RequireMember: true}, false},
			{"webhook with its token", &carillon.Append{Message: f.webhookMessage(live, "5"), WebhookTokenHash: live.TokenHash}, true},
			{"webhook with its old token", &carillon.Append{Message: f.webhookMessage(regen, "6"), WebhookTokenHash: oldHash}, false},
			{"webhook with its new token", &carillon.Append{Message: f.webhookMessage(regen, "7"), WebhookTokenHash: newHash}, true},
			{"deleted webhook", &carillon.Append{Message: f.webhookMessage(deleted, "8"), WebhookTokenHash: deleted.TokenHash}, false},
			{"webhook of a deleted room", &carillon.Append{Message: f.webhookMessage(inDoomed, "9"), WebhookTokenHash: inDoomed.TokenHash}, false},
			{"webhook with another webhook's token", &carillon.Append{Message: f.webhookMessage(live, "10"), WebhookTokenHash: newHash}, false},
			{"member again, after refusals", &carillon.Append{Message: f.userMessage(room, alice, "11"), RequireMember: true}, true},
		}
		var batch []*carillon.Append
		var want []string
		for _, c := range cases {
			batch = append(batch, c.a)
			if c.ok {
				want = append(want, c.a.Message.MessageID)
			}
		}
		// One batch: refused entries do not hold back the others.
		f.appendBatch(batch...)
		var lastSeq int64
		for _, c := range cases {
			if c.ok {
				if c.a.Err != nil {
					t.Errorf("%s: %v", c.name, c.a.Err)
				} else if c.a.Message.Seq <= lastSeq {
					t.Errorf("%s: Seq %d not above %d", c.name, c.a.Message.Seq, lastSeq)
				} else {
					lastSeq = c.a.Message.Seq
				}
			} else {
				wantCode(t, c.a.Err, carillon.ENotFound, c.name)
			}
		}
		if got := ids(f.messages(room.RoomID)); !slices.Equal(got, want) {
			t.Errorf("Messages = %v, want %v", got, want)
		}
		if got := f.messages(doomed.RoomID); len(got) != 0 {
			t.Errorf("a deleted room got messages: %v", ids(got))
		}
	})

	t.Run("Paging", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		other := f.room(alice, "Other")
		empty := f.room(alice, "Empty")
		var m []carillon.Message
		for i := 0; i < 7; i++ {
			msg := f.userMessage(room, alice, fmt.Sprint(i))
			f.post(msg)
			m = append(m, *msg)
			if i%2 == 0 {
				f.post(f.userMessage(other, alice, "other"))
			}
		}
		seq := func(i int) int64 { return m[i].Seq }
		cases := []struct {
			name string
			q    carillon.MessageQuery
			want []carillon.Message
		}{
			{"ascending from the start", carillon.MessageQuery{Ascending: true, Limit: 3}, m[0:3]},
			{"ascending, second page", carillon.MessageQuery{Ascending: true, After: seq(2), Limit: 3}, m[3:6]},
			{"ascending, last page", carillon.MessageQuery{Ascending: true, After: seq(5), Limit: 3}, m[6:]},
			{"ascending after the newest", carillon.MessageQuery{Ascending: true, After: seq(6), Limit: 3}, nil},
			{"ascending, all", carillon.MessageQuery{Ascending: true, Limit: 100}, m},
			{"descending from the newest", carillon.MessageQuery{Limit: 3}, reversed(m[4:7])},
			{"descending, second page", carillon.MessageQuery{After: seq(4), Limit: 3}, reversed(m[1:4])},
			{"descending, last page", carillon.MessageQuery{After: seq(1), Limit: 3}, m[0:1]},
			{"descending before the oldest", carillon.MessageQuery{After: seq(0), Limit: 3}, nil},
			{"descending, all", carillon.MessageQuery{Limit: 100}, reversed(m)},
			{"limit 1", carillon.MessageQuery{Ascending: true, After: seq(3), Limit: 1}, m[4:5]},
		}
		for _, c := range cases {
			got, err := f.s.Messages(f.ctx, room.RoomID, c.q)
			must(t, err, "Messages "+c.name)
			if !slices.Equal(ids(got), ids(c.want)) {
				t.Errorf("%s: %v, want %v", c.name, ids(got), ids(c.want))
				continue
			}
			for i := range got {
				checkMessage(t, c.name, &got[i], &c.want[i])
			}
		}
		for _, asc := range []bool{true, false} {
			got, err := f.s.Messages(f.ctx, other.RoomID, carillon.MessageQuery{Ascending: asc, Limit: 100})
			must(t, err, "Messages")
			if len(got) != 4 {
				t.Errorf("Messages(other, ascending %v) = %d messages, want its 4", asc, len(got))
			}
			for _, msg := range got {
				if msg.RoomID != other.RoomID || slices.Contains(ids(m), msg.MessageID) {
					t.Errorf("Messages(other) holds a message of another room: %+v", msg)
				}
			}
			got, err = f.s.Messages(f.ctx, empty.RoomID, carillon.MessageQuery{Ascending: asc, Limit: 100})
			must(t, err, "Messages of an empty room")
			if len(got) != 0 {
				t.Errorf("Messages of an empty room = %v", ids(got))
			}
		}
	})

	t.Run("ConcurrentAppends", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		const writers, batches, perBatch = 8, 15, 2
		type sent struct {
			m    *carillon.Message
			orig time.Time
		}
		all := make([][]sent, writers)
		errs := make([]error, writers)
		var writing sync.WaitGroup
		done := make(chan struct{})

		// A reader pages forward while the writers commit, the way a
		// client follows a room: once it has read past a Seq, no message
		// with a lower Seq may appear later (it would never be seen).
		var followed []string
		var readErr error
		var reading sync.WaitGroup
		reading.Go(func() {
			var after int64
			for finished := false; ; {
				select {
				case <-done:
					finished = true // one more pass reads the rest
				default:
				}
				msgs, err := f.s.Messages(f.ctx, room.RoomID, carillon.MessageQuery{Ascending: true, After: after, Limit: 7})
				if err != nil {
					readErr = err
					return
				}
				for _, m := range msgs {
					followed = append(followed, m.MessageID)
					after = m.Seq
				}
				if finished && len(msgs) == 0 {
					return
				}
			}
		})

		for w := range writers {
			// Times rise batch by batch but jitter back and forth across
			// writers, as the clocks of concurrent requests do, so that
			// many commits carry a time earlier than the newest stored.
			r := rand.New(rand.NewPCG(uint64(w), 7))
			var mine []sent
			var entries [][]*carillon.Append
			for b := 0; b < batches; b++ {
				var batch []*carillon.Append
				for i := 0; i < perBatch; i++ {
					m := f.userMessage(room, alice, fmt.Sprintf("w%d b%d i%d", w, b, i))
					m.CreatedAt = t0.Add(time.Duration(b*20+r.IntN(60)) * time.Millisecond)
					mine = append(mine, sent{m, m.CreatedAt})
					batch = append(batch, &carillon.Append{Message: m, RequireMember: true})
				}
				entries = append(entries, batch)
			}
			all[w] = mine
			writing.Go(func() {
				for _, batch := range entries {
					if err := f.s.AppendMessages(f.ctx, batch); err != nil {
						errs[w] = err
						return
					}
					for _, a := range batch {
						if a.Err != nil {
							errs[w] = a.Err
							return
						}
					}
				}
			})
		}
		writing.Wait()
		close(done)
		reading.Wait()
		for _, err := range errs {
			must(t, err, "concurrent AppendMessages")
		}
		must(t, readErr, "Messages while appending")

		stored := f.messages(room.RoomID)
		if len(stored) != writers*batches*perBatch {
			t.Fatalf("stored %d messages, want %d", len(stored), writers*batches*perBatch)
		}
		byID := map[string]carillon.Message{}
		for i, m := range stored {
			byID[m.MessageID] = m
			if i > 0 && m.Seq <= stored[i-1].Seq {
				t.Errorf("Seq not increasing at %d", i)
			}
			if i > 0 && m.CreatedAt.Before(stored[i-1].CreatedAt) {
				t.Errorf("CreatedAt decreases along commit order at %d: %v after %v", i, m.CreatedAt, stored[i-1].CreatedAt)
			}
		}
		if !slices.Equal(followed, ids(stored)) {
			t.Errorf("a reader following the room saw %d messages, or in another order, of the %d stored", len(followed), len(stored))
		}
		for _, mine := range all {
			for _, s := range mine {
				got := byID[s.m.MessageID]
				if got.Seq != s.m.Seq || !sameTime(got.CreatedAt, s.m.CreatedAt) {
					t.Errorf("caller's copy (Seq %d, %v) differs from the stored message (Seq %d, %v)",
						s.m.Seq, s.m.CreatedAt, got.Seq, got.CreatedAt)
				}
				if s.m.CreatedAt.Before(s.orig) {
					t.Errorf("CreatedAt moved back from %v to %v", s.orig, s.m.CreatedAt)
				}
			}
		}
	})
}

func testIdempotency(t *testing.T, open Opener) {
	t.Run("RecordAndReuse", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		hook := f.webhook(room, "CI")
		const key = "deploy-42"
		ttl := carillon.IdempotencyKeyTTL

		// post appends, as its own batch, a message of senderID (the
		// webhook or alice) at t0+d that carries key, and returns the
		// entry.
		post := func(senderID string, d time.Duration) *carillon.Append {
			t.Helper()
			var m *carillon.Message
			if senderID == hook.WebhookID {
				m = f.webhookMessage(hook, "content at "+d.String())
			} else {
				m = f.userMessage(room, alice, "content at "+d.String())
			}
			m.CreatedAt = t0.Add(d)
			a := &carillon.Append{Message: m, Idempotency: &carillon.IdempotencyRecord{
				SenderID: senderID, Key: key, ContentHash: randomHash(),
				MessageID: m.MessageID, RoomID: m.RoomID, CreatedAt: t0.Add(d),
			}}
			f.appendBatch(a)
			return a
		}
		record := func(senderID, key string, since time.Time) *carillon.IdempotencyRecord {
			t.Helper()
			r, err := f.s.IdempotencyRecord(f.ctx, senderID, key, since)
			must(t, err, "IdempotencyRecord")
			return r
		}

		first := post(hook.WebhookID, 0)
		must(t, first.Err, "first use of a key")
		got := record(hook.WebhookID, key, t0.Add(-ttl))
		checkRecord(t, "record of the first use", got, first.Idempotency)

		// since is inclusive: a record created at since is not older.
		if got := record(hook.WebhookID, key, t0); got == nil {
			t.Errorf("IdempotencyRecord with since = its creation time: nil")
		}
		if got := record(hook.WebhookID, key, t0.Add(time.Millisecond)); got != nil {
			t.Errorf("IdempotencyRecord with since after its creation: %+v, want nil", got)
		}
		if got := record(hook.WebhookID, "other-key", t0.Add(-ttl)); got != nil {
			t.Errorf("IdempotencyRecord of an unused key: %+v", got)
		}
		if got := record(alice.UserID, key, t0.Add(-ttl)); got != nil {
			t.Errorf("IdempotencyRecord of another sender: %+v", got)
		}

		// Taken by the first request: a later batch gets a conflict and
		// stores nothing.
		for _, d := range []time.Duration{time.Minute, ttl - time.Second} {
			again := post(hook.WebhookID, d)
			wantCode(t, again.Err, carillon.EConflict, "reuse of a live key after "+d.String())
		}
		checkRecord(t, "record after refused reuses", record(hook.WebhookID, key, t0.Add(-ttl)), first.Idempotency)
		if got := ids(f.messages(room.RoomID)); !slices.Equal(got, []string{first.Message.MessageID}) {
			t.Errorf("Messages = %v, want only the first", got)
		}

		// Keys belong to one sender.
		mine := post(alice.UserID, 2*time.Minute)
		must(t, mine.Err, "same key, another sender")

		// Once older than IdempotencyKeyTTL the key is free again, and its
		// record is replaced. (The server looks for records not older
		// than the TTL; were the old one kept, the key could never be
		// used again.)
		renewed := post(hook.WebhookID, ttl+time.Second)
		must(t, renewed.Err, "reuse of an expired key")
		checkRecord(t, "record of the renewed key", record(hook.WebhookID, key, t0.Add(time.Second)), renewed.Idempotency)
		if got := ids(f.messages(room.RoomID)); len(got) != 3 || got[2] != renewed.Message.MessageID {
			t.Errorf("Messages = %v, want 3 ending with the renewed one", got)
		}
	})

	t.Run("SameKeyTwiceInOneBatch", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		var batch []*carillon.Append
		for i := 0; i < 3; i++ {
			m := f.userMessage(room, alice, fmt.Sprint(i))
			key := "k"
			if i == 2 {
				key = "k2"
			}
			batch = append(batch, &carillon.Append{Message: m, RequireMember: true, Idempotency: &carillon.IdempotencyRecord{
				SenderID: alice.UserID, Key: key, ContentHash: randomHash(), MessageID: m.MessageID, RoomID: room.RoomID, CreatedAt: m.CreatedAt}})
		}
		f.appendBatch(batch...)
		must(t, batch[0].Err, "first entry")
		wantCode(t, batch[1].Err, carillon.EConflict, "second entry with the same key")
		must(t, batch[2].Err, "entry with another key")
		r, err := f.s.IdempotencyRecord(f.ctx, alice.UserID, "k", t0)
		must(t, err, "IdempotencyRecord")
		checkRecord(t, "record", r, batch[0].Idempotency)
		want := []string{batch[0].Message.MessageID, batch[2].Message.MessageID}
		if got := ids(f.messages(room.RoomID)); !slices.Equal(got, want) {
			t.Errorf("Messages = %v, want %v", got, want)
		}
	})

	t.Run("RefusedEntryRecordsNoKey", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		hook := f.webhook(room, "CI")
		entry := func(tokenHash []byte) *carillon.Append {
			m := f.webhookMessage(hook, "x")
			return &carillon.Append{Message: m, WebhookTokenHash: tokenHash, Idempotency: &carillon.IdempotencyRecord{
				SenderID: hook.WebhookID, Key: "k", ContentHash: randomHash(), MessageID: m.MessageID, RoomID: room.RoomID, CreatedAt: m.CreatedAt}}
		}
		refused := entry(randomHash())
		f.appendBatch(refused)
		wantCode(t, refused.Err, carillon.ENotFound, "entry with a wrong token")
		r, err := f.s.IdempotencyRecord(f.ctx, hook.WebhookID, "k", t0)
		must(t, err, "IdempotencyRecord")
		if r != nil {
			t.Errorf("a refused entry recorded its key: %+v", r)
		}
		accepted := entry(hook.TokenHash)
		f.appendBatch(accepted)
		must(t, accepted.Err, "the key after a refused entry")
	})

	t.Run("ConcurrentSameKey", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		const n = 6
		entries := make([]*carillon.Append, n)
		errs := make([]error, n)
		for i := range entries {
			m := f.userMessage(room, alice, fmt.Sprint(i))
			entries[i] = &carillon.Append{Message: m, Idempotency: &carillon.IdempotencyRecord{
				SenderID: alice.UserID, Key: "k", ContentHash: randomHash(), MessageID: m.MessageID, RoomID: room.RoomID, CreatedAt: m.CreatedAt}}
		}
		var wg sync.WaitGroup
		for i, a := range entries {
			wg.Go(func() { errs[i] = f.s.AppendMessages(f.ctx, []*carillon.Append{a}) })
		}
		wg.Wait()
		ok := 0
		var winner *carillon.Append
		for i, a := range entries {
			must(t, errs[i], "AppendMessages")
			if a.Err == nil {
				ok++
				winner = a
			} else {
				wantCode(t, a.Err, carillon.EConflict, "concurrent use of a key")
			}
		}
		if ok != 1 {
			t.Fatalf("%d concurrent uses of one key succeeded, want 1", ok)
		}
		r, err := f.s.IdempotencyRecord(f.ctx, alice.UserID, "k", t0)
		must(t, err, "IdempotencyRecord")
		checkRecord(t, "record", r, winner.Idempotency)
		if got := ids(f.messages(room.RoomID)); !slices.Equal(got, []string{winner.Message.MessageID}) {
			t.Errorf("Messages = %v, want the winner's only", got)
		}
	})

	t.Run("UnknownKey", func(t *testing.T) {
		f := setup(t, open)
		r, err := f.s.IdempotencyRecord(f.ctx, uuid.NewString(), "never", t0)
		must(t, err, "IdempotencyRecord of an unknown key")
		if r != nil {
			t.Errorf("IdempotencyRecord of an unknown key = %+v", r)
		}
	})
}

func checkMessage(t *testing.T, what string, got, want *carillon.Message) {
	t.Helper()
	if got.MessageID != want.MessageID || got.RoomID != want.RoomID || got.Seq != want.Seq ||
		got.Content != want.Content || got.Format != want.Format || got.HTML != want.HTML ||
		got.SenderType != want.SenderType || got.SenderID != want.SenderID || got.SenderName != want.SenderName ||
		got.DisplayName != want.DisplayName || !sameTime(got.CreatedAt, want.CreatedAt) ||
		got.Mentions.All != want.Mentions.All || got.Mentions.Present != want.Mentions.Present ||
		!slices.Equal(got.Mentions.MemberIDs, want.Mentions.MemberIDs) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, *got, *want)
	}
	if got.Mentions.MemberIDs == nil {
		t.Errorf("%s: Mentions.MemberIDs is nil, want a (possibly empty) list", what)
	}
}

func checkRecord(t *testing.T, what string, got, want *carillon.IdempotencyRecord) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil", what)
		return
	}
	if got.SenderID != want.SenderID || got.Key != want.Key || !bytes.Equal(got.ContentHash, want.ContentHash) ||
		got.MessageID != want.MessageID || got.RoomID != want.RoomID || !sameTime(got.CreatedAt, want.CreatedAt) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, *got, *want)
	}
}
