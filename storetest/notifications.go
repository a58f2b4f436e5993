package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
)

// mention returns a notification (not stored) of m for u.
func mention(m *carillon.Message, u *carillon.User, reason string) *carillon.Notification {
	return &carillon.Notification{
		NotificationID: uuid.NewString(),
		UserID:         u.UserID,
		MessageID:      m.MessageID,
		RoomID:         m.RoomID,
		Reason:         reason,
		CreatedAt:      m.CreatedAt,
	}
}

// postWithNotes commits m with notes as one unconditional entry.
func (f *fixture) postWithNotes(m *carillon.Message, notes ...*carillon.Notification) {
	f.t.Helper()
	a := &carillon.Append{Message: m, Notifications: notes}
	f.appendBatch(a)
	must(f.t, a.Err, "entry of AppendMessages")
}

func (f *fixture) notifications(u *carillon.User, unreadOnly bool) []carillon.Notification {
	f.t.Helper()
	notes, err := f.s.Notifications(f.ctx, u.UserID, unreadOnly, 1000)
	must(f.t, err, "Notifications")
	return notes
}

func noteIDs(notes []carillon.Notification) []string {
	out := make([]string, len(notes))
	for i, n := range notes {
		out[i] = n.NotificationID
	}
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func testNotifications(t *testing.T, open Opener) {
	t.Run("StoredWithMessage", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		carol := f.user("Carol Zed")
		dave := f.user("Dave Outside")
		room := f.room(bob, "Ops")
		f.join(room, alice, carillon.RoleMember)
		f.join(room, carol, carillon.RoleMember)

		m := f.userMessage(room, bob, "@alice.young @All")
		direct, all := mention(m, alice, carillon.ReasonDirect), mention(m, carol, carillon.ReasonAll)
		f.postWithNotes(m, direct, all)
		for _, n := range []*carillon.Notification{direct, all} {
			if n.MessageSeq != m.Seq {
				t.Errorf("MessageSeq of a stored notification = %d, want the message's Seq %d", n.MessageSeq, m.Seq)
			}
		}
		got := f.notifications(alice, false)
		if len(got) != 1 {
			t.Fatalf("Notifications(alice) = %+v, want one", got)
		}
		checkNotification(t, "alice's notification", &got[0], direct)
		if got := f.notifications(carol, false); len(got) != 1 || got[0].Reason != carillon.ReasonAll {
			t.Errorf("Notifications(carol) = %+v, want her All", got)
		}
		if got := f.notifications(bob, false); len(got) != 0 {
			t.Errorf("Notifications(bob) = %+v, want none", got)
		}

		// The notifications of a refused entry are not stored.
		refused := f.userMessage(room, dave, "@alice.young")
		a := &carillon.Append{Message: refused, RequireMember: true, Notifications: []*carillon.Notification{mention(refused, alice, carillon.ReasonDirect)}}
		f.appendBatch(a)
		wantCode(t, a.Err, carillon.ENotFound, "entry of a non-member")
		if got := f.notifications(alice, false); len(got) != 1 {
			t.Errorf("a refused entry stored its notification: %+v", got)
		}
	})

	t.Run("ListAndMarkRead", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		room := f.room(bob, "Ops")
		other := f.room(bob, "Other")
		f.join(room, alice, carillon.RoleMember)
		f.join(other, alice, carillon.RoleMember)

		var mine []*carillon.Notification // oldest first
		for i := 0; i < 5; i++ {
			r := room
			if i%2 == 1 {
				r = other
			}
			m := f.userMessage(r, bob, fmt.Sprint(i))
			n := mention(m, alice, carillon.ReasonDirect)
			f.postWithNotes(m, n)
			mine = append(mine, n)
		}
		m := f.userMessage(room, alice, "@bob.xu")
		bobs := mention(m, bob, carillon.ReasonDirect)
		f.postWithNotes(m, bobs)

		newestFirst := func(notes ...*carillon.Notification) []string {
			var out []string
			for i := len(notes) - 1; i >= 0; i-- {
				out = append(out, notes[i].NotificationID)
			}
			return out
		}
		got, err := f.s.Notifications(f.ctx, alice.UserID, false, 3)
		must(t, err, "Notifications")
		if want := newestFirst(mine[2:]...); !slices.Equal(noteIDs(got), want) {
			t.Errorf("Notifications limit 3 = %v, want the newest three %v", noteIDs(got), want)
		}
		for i := range got {
			checkNotification(t, "listed notification", &got[i], mine[4-i])
		}

		// Ids of another user's notifications, or of none, are ignored.
		must(t, f.s.MarkNotificationsRead(f.ctx, alice.UserID,
			[]string{mine[1].NotificationID, mine[3].NotificationID, bobs.NotificationID, uuid.NewString()}, false), "MarkNotificationsRead")
		if got, want := noteIDs(f.notifications(alice, true)), newestFirst(mine[0], mine[2], mine[4]); !slices.Equal(got, want) {
			t.Errorf("unread after marking two read = %v, want %v", got, want)
		}
		all := f.notifications(alice, false)
		if got, want := noteIDs(all), newestFirst(mine...); !slices.Equal(got, want) {
			t.Errorf("all after marking two read = %v, want %v", got, want)
		}
		for _, n := range all {
			wantRead := n.NotificationID == mine[1].NotificationID || n.NotificationID == mine[3].NotificationID
			if n.Read != wantRead {
				t.Errorf("notification %s Read = %v, want %v", n.NotificationID, n.Read, wantRead)
			}
		}
		if got := f.notifications(bob, true); len(got) != 1 {
			t.Errorf("bob's notification was marked read by alice")
		}

		must(t, f.s.MarkNotificationsRead(f.ctx, alice.UserID, []string{}, false), "MarkNotificationsRead of nothing")
		if got := f.notifications(alice, true); len(got) != 3 {
			t.Errorf("MarkNotificationsRead of nothing changed the unread ones: %v", noteIDs(got))
		}
		must(t, f.s.MarkNotificationsRead(f.ctx, alice.UserID, nil, true), "MarkNotificationsRead all")
		if got := f.notifications(alice, true); len(got) != 0 {
			t.Errorf("unread after marking all read = %v", noteIDs(got))
		}
		if got := f.notifications(bob, true); len(got) != 1 {
			t.Errorf("marking all of alice's read marked bob's too")
		}
	})

	t.Run("MentionCount", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		room := f.room(bob, "Ops")
		other := f.room(bob, "Other")
		f.join(room, alice, carillon.RoleMember)
		f.join(other, alice, carillon.RoleMember)

		var msgs []*carillon.Message
		var notes []*carillon.Notification
		for i := 0; i < 3; i++ {
			m := f.userMessage(room, bob, fmt.Sprint(i))
			n := mention(m, alice, carillon.ReasonAll)
			f.postWithNotes(m, n)
			msgs, notes = append(msgs, m), append(notes, n)
		}
		f.post(f.userMessage(room, bob, "no mention"))
		m := f.userMessage(other, bob, "elsewhere")
		f.postWithNotes(m, mention(m, alice, carillon.ReasonDirect))

		check := func(what string, wantRoom, wantOther int) {
			t.Helper()
			rooms := f.rooms(alice)
			if got := rooms[room.RoomID].MentionCount; got != wantRoom {
				t.Errorf("%s: MentionCount = %d, want %d", what, got, wantRoom)
			}
			if got := rooms[other.RoomID].MentionCount; got != wantOther {
				t.Errorf("%s: MentionCount of the other room = %d, want %d", what, got, wantOther)
			}
			if got := f.rooms(bob)[room.RoomID].MentionCount; got != 0 {
				t.Errorf("%s: MentionCount of a user never mentioned = %d", what, got)
			}
		}
		check("initially", 3, 1)
		must(t, f.s.MarkNotificationsRead(f.ctx, alice.UserID, []string{notes[2].NotificationID}, false), "MarkNotificationsRead")
		check("after reading a notification", 2, 1)
		// Having read the room up to a message, its mentions up to there
		// are read too.
		must(t, f.s.MarkRead(f.ctx, room.RoomID, alice.UserID, msgs[0].MessageID), "MarkRead")
		check("after reading the room up to the first mention", 1, 1)
		if got := f.notifications(alice, true); len(got) != 2 || slices.Contains(noteIDs(got), notes[0].NotificationID) {
			t.Errorf("unread notifications after MarkRead = %v", noteIDs(got))
		}
	})

	t.Run("RoomIDsOfUser", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		carol := f.user("Carol Zed")
		dave := f.user("Dave Alone")
		erin := f.user("Erin Gone")
		frank := f.user("Frank Left")
		r := f.room(alice, "R")
		s := f.room(alice, "S")
		f.room(dave, "T")
		doomed := f.room(alice, "Doomed")
		f.join(r, bob, carillon.RoleMember)
		f.join(s, bob, carillon.RoleMember)
		f.join(s, carol, carillon.RoleMember)
		f.join(doomed, erin, carillon.RoleMember)
		f.join(r, frank, carillon.RoleMember)
		must(t, f.s.RemoveMember(f.ctx, r.RoomID, frank.UserID, frank.UserID, f.tick()), "RemoveMember")
		must(t, f.s.DeleteRoom(f.ctx, doomed.RoomID, alice.UserID, f.tick()), "DeleteRoom")

		ids, err := f.s.RoomIDsOfUser(f.ctx, alice.UserID)
		must(t, err, "RoomIDsOfUser")
		if got, want := sorted(ids), sorted([]string{r.RoomID, s.RoomID}); !slices.Equal(got, want) {
			t.Errorf("RoomIDsOfUser = %v, want the live rooms %v", got, want)
		}
		ids, err = f.s.RoomIDsOfUser(f.ctx, frank.UserID)
		must(t, err, "RoomIDsOfUser")
		if len(ids) != 0 {
			t.Errorf("RoomIDsOfUser of a user who left = %v", ids)
		}
	})

	t.Run("NewestSeq", func(t *testing.T) {
		f := setup(t, open)
		seq, err := f.s.NewestSeq(f.ctx)
		must(t, err, "NewestSeq")
		if seq != 0 {
			t.Errorf("NewestSeq of an empty store = %d", seq)
		}
		alice := f.user("Alice Young")
		a, b := f.room(alice, "A"), f.room(alice, "B")
		m1, m2 := f.userMessage(a, alice, "1"), f.userMessage(b, alice, "2")
		f.post(m1, m2)
		seq, err = f.s.NewestSeq(f.ctx)
		must(t, err, "NewestSeq")
		if seq != m2.Seq {
			t.Errorf("NewestSeq = %d, want %d", seq, m2.Seq)
		}
	})

	t.Run("Replay", func(t *testing.T) {
		f := setup(t, open)
		alice := f.user("Alice Young")
		bob := f.user("Bob Xu")
		room := f.room(bob, "Ops")
		notMine := f.room(bob, "Not mine")
		doomed := f.room(bob, "Doomed")
		f.join(room, alice, carillon.RoleMember)
		f.join(doomed, alice, carillon.RoleMember)

		// want is what alice's stream must replay from the start, in
		// commit order: each message, then its notification.
		type item struct {
			msg  *carillon.Message
			note *carillon.Notification
		}
		var want []item
		// post stores a message of bob in r, with a notification for
		// bob himself (never alice's to replay) and, when mentionAlice,
		// one for alice.
		post := func(r *carillon.Room, mentionAlice bool) {
			m := f.userMessage(r, bob, "m")
			notes := []*carillon.Notification{mention(m, bob, carillon.ReasonAll)}
			if mentionAlice {
				notes = append(notes, mention(m, alice, carillon.ReasonDirect))
			}
			f.postWithNotes(m, notes...)
			if r == room {
				want = append(want, item{msg: m})
				if mentionAlice {
					want = append(want, item{note: notes[1]})
				}
			}
		}
		post(room, true)
		post(notMine, false)
		post(room, false)
		post(doomed, false) // the room is deleted below
		post(room, true)
		post(room, true)
		post(notMine, false)
		must(t, f.s.DeleteRoom(f.ctx, doomed.RoomID, bob.UserID, f.tick()), "DeleteRoom")

		describe := func(items []carillon.ReplayItem) []string {
			var out []string
			for _, it := range items {
				switch {
				case it.Message != nil && it.Notification == nil:
					out = append(out, "m:"+it.Message.MessageID)
				case it.Notification != nil && it.Message == nil:
					out = append(out, "n:"+it.Notification.NotificationID)
				default:
					out = append(out, "bad item")
				}
			}
			return out
		}
		var wantDesc []string
		for _, it := range want {
			if it.msg != nil {
				wantDesc = append(wantDesc, "m:"+it.msg.MessageID)
			} else {
				wantDesc = append(wantDesc, "n:"+it.note.NotificationID)
			}
		}

		full, err := f.s.Replay(f.ctx, alice.UserID, carillon.EventPosition{}, 100)
		must(t, err, "Replay")
		if !slices.Equal(describe(full), wantDesc) {
			t.Fatalf("Replay from the start:\n got %v\nwant %v", describe(full), wantDesc)
		}
		for i, it := range full {
			if it.Message != nil {
				sent := *want[i].msg
				checkMessage(t, "replayed message", it.Message, &sent)
			} else {
				checkNotification(t, "replayed notification", it.Notification, want[i].note)
			}
		}

		// Positions: after a message, its notification is still due; after
		// the notification, the next message is.
		first := want[0].msg
		got, err := f.s.Replay(f.ctx, alice.UserID, carillon.EventPosition{Seq: first.Seq}, 100)
		must(t, err, "Replay")
		if !slices.Equal(describe(got), wantDesc[1:]) {
			t.Errorf("Replay after the first message:\n got %v\nwant %v", describe(got), wantDesc[1:])
		}
		got, err = f.s.Replay(f.ctx, alice.UserID, carillon.EventPosition{Seq: first.Seq, Notification: true}, 100)
		must(t, err, "Replay")
		if !slices.Equal(describe(got), wantDesc[2:]) {
			t.Errorf("Replay after the first notification:\n got %v\nwant %v", describe(got), wantDesc[2:])
		}
		last := want[len(want)-1].note
		got, err = f.s.Replay(f.ctx, alice.UserID, carillon.EventPosition{Seq: last.MessageSeq, Notification: true}, 100)
		must(t, err, "Replay")
		if len(got) != 0 {
			t.Errorf("Replay after everything = %v", describe(got))
		}

		// Paging as a stream does, continuing from the last item of each
		// page: every page fits the limit, and the pages add up to the
		// whole, nothing skipped or repeated.
		for limit := 1; limit <= 4; limit++ {
			var walked []string
			pos := carillon.EventPosition{}
			for pages := 0; ; pages++ {
				if pages > len(wantDesc)+1 {
					t.Fatalf("limit %d: paging does not end", limit)
				}
				page, err := f.s.Replay(f.ctx, alice.UserID, pos, limit)
				must(t, err, "Replay")
				if len(page) > limit {
					t.Fatalf("limit %d: page of %d items", limit, len(page))
				}
				if len(page) == 0 {
					break
				}
				walked = append(walked, describe(page)...)
				if it := page[len(page)-1]; it.Message != nil {
					pos = carillon.EventPosition{Seq: it.Message.Seq}
				} else {
					pos = carillon.EventPosition{Seq: it.Notification.MessageSeq, Notification: true}
				}
			}
			if !slices.Equal(walked, wantDesc) {
				t.Errorf("limit %d: pages add up to\n %v\nwant %v", limit, walked, wantDesc)
			}
		}
	})

	t.Run("ReplayEveryone", func(t *testing.T) { testReplayEveryone(t, open) })
}

