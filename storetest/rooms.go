package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
)

func testRooms(t *testing.T, open Opener) {
	t.Run("CreateMakesCreatorAdministrator", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		room := f.room(alice, "Ops")

		got, err := f.s.Room(f.ctx, room.RoomID)
		must(t, err, "Room")
		checkRoom(t, "Room", got, room)

		m, err := f.s.Membership(f.ctx, room.RoomID, alice.UserID)
		must(t, err, "Membership of the creator")
		checkMembership(t, "creator's membership", m, room.RoomID, alice, carillon.RoleAdministrator)
		n, err := f.s.CountMembers(f.ctx, room.RoomID)
		must(t, err, "CountMembers")
		if n != 1 {
			t.Errorf("CountMembers = %d, want 1", n)
		}
		members, err := f.s.Members(f.ctx, room.RoomID)
		must(t, err, "Members")
		if len(members) != 1 || members[0].UserID != alice.UserID {
			t.Errorf("Members = %+v, want the creator only", members)
		}

		rooms, err := f.s.RoomsOfUser(f.ctx, alice.UserID)
		must(t, err, "RoomsOfUser")
		if len(rooms) != 1 {
			t.Fatalf("RoomsOfUser(creator) = %+v, want the room", rooms)
		}
		checkRoom(t, "RoomsOfUser(creator)[0]", &rooms[0], room)
		if rooms[0].UnreadCount != 0 {
			t.Errorf("UnreadCount of a new room = %d", rooms[0].UnreadCount)
		}
		rooms, err = f.s.RoomsOfUser(f.ctx, bob.UserID)
		must(t, err, "RoomsOfUser")
		if len(rooms) != 0 {
			t.Errorf("RoomsOfUser of a user in no room = %+v", rooms)
		}

		_, err = f.s.Room(f.ctx, uuid.NewString())
		wantCode(t, err, carillon.ENotFound, "Room of an unknown id")
	})

	t.Run("RoomsOfUserOrderedByName", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		f.room(alice, "Charlie")
		f.room(alice, "Alpha")
		f.room(bob, "Aardvark") // alice is not a member
		bravo := f.room(bob, "Bravo")
		f.join(bravo, alice, carillon.RoleMember)

		rooms, err := f.s.RoomsOfUser(f.ctx, alice.UserID)
		must(t, err, "RoomsOfUser")
		var got []string
		for _, r := range rooms {
			got = append(got, r.Name)
		}
		want := []string{"Alpha", "Bravo", "Charlie"}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("RoomsOfUser names = %q, want %q", got, want)
		}
	})

	t.Run("DeleteRoom", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		room := f.room(alice, "Doomed")
		kept := f.room(alice, "Kept")
		f.join(room, bob, carillon.RoleMember)
		hook := f.webhook(room, "CI")
		keptHook := f.webhook(kept, "CI")

		now := f.tick()
		must(t, f.s.DeleteRoom(f.ctx, room.RoomID, alice.UserID, now), "DeleteRoom")

		_, err := f.s.Room(f.ctx, room.RoomID)
		wantCode(t, err, carillon.ENotFound, "Room of a deleted room")
		for _, u := range []*carillon.User{alice, bob} {
			if _, ok := f.rooms(u)[room.RoomID]; ok {
				t.Errorf("RoomsOfUser(%s) lists a deleted room", u.FullName)
			}
		}
		if _, ok := f.rooms(alice)[kept.RoomID]; !ok {
			t.Errorf("RoomsOfUser lost the room that was not deleted")
		}
		// Its webhooks are tombstones now: their URLs answer 404.
		w, err := f.s.Webhook(f.ctx, hook.WebhookID)
		must(t, err, "Webhook of a deleted room")
		if w.DeletedAt == nil {
			t.Errorf("webhook of a deleted room has no DeletedAt")
		}
		w, err = f.s.Webhook(f.ctx, keptHook.WebhookID)
		must(t, err, "Webhook")
		if w.DeletedAt != nil {
			t.Errorf("webhook of another room was deleted too")
		}

		events := f.auditEvents(room.RoomID)
		if len(events) == 0 {
			t.Fatal("no audit event after DeleteRoom")
		}
		checkAudit(t, "newest audit event", events[0], room.RoomID, carillon.AuditRoomDeleted, alice.UserID, room.RoomID, now)

		wantCode(t, f.s.DeleteRoom(f.ctx, room.RoomID, alice.UserID, f.tick()), carillon.ENotFound, "DeleteRoom twice")
		wantCode(t, f.s.DeleteRoom(f.ctx, uuid.NewString(), alice.UserID, f.tick()), carillon.ENotFound, "DeleteRoom of an unknown id")
		if n := len(f.auditEvents(room.RoomID)); n != len(events) {
			t.Errorf("a refused DeleteRoom wrote audit events: %d, want %d", n, len(events))
		}
	})

	t.Run("UnreadCountAndMarkRead", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		carol := f.user("Carol Zed")
		room := f.room(alice, "Ops")
		other := f.room(alice, "Other")
		f.join(room, bob, carillon.RoleMember)
		f.join(other, bob, carillon.RoleMember)
		hook := f.webhook(room, "CI")

		b1 := f.userMessage(room, bob, "b1")
		b2 := f.userMessage(room, bob, "b2")
		a1 := f.userMessage(room, alice, "a1")
		w1 := f.webhookMessage(hook, "w1")
		elsewhere := f.userMessage(other, bob, "elsewhere")
		f.post(b1, b2, a1, w1, elsewhere)

		// Unread: messages by others (users and webhooks) after the marker.
		checkUnread := func(what string, u *carillon.User, r *carillon.Room, want int) {
			t.Helper()
			if got := f.unread(u, r); got != want {
				t.Errorf("%s: UnreadCount of %s in %s = %d, want %d", what, u.FullName, r.Name, got, want)
			}
		}
		checkUnread("initially", alice, room, 3)
		checkUnread("initially", bob, room, 2)
		checkUnread("initially", alice, other, 1)
		checkUnread("initially", bob, other, 0)

		must(t, f.s.MarkRead(f.ctx, room.RoomID, alice.UserID, b2.MessageID), "MarkRead")
		checkUnread("read up to b2", alice, room, 1) // w1; a1 is her own
		checkUnread("read up to b2", bob, room, 2)   // markers are per user
		checkUnread("read up to b2", alice, other, 1)

		// The marker only moves forward.
		must(t, f.s.MarkRead(f.ctx, room.RoomID, alice.UserID, b1.MessageID), "MarkRead of an older message")
		checkUnread("MarkRead of an older message", alice, room, 1)

		// Refusals leave the marker where it is.
		err := f.s.MarkRead(f.ctx, room.RoomID, alice.UserID, elsewhere.MessageID)
		wantCode(t, err, carillon.ENotFound, "MarkRead of a message of another room")
		err = f.s.MarkRead(f.ctx, room.RoomID, alice.UserID, uuid.NewString())
		wantCode(t, err, carillon.ENotFound, "MarkRead of an unknown message")
		err = f.s.MarkRead(f.ctx, room.RoomID, carol.UserID, b1.MessageID)
		wantCode(t, err, carillon.ENotFound, "MarkRead by a non-member")
		checkUnread("after refused MarkReads", alice, room, 1)

		must(t, f.s.MarkRead(f.ctx, room.RoomID, alice.UserID, w1.MessageID), "MarkRead of the newest message")
		checkUnread("all read", alice, room, 0)
		b3 := f.userMessage(room, bob, "b3")
		f.post(b3)
		checkUnread("after a new message", alice, room, 1)
		checkUnread("after own message", bob, room, 2)
	})
}

