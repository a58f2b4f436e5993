package server_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/carillon-chat/carillon/apptest"
)

const eventWait = 10 * time.Second

type messageEvent struct {
	MessageId, RoomId, Content, Html, DisplayName string
	Mentions                                      struct {
		All, Present bool
		MemberIds    []string
	}
}

func decodeEvent[T any](t *testing.T, ev apptest.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(ev.Data), &v); err != nil {
		t.Fatalf("%s event data %q: %v", ev.Type, ev.Data, err)
	}
	return v
}

func TestStreamDeliversWebhookPostLive(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: 100, WebhookBurst: 100})
	room := in.CreateRoom(t, in.AdminToken, "Live")
	hook := in.CreateWebhook(t, in.AdminToken, room, "Alerts")
	stream := in.OpenStream(t, in.AdminToken, "")

	ack := apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "disk full :("}), 200).JSON(t)
	ev := stream.Next(t, eventWait, "message")
	msg := decodeEvent[messageEvent](t, ev)
	if msg.MessageId != ack["MessageId"] || msg.RoomId != room || msg.DisplayName != "Alerts (Webhook)" || msg.Html != "disk full 🙁" {
		t.Fatalf("message event %+v, want the posted message", msg)
	}
	if ev.ID == "" {
		t.Fatal("message event without an id")
	}
}

func TestStreamResumesWithLastEventID(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: 100, WebhookBurst: 100})
	room := in.CreateRoom(t, in.AdminToken, "Resume")
	other := in.CreateRoom(t, in.AdminToken, "Other")
	hook := in.CreateWebhook(t, in.AdminToken, room, "CI")
	otherHook := in.CreateWebhook(t, in.AdminToken, other, "CI")
	user := in.CreateUser(t, "")
	in.AddMember(t, in.AdminToken, room, user.ID, "Member")

	post := func(url, content string) string {
		return apptest.Must(t, in.Do(t, "POST", url, "", map[string]string{"Content": content}), 200).JSON(t)["MessageId"].(string)
	}
	stream := in.OpenStream(t, user.Token, "")
	first := post(hook.URL, "first")
	ev := stream.Next(t, eventWait, "message")
	if decodeEvent[messageEvent](t, ev).MessageId != first {
		t.Fatalf("first event %s", ev.Data)
	}
	stream.Close()

	var missed []string
	for i := 0; i < 5; i++ {
		missed = append(missed, post(hook.URL, fmt.Sprintf("missed %d", i)))
		post(otherHook.URL, "not for this user") // a room the user is not in
	}

	resumed := in.OpenStream(t, user.Token, ev.ID)
	for i, want := range missed {
		got := decodeEvent[messageEvent](t, resumed.Next(t, eventWait, "message"))
		if got.MessageId != want {
			t.Fatalf("replayed event %d is %s (%q), want %s", i, got.MessageId, got.Content, want)
		}
	}
	live := post(hook.URL, "live again")
	if got := decodeEvent[messageEvent](t, resumed.Next(t, eventWait, "message")); got.MessageId != live {
		t.Fatalf("after the replay got %s (%q), want the live message %s", got.MessageId, got.Content, live)
	}
	resumed.None(t, 300*time.Millisecond, "message")
}

func TestStreamResetForUnknownPosition(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	stream := in.OpenStream(t, in.AdminToken, "999999999")
	stream.Next(t, eventWait, "reset")
}

type notificationEvent struct {
	NotificationId, MessageId, RoomId, Reason string
	Read                                      bool
}

