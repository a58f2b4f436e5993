package storetest

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
)

func testWebhooks(t *testing.T, open Opener) {
	t.Run("CreateAndGet", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		hook := f.webhook(room, "CI")

		got, err := f.s.Webhook(f.ctx, hook.WebhookID)
		must(t, err, "Webhook")
		checkWebhook(t, "Webhook", got, hook)
		_, err = f.s.Webhook(f.ctx, uuid.NewString())
		wantCode(t, err, carillon.ENotFound, "Webhook of an id that never was one")
		_, err = f.s.Webhook(f.ctx, room.RoomID)
		wantCode(t, err, carillon.ENotFound, "Webhook of a room id")
	})

	t.Run("LimitPerRoom", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Full")
		other := f.room(alice, "Other")
		var hooks []*carillon.Webhook
		for i := 0; i < carillon.MaxWebhooksPerRoom; i++ {
			hooks = append(hooks, f.webhook(room, "Hook "+string(rune('A'+i))))
		}
		extra := f.newWebhook(room, "One too many")
		wantCode(t, f.s.CreateWebhook(f.ctx, extra, alice.UserID), carillon.EResourceLimit, "CreateWebhook beyond the limit")
		_, err := f.s.Webhook(f.ctx, extra.WebhookID)
		wantCode(t, err, carillon.ENotFound, "Webhook of a refused webhook")
		// The limit is per room.
		f.webhook(other, "Elsewhere")

		// A deleted webhook frees its slot.
		must(t, f.s.DeleteWebhook(f.ctx, hooks[3].WebhookID, alice.UserID, f.tick()), "DeleteWebhook")
		must(t, f.s.CreateWebhook(f.ctx, extra, alice.UserID), "CreateWebhook after a deletion")
		wantCode(t, f.s.CreateWebhook(f.ctx, f.newWebhook(room, "Again too many"), alice.UserID), carillon.EResourceLimit,
			"CreateWebhook beyond the limit again")
		live, err := f.s.WebhooksOfRoom(f.ctx, room.RoomID)
		must(t, err, "WebhooksOfRoom")
		if len(live) != carillon.MaxWebhooksPerRoom {
			t.Errorf("WebhooksOfRoom = %d webhooks, want %d", len(live), carillon.MaxWebhooksPerRoom)
		}
	})

	t.Run("LimitUnderConcurrency", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		const tries = carillon.MaxWebhooksPerRoom + 5
		errs := make([]error, tries)
		var wg sync.WaitGroup
		for i := range tries {
			w := f.newWebhook(room, "Hook")
			wg.Go(func() { errs[i] = f.s.CreateWebhook(f.ctx, w, alice.UserID) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else {
				wantCode(t, err, carillon.EResourceLimit, "concurrent CreateWebhook")
			}
		}
		if ok != carillon.MaxWebhooksPerRoom {
			t.Errorf("%d concurrent CreateWebhook succeeded, want %d", ok, carillon.MaxWebhooksPerRoom)
		}
		live, err := f.s.WebhooksOfRoom(f.ctx, room.RoomID)
		must(t, err, "WebhooksOfRoom")
		if len(live) != carillon.MaxWebhooksPerRoom {
			t.Errorf("WebhooksOfRoom = %d webhooks, want %d", len(live), carillon.MaxWebhooksPerRoom)
		}
	})

	t.Run("WebhooksOfRoom", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		other := f.room(alice, "Other")
		deploys := f.webhook(room, "Deploys")
		alerts := f.webhook(room, "Alerts")
		backup := f.webhook(room, "Backup")
		ci := f.webhook(room, "CI")
		f.webhook(other, "Builds")
		must(t, f.s.DeleteWebhook(f.ctx, backup.WebhookID, alice.UserID, f.tick()), "DeleteWebhook")

		got, err := f.s.WebhooksOfRoom(f.ctx, room.RoomID)
		must(t, err, "WebhooksOfRoom")
		want := []*carillon.Webhook{alerts, ci, deploys}
		if len(got) != len(want) {
			t.Fatalf("WebhooksOfRoom = %d webhooks, want %d (live ones of this room)", len(got), len(want))
		}
		for i := range want {
			checkWebhook(t, "WebhooksOfRoom["+want[i].Name+"]", &got[i], want[i])
		}
		got, err = f.s.WebhooksOfRoom(f.ctx, uuid.NewString())
		must(t, err, "WebhooksOfRoom of an unknown room")
		if len(got) != 0 {
			t.Errorf("WebhooksOfRoom of an unknown room = %+v", got)
		}
	})

	t.Run("Rename", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		hook := f.webhook(room, "Zulu")
		f.webhook(room, "Mike")

		got, err := f.s.RenameWebhook(f.ctx, hook.WebhookID, "Alpha", alice.UserID, f.tick())
		must(t, err, "RenameWebhook")
		hook.Name = "Alpha"
		checkWebhook(t, "RenameWebhook result", got, hook)
		got, err = f.s.Webhook(f.ctx, hook.WebhookID)
		must(t, err, "Webhook")
		checkWebhook(t, "Webhook after rename", got, hook)
		live, err := f.s.WebhooksOfRoom(f.ctx, room.RoomID)
		must(t, err, "WebhooksOfRoom")
		if len(live) != 2 || live[0].WebhookID != hook.WebhookID {
			t.Errorf("WebhooksOfRoom after rename does not list the renamed webhook first: %+v", live)
		}

		_, err = f.s.RenameWebhook(f.ctx, uuid.NewString(), "x", alice.UserID, f.tick())
		wantCode(t, err, carillon.ENotFound, "RenameWebhook of an unknown id")
		must(t, f.s.DeleteWebhook(f.ctx, hook.WebhookID, alice.UserID, f.tick()), "DeleteWebhook")
		_, err = f.s.RenameWebhook(f.ctx, hook.WebhookID, "Zombie", alice.UserID, f.tick())
		wantCode(t, err, carillon.ENotFound, "RenameWebhook of a deleted webhook")
		got, err = f.s.Webhook(f.ctx, hook.WebhookID)
		must(t, err, "Webhook")
		if got.Name != "Alpha" {
			t.Errorf("a refused rename changed the name to %q", got.Name)
		}
	})

	t.Run("RegenerateKeepsEveryTokenHash", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		hook := f.webhook(room, "CI")
		stranger := f.webhook(room, "Stranger")
		hashes := [][]byte{hook.TokenHash}

		for i := 0; i < 2; i++ {
			h, seal := randomHash(), randomBytes(60)
			got, err := f.s.RegenerateWebhook(f.ctx, hook.WebhookID, h, seal, alice.UserID, f.tick())
			must(t, err, "RegenerateWebhook")
			hook.TokenHash, hook.TokenSeal = h, seal
			checkWebhook(t, "RegenerateWebhook result", got, hook)
			got, err = f.s.Webhook(f.ctx, hook.WebhookID)
			must(t, err, "Webhook")
			checkWebhook(t, "Webhook after regenerate", got, hook)
			hashes = append(hashes, h)
		}

		// The 403/404 distinction: every hash the webhook ever had is
		// known, nothing else is.
		had := func(what string, webhookID string, h []byte, want bool) {
			t.Helper()
			got, err := f.s.WebhookHadToken(f.ctx, webhookID, h)
			must(t, err, "WebhookHadToken "+what)
			if got != want {
				t.Errorf("WebhookHadToken %s = %v, want %v", what, got, want)
			}
		}
		for i, h := range hashes {
			had("of token "+string(rune('0'+i)), hook.WebhookID, h, true)
		}
		had("of a never-seen hash", hook.WebhookID, randomHash(), false)
		had("of another webhook's hash", hook.WebhookID, stranger.TokenHash, false)
		had("of this webhook's hash under the other webhook", stranger.WebhookID, hashes[0], false)
		had("of an unknown webhook", uuid.NewString(), hashes[0], false)

		_, err := f.s.RegenerateWebhook(f.ctx, uuid.NewString(), randomHash(), randomBytes(60), alice.UserID, f.tick())
		wantCode(t, err, carillon.ENotFound, "RegenerateWebhook of an unknown id")
		must(t, f.s.DeleteWebhook(f.ctx, hook.WebhookID, alice.UserID, f.tick()), "DeleteWebhook")
		late := randomHash()
		_, err = f.s.RegenerateWebhook(f.ctx, hook.WebhookID, late, randomBytes(60), alice.UserID, f.tick())
		wantCode(t, err, carillon.ENotFound, "RegenerateWebhook of a deleted webhook")
		had("of a hash given in a refused regenerate", hook.WebhookID, late, false)
		for i, h := range hashes {
			had("after deletion, of token "+string(rune('0'+i)), hook.WebhookID, h, true)
		}
	})

	t.Run("DeleteLeavesTombstone", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		hook := f.webhook(room, "CI")
		neighbour := f.webhook(room, "Neighbour")

		now := f.tick()
		must(t, f.s.DeleteWebhook(f.ctx, hook.WebhookID, alice.UserID, now), "DeleteWebhook")
		got, err := f.s.Webhook(f.ctx, hook.WebhookID)
		must(t, err, "Webhook of a deleted webhook")
		hook.DeletedAt = &now
		checkWebhook(t, "tombstone", got, hook)
		ok, err := f.s.WebhookHadToken(f.ctx, hook.WebhookID, hook.TokenHash)
		must(t, err, "WebhookHadToken")
		if !ok {
			t.Errorf("WebhookHadToken of a deleted webhook's last token = false")
		}
		live, err := f.s.WebhooksOfRoom(f.ctx, room.RoomID)
		must(t, err, "WebhooksOfRoom")
		if len(live) != 1 || live[0].WebhookID != neighbour.WebhookID {
			t.Errorf("WebhooksOfRoom after a deletion = %+v, want the neighbour only", live)
		}

		wantCode(t, f.s.DeleteWebhook(f.ctx, hook.WebhookID, alice.UserID, f.tick()), carillon.ENotFound, "DeleteWebhook twice")
		wantCode(t, f.s.DeleteWebhook(f.ctx, uuid.NewString(), alice.UserID, f.tick()), carillon.ENotFound, "DeleteWebhook of an unknown id")
		got, err = f.s.Webhook(f.ctx, hook.WebhookID)
		must(t, err, "Webhook")
		checkWebhook(t, "tombstone after a second DeleteWebhook", got, hook)
	})

	t.Run("TouchWebhooks", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		a := f.webhook(room, "A")
		b := f.webhook(room, "B")
		idle := f.webhook(room, "Idle")
		gone := f.webhook(room, "Gone")
		must(t, f.s.DeleteWebhook(f.ctx, gone.WebhookID, alice.UserID, f.tick()), "DeleteWebhook")

		lastUsed := func(w *carillon.Webhook) *time.Time {
			t.Helper()
			got, err := f.s.Webhook(f.ctx, w.WebhookID)
			must(t, err, "Webhook")
			return got.LastUsedAt
		}
		if p := lastUsed(a); p != nil {
			t.Errorf("LastUsedAt of a new webhook = %v, want nil", *p)
		}
		must(t, f.s.TouchWebhooks(f.ctx, map[string]time.Time{}), "TouchWebhooks of nothing")

		ta, tb := f.tick(), f.tick()
		// A webhook deleted meanwhile may still be in the caller's batch.
		must(t, f.s.TouchWebhooks(f.ctx, map[string]time.Time{a.WebhookID: ta, b.WebhookID: tb, gone.WebhookID: tb}), "TouchWebhooks")
		steps := []struct {
			name  string
			touch map[string]time.Time
			wantA time.Time
			wantB time.Time
		}{
			{"first touch", nil, ta, tb},
			// LastUsedAt never moves backwards.
			{"earlier time", map[string]time.Time{a.WebhookID: ta.Add(-time.Minute)}, ta, tb},
			{"same time", map[string]time.Time{b.WebhookID: tb}, ta, tb},
			{"one later, one earlier", map[string]time.Time{a.WebhookID: ta.Add(time.Hour), b.WebhookID: tb.Add(-time.Hour)}, ta.Add(time.Hour), tb},
		}
		for _, s := range steps {
			if s.touch != nil {
				must(t, f.s.TouchWebhooks(f.ctx, s.touch), "TouchWebhooks "+s.name)
			}
			if got := lastUsed(a); !sameTimePtr(got, &s.wantA) {
				t.Errorf("%s: LastUsedAt of A = %s, want %v", s.name, fmtTimePtr(got), s.wantA)
			}
			if got := lastUsed(b); !sameTimePtr(got, &s.wantB) {
				t.Errorf("%s: LastUsedAt of B = %s, want %v", s.name, fmtTimePtr(got), s.wantB)
			}
		}
		if p := lastUsed(idle); p != nil {
			t.Errorf("LastUsedAt of an untouched webhook = %v, want nil", *p)
		}
	})
}

func checkWebhook(t *testing.T, what string, got, want *carillon.Webhook) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil webhook", what)
		return
	}
	if got.WebhookID != want.WebhookID || got.RoomID != want.RoomID || got.Name != want.Name ||
		!bytes.Equal(got.TokenHash, want.TokenHash) || !slices.Equal(got.TokenSeal, want.TokenSeal) ||
		!sameTime(got.CreatedAt, want.CreatedAt) || !sameTimePtr(got.LastUsedAt, want.LastUsedAt) ||
		!sameTimePtr(got.DeletedAt, want.DeletedAt) {
		t.Errorf("%s:\n got %s %s %q hash %x seal %x created %v used %s deleted %s"+
			"\nwant %s %s %q hash %x seal %x created %v used %s deleted %s", what,
			got.WebhookID, got.RoomID, got.Name, got.TokenHash, got.TokenSeal, got.CreatedAt, fmtTimePtr(got.LastUsedAt), fmtTimePtr(got.DeletedAt),
			want.WebhookID, want.RoomID, want.Name, want.TokenHash, want.TokenSeal, want.CreatedAt, fmtTimePtr(want.LastUsedAt), fmtTimePtr(want.DeletedAt))
	}
}
