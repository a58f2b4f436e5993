package apptest

import "testing"

func TestStartPostList(t *testing.T) {
	in := Start(t, Options{})
	room := in.CreateRoom(t, in.AdminToken, "Smoke")
	hook := in.CreateWebhook(t, in.AdminToken, room, "CI")
	r := Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "hello"}), 200).JSON(t)
	if r["RoomId"] != room {
		t.Fatalf("RoomId %v, want %s", r["RoomId"], room)
	}
	msgs := in.Messages(t, in.AdminToken, room)
	if len(msgs) != 1 || msgs[0]["MessageId"] != r["MessageId"] || msgs[0]["DisplayName"] != "CI (Webhook)" {
		t.Fatalf("messages %v", msgs)
	}
}
