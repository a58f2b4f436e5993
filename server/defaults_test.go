package server_test

import (
	"testing"

	"github.com/carillon-chat/carillon/apptest"
)

func TestDefaultAliasFromAnyEmail(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	for email, want := range map[string]string{
		"Mary.Major+ci@example.com": "mary.major-ci",
		"o'brien@example.com":       "o-brien",
		"+++@example.com":           "user",
	} {
		var out struct{ User struct{ Alias string } }
		apptest.Must(t, in.Do(t, "POST", "/api/v1/users", in.AdminToken, map[string]string{"Email": email}), 201).Decode(t, &out)
		if out.User.Alias != want {
			t.Errorf("default alias of %s: %q, want %q", email, out.User.Alias, want)
		}
	}
}

func TestNextTokenBelongsToItsRoom(t *testing.T) {
	in := apptest.Start(t, apptest.Options{WebhookRate: 100, WebhookBurst: 100})
	a := in.CreateRoom(t, in.AdminToken, "A")
	b := in.CreateRoom(t, in.AdminToken, "B")
	hook := in.CreateWebhook(t, in.AdminToken, a, "CI")
	for i := 0; i < 3; i++ {
		apptest.Must(t, in.Do(t, "POST", hook.URL, "", map[string]string{"Content": "m"}), 200)
	}
	var page struct{ NextToken *string }
	apptest.Must(t, in.Do(t, "GET", "/api/v1/rooms/"+a+"/messages?MaxResults=1", in.AdminToken, nil), 200).Decode(t, &page)
	if page.NextToken == nil {
		t.Fatal("no NextToken")
	}
	r := in.Do(t, "GET", "/api/v1/rooms/"+b+"/messages?NextToken="+*page.NextToken, in.AdminToken, nil)
	if r.Status != 400 || r.Code() != "BadRequest" {
		t.Fatalf("another room's NextToken: %d %s", r.Status, r.Body)
	}
}