func TestMentionsNotifyMembers(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	room := in.CreateRoom(t, in.AdminToken, "Mentions")
	sender := in.CreateUser(t, "")
	online := in.CreateUser(t, "")
	offline := in.CreateUser(t, "")
	for _, u := range []apptest.User{sender, online, offline} {
		in.AddMember(t, in.AdminToken, room, u.ID, "Member")
	}
	stream := in.OpenStream(t, online.Token, "")

	postAs := func(u apptest.User, content string) string {
		r := apptest.Must(t, in.Do(t, "POST", "/api/v1/rooms/"+room+"/messages", u.Token, map[string]string{"Content": content}), 201)
		return r.JSON(t)["MessageId"].(string)
	}
	unread := func(u apptest.User) []notificationEvent {
		var out struct{ Notifications []notificationEvent }
		apptest.Must(t, in.Do(t, "GET", "/api/v1/notifications?Unread=true", u.Token, nil), 200).Decode(t, &out)
		return out.Notifications
	}

	// @Present: only the member with an open stream.
	present := postAs(sender, "standup in 5 @Present")
	ev := stream.Next(t, eventWait, "notification")
	if n := decodeEvent[notificationEvent](t, ev); n.MessageId != present || n.Reason != "Present" || n.RoomId != room {
		t.Fatalf("notification event %s", ev.Data)
	}
	if got := unread(offline); len(got) != 0 {
		t.Fatalf("an absent member was notified of @Present: %+v", got)
	}
	if got := unread(sender); len(got) != 0 {
		t.Fatalf("the sender was notified: %+v", got)
	}

	// @All and a direct mention of the same member: one notification,
	// the most specific reason.
	all := postAs(sender, fmt.Sprintf("@All release done, thanks @%s", offline.Alias))
	got := unread(offline)
	if len(got) != 1 || got[0].MessageId != all || got[0].Reason != "Direct" {
		t.Fatalf("offline member's notifications %+v, want one Direct for %s", got, all)
	}
	onlineGot := unread(online)
	if len(onlineGot) != 2 || onlineGot[0].MessageId != all || onlineGot[0].Reason != "All" {
		t.Fatalf("online member's notifications %+v", onlineGot)
	}

	// The roster shows presence; the room list counts unread mentions.
	var roster struct {
		RoomMemberships []struct {
			Member  struct{ MemberId string }
			Present *bool
		}
	}
	apptest.Must(t, in.Do(t, "GET", "/api/v1/rooms/"+room+"/memberships", sender.Token, nil), 200).Decode(t, &roster)
	for _, m := range roster.RoomMemberships {
		want := m.Member.MemberId == online.ID
		if m.Present == nil || *m.Present != want {
			t.Fatalf("roster presence of %s: %v, want %v", m.Member.MemberId, m.Present, want)
		}
	}
	var rooms struct {
		Rooms []struct {
			RoomId                    string
			MentionCount, UnreadCount int
		}
	}
	apptest.Must(t, in.Do(t, "GET", "/api/v1/rooms", online.Token, nil), 200).Decode(t, &rooms)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].MentionCount != 2 || rooms.Rooms[0].UnreadCount != 2 {
		t.Fatalf("rooms %+v, want 2 unread mentions", rooms.Rooms)
	}

	// Marking read.
	apptest.Must(t, in.Do(t, "POST", "/api/v1/notifications/read", online.Token,
		map[string]any{"NotificationIds": []string{onlineGot[0].NotificationId}}), 204)
	if left := unread(online); len(left) != 1 || left[0].MessageId != present {
		t.Fatalf("after marking one read: %+v", left)
	}
	apptest.Must(t, in.Do(t, "POST", "/api/v1/notifications/read", online.Token, map[string]any{"All": true}), 204)
	if left := unread(online); len(left) != 0 {
		t.Fatalf("after marking all read: %+v", left)
	}
}

func TestRemovedMemberStopsReceiving(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: 100, WebhookBurst: 100})
	room := in.CreateRoom(t, in.AdminToken, "Leaving")
	hook := in.CreateWebhook(t, in.AdminToken, room, "CI")
	user := in.CreateUser(t, "")
	in.AddMember(t, in.AdminToken, room, user.ID, "Member")
	stream := in.OpenStream(t, user.Token, "")

	apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "before"}), 200)
	stream.Next(t, eventWait, "message")
	apptest.Must(t, in.Do(t, "DELETE", "/api/v1/rooms/"+room+"/memberships/"+user.ID, in.AdminToken, nil), 204)
	if ev := stream.Next(t, eventWait, "membership"); decodeEvent[struct{ Action string }](t, ev).Action != "Removed" {
		t.Fatalf("membership event %s", ev.Data)
	}
	apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "after"}), 200)
	stream.None(t, 500*time.Millisecond, "message")
}

func TestPresenceEventsReachRoomMates(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	room := in.CreateRoom(t, in.AdminToken, "Presence")
	user := in.CreateUser(t, "")
	in.AddMember(t, in.AdminToken, room, user.ID, "Member")
	watcher := in.OpenStream(t, in.AdminToken, "")

	in.OpenStream(t, user.Token, "")
	for {
		ev := watcher.Next(t, eventWait, "presence")
		p := decodeEvent[struct {
			MemberId string
			Present  bool
		}](t, ev)
		if p.MemberId == user.ID {
			if !p.Present {
				t.Fatalf("presence event %s", ev.Data)
			}
			return
		}
	}
}

func TestDeletedRoomTellsItsMembers(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	room := in.CreateRoom(t, in.AdminToken, "Doomed")
	user := in.CreateUser(t, "")
	in.AddMember(t, in.AdminToken, room, user.ID, "Member")
	stream := in.OpenStream(t, user.Token, "")
	apptest.Must(t, in.Do(t, "DELETE", "/api/v1/rooms/"+room, in.AdminToken, nil), 204)
	for {
		ev := decodeEvent[struct {
			Action         string
			RoomMembership struct {
				RoomId string
				Member struct{ MemberId string }
			}
		}](t, stream.Next(t, eventWait, "membership"))
		if ev.RoomMembership.Member.MemberId == user.ID {
			if ev.Action != "Removed" || ev.RoomMembership.RoomId != room {
				t.Fatalf("membership event %+v", ev)
			}
			return
		}
	}
}