func testMemberships(t *testing.T, open Opener) {
	t.Run("AddMember", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		carol := f.user("Carol Zed")
		gone := f.user("Gone Away")
		_, err := f.s.UpdateUser(f.ctx, gone.UserID, carillon.UserUpdate{Active: ptr(false)})
		must(t, err, "deactivate")
		room := f.room(alice, "Ops")

		m := &carillon.Membership{RoomID: room.RoomID, UserID: bob.UserID, Role: carillon.RoleMember, CreatedAt: f.tick()}
		must(t, f.s.AddMember(f.ctx, m, alice.UserID), "AddMember")
		got, err := f.s.Membership(f.ctx, room.RoomID, bob.UserID)
		must(t, err, "Membership")
		checkMembership(t, "new membership", got, room.RoomID, bob, carillon.RoleMember)
		if !sameTime(got.CreatedAt, m.CreatedAt) {
			t.Errorf("membership CreatedAt = %v, want %v", got.CreatedAt, m.CreatedAt)
		}
		if _, ok := f.rooms(bob)[room.RoomID]; !ok {
			t.Errorf("RoomsOfUser of a new member lacks the room")
		}

		refusals := []struct {
			name   string
			userID string
			role   string
			code   string
		}{
			{"already a member", bob.UserID, carillon.RoleMember, carillon.EConflict},
			{"already a member, other role", bob.UserID, carillon.RoleAdministrator, carillon.EConflict},
			{"the creator", alice.UserID, carillon.RoleMember, carillon.EConflict},
			{"unknown user", uuid.NewString(), carillon.RoleMember, carillon.ENotFound},
			{"deactivated user", gone.UserID, carillon.RoleMember, carillon.ENotFound},
		}
		for _, r := range refusals {
			m := &carillon.Membership{RoomID: room.RoomID, UserID: r.userID, Role: r.role, CreatedAt: f.tick()}
			wantCode(t, f.s.AddMember(f.ctx, m, alice.UserID), r.code, "AddMember of "+r.name)
		}
		got, err = f.s.Membership(f.ctx, room.RoomID, bob.UserID)
		must(t, err, "Membership")
		if got.Role != carillon.RoleMember {
			t.Errorf("a refused AddMember changed the role to %s", got.Role)
		}
		n, err := f.s.CountMembers(f.ctx, room.RoomID)
		must(t, err, "CountMembers")
		if n != 2 {
			t.Errorf("CountMembers = %d, want 2", n)
		}
		_, err = f.s.Membership(f.ctx, room.RoomID, carol.UserID)
		wantCode(t, err, carillon.ENotFound, "Membership of a non-member")
		_, err = f.s.Membership(f.ctx, uuid.NewString(), alice.UserID)
		wantCode(t, err, carillon.ENotFound, "Membership in an unknown room")
	})

	t.Run("MembersOrderedByFullName", func(t *testing.T) {
		f := setup(t, open)
		carol := f.user("Carol Zed")
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		dave := f.user("Dave Outside")
		room := f.room(carol, "Ops")
		elsewhere := f.room(dave, "Elsewhere")
		f.join(room, bob, carillon.RoleMember)
		f.join(room, alice, carillon.RoleAdministrator)
		f.join(elsewhere, alice, carillon.RoleMember)

		members, err := f.s.Members(f.ctx, room.RoomID)
		must(t, err, "Members")
		want := []*carillon.User{alice, bob, carol}
		roles := []string{carillon.RoleAdministrator, carillon.RoleMember, carillon.RoleAdministrator}
		if len(members) != len(want) {
			t.Fatalf("Members = %d entries, want %d", len(members), len(want))
		}
		for i := range want {
			checkMembership(t, "Members["+want[i].FullName+"]", &members[i], room.RoomID, want[i], roles[i])
		}
		n, err := f.s.CountMembers(f.ctx, room.RoomID)
		must(t, err, "CountMembers")
		if n != 3 {
			t.Errorf("CountMembers = %d, want 3", n)
		}
		n, err = f.s.CountMembers(f.ctx, elsewhere.RoomID)
		must(t, err, "CountMembers")
		if n != 2 {
			t.Errorf("CountMembers of the other room = %d, want 2", n)
		}
	})

	t.Run("SetRole", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		carol := f.user("Carol Zed")
		room := f.room(alice, "Ops")
		f.join(room, bob, carillon.RoleMember)

		steps := []struct {
			name string
			user *carillon.User
			role string
			code string // "" for success
		}{
			{"demote the only Administrator", alice, carillon.RoleMember, carillon.EConflict},
			{"promote a member", bob, carillon.RoleAdministrator, ""},
			{"demote one of two Administrators", alice, carillon.RoleMember, ""},
			{"demote the last Administrator", bob, carillon.RoleMember, carillon.EConflict},
			{"keep a role", bob, carillon.RoleAdministrator, ""},
			{"non-member", carol, carillon.RoleAdministrator, carillon.ENotFound},
		}
		roles := map[string]string{alice.UserID: carillon.RoleAdministrator, bob.UserID: carillon.RoleMember}
		for _, s := range steps {
			m, err := f.s.SetRole(f.ctx, room.RoomID, s.user.UserID, s.role, alice.UserID, f.tick())
			if s.code != "" {
				wantCode(t, err, s.code, "SetRole: "+s.name)
			} else if err != nil {
				t.Errorf("SetRole: %s: %v", s.name, err)
			} else {
				roles[s.user.UserID] = s.role
				checkMembership(t, "SetRole result: "+s.name, m, room.RoomID, s.user, s.role)
			}
			for _, u := range []*carillon.User{alice, bob} {
				got, err := f.s.Membership(f.ctx, room.RoomID, u.UserID)
				must(t, err, "Membership")
				if got.Role != roles[u.UserID] {
					t.Errorf("after %s: %s is %s, want %s", s.name, u.FullName, got.Role, roles[u.UserID])
				}
			}
		}
	})

	t.Run("RemoveMember", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		carol := f.user("Carol Zed")
		dave := f.user("Dave Newer")
		room := f.room(alice, "Ops")
		f.join(room, bob, carillon.RoleMember)
		f.join(room, carol, carillon.RoleAdministrator)

		steps := []struct {
			name  string
			user  *carillon.User
			code  string // "" for success
			count int    // members afterwards
		}{
			{"a member", bob, "", 2},
			{"a former member", bob, carillon.ENotFound, 2},
			{"a user never in the room", dave, carillon.ENotFound, 2},
			{"one of two Administrators", alice, "", 1},
			{"the last Administrator, alone", carol, carillon.EConflict, 1},
		}
		for _, s := range steps {
			err := f.s.RemoveMember(f.ctx, room.RoomID, s.user.UserID, s.user.UserID, f.tick())
			if s.code != "" {
				wantCode(t, err, s.code, "RemoveMember of "+s.name)
			} else {
				must(t, err, "RemoveMember of "+s.name)
				_, err = f.s.Membership(f.ctx, room.RoomID, s.user.UserID)
				wantCode(t, err, carillon.ENotFound, "Membership after RemoveMember")
				if _, ok := f.rooms(s.user)[room.RoomID]; ok {
					t.Errorf("RoomsOfUser of a removed member lists the room")
				}
			}
			n, err := f.s.CountMembers(f.ctx, room.RoomID)
			must(t, err, "CountMembers")
			if n != s.count {
				t.Errorf("after removing %s: CountMembers = %d, want %d", s.name, n, s.count)
			}
		}

		// A plain member does not make the last Administrator removable.
		f.join(room, bob, carillon.RoleMember)
		err := f.s.RemoveMember(f.ctx, room.RoomID, carol.UserID, carol.UserID, f.tick())
		wantCode(t, err, carillon.EConflict, "RemoveMember of the last Administrator with a plain member left")
		// A removed member may come back.
		f.join(room, alice, carillon.RoleMember)
		members, err := f.s.Members(f.ctx, room.RoomID)
		must(t, err, "Members")
		if len(members) != 3 {
			t.Errorf("Members after re-adding = %+v, want 3", members)
		}
	})

	// Two Administrators stepping down (or leaving) at the same time: one
	// of them must stay, whatever the interleaving.
	concurrent := []struct {
		name string
		op   func(f *fixture, room *carillon.Room, u *carillon.User) error
	}{
		{"ConcurrentDemotions", func(f *fixture, room *carillon.Room, u *carillon.User) error {
			_, err := f.s.SetRole(f.ctx, room.RoomID, u.UserID, carillon.RoleMember, u.UserID, t0)
			return err
		}},
		{"ConcurrentRemovals", func(f *fixture, room *carillon.Room, u *carillon.User) error {
			return f.s.RemoveMember(f.ctx, room.RoomID, u.UserID, u.UserID, t0)
		}},
	}
	for _, c := range concurrent {
		t.Run(c.name, func(t *testing.T) {
			f := setup(t, open)
			admins := []*carillon.User{f.user("Alice Young"), f.user("Bob Xu"), f.user("Carol Zed")}
			room := f.room(admins[0], "Ops")
			for _, u := range admins[1:] {
				f.join(room, u, carillon.RoleAdministrator)
			}
			errs := make([]error, len(admins))
			var wg sync.WaitGroup
			for i, u := range admins {
				wg.Go(func() { errs[i] = c.op(f, room, u) })
			}
			wg.Wait()
			ok := 0
			for i, err := range errs {
				if err == nil {
					ok++
				} else {
					wantCode(t, err, carillon.EConflict, admins[i].FullName)
				}
			}
			if ok != len(admins)-1 {
				t.Errorf("%d of %d succeeded, want %d", ok, len(admins), len(admins)-1)
			}
			members, err := f.s.Members(f.ctx, room.RoomID)
			must(t, err, "Members")
			left := 0
			for _, m := range members {
				if m.Role == carillon.RoleAdministrator {
					left++
				}
			}
			if left != 1 {
				t.Errorf("%d Administrators left, want 1", left)
			}
		})
	}
}

