package server_test

import (
	"testing"

	"github.com/carillon-chat/carillon/apptest"
)

// TestFailedLoginsAreLimited: after 10 failed logins for an account, more
// attempts are refused with 429 and Retry-After, even with the right
// password; successful logins do not spend the budget.
func TestFailedLoginsAreLimited(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	u := in.CreateUser(t, "correct horse battery")
	login := func(pw string) *apptest.Response {
		return in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": u.Email, "Password": pw})
	}
	for i := 0; i < 12; i++ {
		apptest.Must(t, login("correct horse battery"), 200)
	}
	for i := 0; i < 10; i++ {
		apptest.Must(t, login("wrong password"), 401)
	}
	r := login("correct horse battery")
	if r.Status != 429 || r.Code() != "Throttled" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("11th attempt: %d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
}