// testReplayEveryone checks Replay for every user (userID ""): the
// messages of every room not deleted, each followed by all of its
// notifications whatever the limit, in commit order.
func testReplayEveryone(t *testing.T, open Opener) {
	f := setup(t, open)
	alice := f.user("Alice Young")
	bob := f.user("Bob Xu")
	room := f.room(bob, "Ops")
	other := f.room(alice, "Other")
	doomed := f.room(bob, "Doomed")
	f.join(room, alice, carillon.RoleMember)
	// want holds, per message in commit order, its id and its
	// notifications' ids (in no given order).
	type group struct {
		msg   string
		notes []string
	}
	var want []group
	post := func(r *carillon.Room, sender *carillon.User, notify ...*carillon.User) {
		m := f.userMessage(r, sender, "m")
		var notes []*carillon.Notification
		g := group{msg: m.MessageID}
		for _, u := range notify {
			n := mention(m, u, carillon.ReasonAll)
			notes = append(notes, n)
			g.notes = append(g.notes, n.NotificationID)
		}
		f.postWithNotes(m, notes...)
		if r != doomed {
			want = append(want, g)
		}
	}
	post(room, bob, alice)
	post(other, alice)
	post(doomed, bob)
	post(room, alice, bob)
	post(room, bob, alice, bob) // two notifications of one message
	post(other, alice, alice)
	must(t, f.s.DeleteRoom(f.ctx, doomed.RoomID, bob.UserID, f.tick()), "DeleteRoom")

	// groups cuts a replay into messages with their notifications,
	// failing on a notification that does not follow its message.
	groups := func(items []carillon.ReplayItem) []group {
		var out []group
		for _, it := range items {
			if it.Message != nil {
				out = append(out, group{msg: it.Message.MessageID})
				continue
			}
			if len(out) == 0 || out[len(out)-1].msg != it.Notification.MessageID {
				t.Fatalf("notification %s does not follow its message %s", it.Notification.NotificationID, it.Notification.MessageID)
			}
			out[len(out)-1].notes = append(out[len(out)-1].notes, it.Notification.NotificationID)
		}
		return out
	}
	same := func(got, want []group) bool {
		return slices.EqualFunc(got, want, func(a, b group) bool {
			x, y := slices.Clone(a.notes), slices.Clone(b.notes)
			slices.Sort(x)
			slices.Sort(y)
			return a.msg == b.msg && slices.Equal(x, y)
		})
	}
	for limit := 1; limit <= 7; limit++ {
		var walked []group
		pos := carillon.EventPosition{}
		for pages := 0; ; pages++ {
			if pages > len(want)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			page, err := f.s.Replay(f.ctx, "", pos, limit)
			must(t, err, "Replay")
			if len(page) == 0 {
				break
			}
			got := groups(page)
			if len(got) > limit {
				t.Fatalf("limit %d: page of %d messages", limit, len(got))
			}
			walked = append(walked, got...)
			if it := page[len(page)-1]; it.Message != nil {
				pos = carillon.EventPosition{Seq: it.Message.Seq}
			} else {
				pos = carillon.EventPosition{Seq: it.Notification.MessageSeq, Notification: true}
			}
		}
		if !same(walked, want) {
			t.Errorf("limit %d: pages add up to\n %v\nwant %v", limit, walked, want)
		}
	}
}

func checkNotification(t *testing.T, what string, got, want *carillon.Notification) {
	t.Helper()
	if got.NotificationID != want.NotificationID || got.UserID != want.UserID || got.MessageID != want.MessageID ||
		got.MessageSeq != want.MessageSeq || got.RoomID != want.RoomID || got.Reason != want.Reason ||
		got.Read != want.Read || !sameTime(got.CreatedAt, want.CreatedAt) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, *got, *want)
	}
}