func testAudit(t *testing.T, open Opener) {
	t.Run("ActionsAreRecorded", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		room := f.room(alice, "Ops")
		other := f.room(bob, "Other")
		// Whether CreateRoom itself writes an event is left to the backend.
		before := len(f.auditEvents(room.RoomID))

		type want struct {
			action, actor, target string
			at                    time.Time
		}
		var wants []want
		expect := func(action, actor, target string, at time.Time) {
			wants = append(wants, want{action, actor, target, at})
		}

		// The store takes every time from its arguments: AddMember's from
		// the membership, CreateWebhook's from the webhook.
		m := &carillon.Membership{RoomID: room.RoomID, UserID: bob.UserID, Role: carillon.RoleMember, CreatedAt: f.tick()}
		must(t, f.s.AddMember(f.ctx, m, alice.UserID), "AddMember")
		expect(carillon.AuditMemberAdded, alice.UserID, bob.UserID, m.CreatedAt)

		now := f.tick()
		_, err := f.s.SetRole(f.ctx, room.RoomID, bob.UserID, carillon.RoleAdministrator, alice.UserID, now)
		must(t, err, "SetRole")
		expect(carillon.AuditRoleChanged, alice.UserID, bob.UserID, now)

		now = f.tick()
		must(t, f.s.RemoveMember(f.ctx, room.RoomID, bob.UserID, bob.UserID, now), "RemoveMember (leave)")
		expect(carillon.AuditMemberRemoved, bob.UserID, bob.UserID, now)

		hook := f.newWebhook(room, "CI")
		must(t, f.s.CreateWebhook(f.ctx, hook, alice.UserID), "CreateWebhook")
		expect(carillon.AuditWebhookCreated, alice.UserID, hook.WebhookID, hook.CreatedAt)

		now = f.tick()
		_, err = f.s.RenameWebhook(f.ctx, hook.WebhookID, "Deploys", alice.UserID, now)
		must(t, err, "RenameWebhook")
		expect(carillon.AuditWebhookRenamed, alice.UserID, hook.WebhookID, now)

		now = f.tick()
		_, err = f.s.RegenerateWebhook(f.ctx, hook.WebhookID, randomHash(), randomBytes(60), alice.UserID, now)
		must(t, err, "RegenerateWebhook")
		expect(carillon.AuditWebhookRegenerated, alice.UserID, hook.WebhookID, now)

		now = f.tick()
		must(t, f.s.DeleteWebhook(f.ctx, hook.WebhookID, alice.UserID, now), "DeleteWebhook")
		expect(carillon.AuditWebhookDeleted, alice.UserID, hook.WebhookID, now)

		// Refused actions leave no trace.
		wantCode(t, f.s.RemoveMember(f.ctx, room.RoomID, alice.UserID, alice.UserID, f.tick()), carillon.EConflict, "RemoveMember of the last Administrator")
		_, err = f.s.SetRole(f.ctx, room.RoomID, alice.UserID, carillon.RoleMember, alice.UserID, f.tick())
		wantCode(t, err, carillon.EConflict, "SetRole demoting the last Administrator")
		wantCode(t, f.s.DeleteWebhook(f.ctx, hook.WebhookID, alice.UserID, f.tick()), carillon.ENotFound, "DeleteWebhook twice")

		// Actions in another room stay in its log.
		f.join(other, alice, carillon.RoleMember)
		f.webhook(other, "Elsewhere")

		now = f.tick()
		must(t, f.s.DeleteRoom(f.ctx, room.RoomID, alice.UserID, now), "DeleteRoom")
		expect(carillon.AuditRoomDeleted, alice.UserID, room.RoomID, now)

		events := f.auditEvents(room.RoomID)
		if len(events) != before+len(wants) {
			t.Fatalf("AuditEvents = %d events, want %d:\n%+v", len(events), before+len(wants), events)
		}
		seen := map[string]bool{}
		for i, w := range reversed(wants) {
			checkAudit(t, w.action, events[i], room.RoomID, w.action, w.actor, w.target, w.at)
			// The API hands the id out as NextToken and refuses any that
			// is not a UUID.
			if !carillon.ValidID(events[i].AuditEventID) || seen[events[i].AuditEventID] {
				t.Errorf("AuditEventID %q is not a fresh lowercase UUIDv4", events[i].AuditEventID)
			}
			seen[events[i].AuditEventID] = true
		}
		for _, e := range f.auditEvents(other.RoomID) {
			if e.RoomID != other.RoomID {
				t.Errorf("the other room's log holds %+v", now)
			}
		}
	})

	t.Run("Paging", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		room := f.room(alice, "Ops")
		other := f.room(alice, "Other")
		hook := f.webhook(room, "CI")
		f.webhook(other, "CI")
		for i := 0; i < 6; i++ {
			_, err := f.s.RenameWebhook(f.ctx, hook.WebhookID, "CI "+string(rune('a'+i)), alice.UserID, f.tick())
			must(t, err, "RenameWebhook")
		}
		all := f.auditEvents(room.RoomID)
		if len(all) < 7 {
			t.Fatalf("AuditEvents = %d events, want at least 7", len(all))
		}
		for i := 1; i < len(all); i++ {
			if all[i].CreatedAt.After(all[i-1].CreatedAt) {
				t.Errorf("AuditEvents not newest first at %d: %v after %v", i, all[i].CreatedAt, all[i-1].CreatedAt)
			}
		}

		for _, limit := range []int{1, 2, 3, len(all) - 1, len(all), len(all) + 5} {
			// Walk the log as the API does: ask for limit, get up to
			// limit+1 (the extra one says a next page exists), continue
			// after the last event shown.
			var walked []carillon.AuditEvent
			after := ""
			for pages := 0; ; pages++ {
				if pages > len(all) {
					t.Fatalf("limit %d: paging does not end", limit)
				}
				page, err := f.s.AuditEvents(f.ctx, room.RoomID, after, limit)
				must(t, err, "AuditEvents")
				if len(page) > limit+1 {
					t.Fatalf("limit %d: page of %d events", limit, len(page))
				}
				if len(page) <= limit {
					walked = append(walked, page...)
					break
				}
				walked = append(walked, page[:limit]...)
				after = page[limit-1].AuditEventID
			}
			if len(walked) != len(all) {
				t.Errorf("limit %d: walked %d events, want %d", limit, len(walked), len(all))
				continue
			}
			for i := range all {
				if walked[i].AuditEventID != all[i].AuditEventID {
					t.Errorf("limit %d: event %d is %s, want %s", limit, i, walked[i].AuditEventID, all[i].AuditEventID)
				}
			}
		}

		// after the oldest event: nothing more.
		page, err := f.s.AuditEvents(f.ctx, room.RoomID, all[len(all)-1].AuditEventID, 10)
		must(t, err, "AuditEvents after the oldest")
		if len(page) != 0 {
			t.Errorf("AuditEvents after the oldest = %+v", page)
		}
		// A NextToken that is no event of this room is the client's error.
		_, err = f.s.AuditEvents(f.ctx, room.RoomID, uuid.NewString(), 10)
		wantCode(t, err, carillon.EBadRequest, "AuditEvents after an unknown id")
		otherEvents := f.auditEvents(other.RoomID)
		if len(otherEvents) == 0 {
			t.Fatal("no audit event in the other room")
		}
		_, err = f.s.AuditEvents(f.ctx, room.RoomID, otherEvents[0].AuditEventID, 10)
		wantCode(t, err, carillon.EBadRequest, "AuditEvents after an event of another room")
	})
}

