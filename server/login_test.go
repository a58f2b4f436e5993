package server_test

import (
	"testing"
	"time"

	"github.com/carillon-chat/carillon/apptest"
)

// TestFailedLoginsAreLimited: an account gets 10 failed logins (refilling
// at 10 a minute); beyond them attempts are refused with 429 and
// Retry-After, even with the right password; successful logins do not
// spend the budget.
func TestFailedLoginsAreLimited(t *testing.T) {
	in := apptest.Start(t, apptest.Options{})
	u := in.CreateUser(t, "correct horse battery")
	login := func(pw string) *apptest.Response {
		return in.Do(t, "POST", "/api/v1/sessions", "", map[string]string{"Email": u.Email, "Password": pw})
	}
	for i := 0; i < 12; i++ {
		apptest.Must(t, login("correct horse battery"), 200)
	}
	// Password checks are slow on purpose (bcrypt), so the budget refills
	// while this runs: count what the elapsed time allows.
	start := time.Now()
	failures := 0
	for {
		r := login("wrong password")
		if r.Status == 429 {
			break
		}
		apptest.Must(t, r, 401)
		failures++
		if allowed := 10 + int(time.Since(start)/(6*time.Second)) + 1; failures > allowed {
			t.Fatalf("%d failed logins accepted in %v, more than the %d allowed", failures, time.Since(start), allowed)
		}
	}
	if failures < 10 {
		t.Fatalf("refused after %d failed logins, want 10", failures)
	}
	r := login("correct horse battery")
	if r.Status != 429 || r.Code() != "Throttled" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("right password once the budget is spent: %d %s (Retry-After %q)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
}