func checkRoom(t *testing.T, what string, got, want *carillon.Room) {
	t.Helper()
	if got.RoomID != want.RoomID || got.Name != want.Name || got.CreatedBy != want.CreatedBy || !sameTime(got.CreatedAt, want.CreatedAt) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, *got, *want)
	}
}

func checkMembership(t *testing.T, what string, got *carillon.Membership, roomID string, u *carillon.User, role string) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil membership", what)
		return
	}
	if got.RoomID != roomID || got.UserID != u.UserID || got.Role != role {
		t.Errorf("%s: room %s user %s role %s, want room %s user %s role %s",
			what, got.RoomID, got.UserID, got.Role, roomID, u.UserID, role)
	}
	// The roster shows the user's details from the membership.
	if got.User.UserID != u.UserID || got.User.Email != u.Email || got.User.Alias != u.Alias || got.User.FullName != u.FullName {
		t.Errorf("%s: User = %+v, want %+v", what, got.User, *u)
	}
}

func checkAudit(t *testing.T, what string, got carillon.AuditEvent, roomID, action, actor, target string, at time.Time) {
	t.Helper()
	if got.RoomID != roomID || got.Action != action || got.ActorID != actor || got.TargetID != target || !sameTime(got.CreatedAt, at) {
		t.Errorf("%s: got %+v\nwant room %s action %s actor %s target %s at %v", what, got, roomID, action, actor, target, at)
	}
}
