package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
)

func testUsers(t *testing.T, open Opener) {
	t.Run("CreateAndLookUp", func(t *testing.T) {
		f := setup(t, open)
		n, err := f.s.CountUsers(f.ctx)
		must(t, err, "CountUsers")
		if n != 0 {
			t.Fatalf("CountUsers of an empty store = %d", n)
		}

		admin := f.newUser("Ada Admin")
		admin.Email = "Ada.Admin@Example.test"
		admin.IsAdmin = true
		must(t, f.s.CreateUser(f.ctx, admin, "pw-hash-1", randomHash()), "CreateUser with password")
		plain := f.user("Bob Xu")

		n, err = f.s.CountUsers(f.ctx)
		must(t, err, "CountUsers")
		if n != 2 {
			t.Errorf("CountUsers = %d, want 2", n)
		}

		got, err := f.s.User(f.ctx, admin.UserID)
		must(t, err, "User")
		want := *admin
		want.HasPassword = true
		checkUser(t, "User(admin)", got, &want)

		// E-mail lookup ignores case and returns the e-mail as stored.
		for _, email := range []string{"Ada.Admin@Example.test", "ada.admin@example.test", "ADA.ADMIN@EXAMPLE.TEST"} {
			got, err := f.s.UserByEmail(f.ctx, email)
			must(t, err, "UserByEmail "+email)
			checkUser(t, "UserByEmail("+email+")", got, &want)
		}

		got, err = f.s.User(f.ctx, plain.UserID)
		must(t, err, "User")
		checkUser(t, "User(plain)", got, plain)

		h, err := f.s.PasswordHash(f.ctx, admin.UserID)
		must(t, err, "PasswordHash")
		if h != "pw-hash-1" {
			t.Errorf("PasswordHash = %q, want pw-hash-1", h)
		}
		h, err = f.s.PasswordHash(f.ctx, plain.UserID)
		must(t, err, "PasswordHash of a user without password")
		if h != "" {
			t.Errorf("PasswordHash of a user without password = %q, want \"\"", h)
		}

		_, err = f.s.User(f.ctx, uuid.NewString())
		wantCode(t, err, carillon.ENotFound, "User of an unknown id")
		_, err = f.s.UserByEmail(f.ctx, "nobody@example.test")
		wantCode(t, err, carillon.ENotFound, "UserByEmail of an unknown e-mail")
		_, err = f.s.PasswordHash(f.ctx, uuid.NewString())
		wantCode(t, err, carillon.ENotFound, "PasswordHash of an unknown id")
	})

	t.Run("UniqueEmailAndAlias", func(t *testing.T) {
		// The existing user is "Alice@Example.test" / "Alice".
		cases := []struct {
			name         string
			email, alias string
			wantConflict bool
		}{
			{"same e-mail", "Alice@Example.test", "other", true},
			{"e-mail in other case", "aLICE@example.TEST", "other", true},
			{"same alias", "other@example.test", "Alice", true},
			{"alias in other case", "other@example.test", "ALICE", true},
			{"both taken", "alice@example.test", "alice", true},
			{"neither taken", "alice2@example.test", "alice2", false},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f := setup(t, open)
				first := f.newUser("Alice")
				first.Email, first.Alias = "Alice@Example.test", "Alice"
				must(t, f.s.CreateUser(f.ctx, first, "", nil), "CreateUser")

				u := f.newUser("Second")
				u.Email, u.Alias = c.email, c.alias
				err := f.s.CreateUser(f.ctx, u, "", randomHash())
				n, cerr := f.s.CountUsers(f.ctx)
				must(t, cerr, "CountUsers")
				if c.wantConflict {
					wantCode(t, err, carillon.EConflict, "CreateUser")
					if n != 1 {
						t.Errorf("CountUsers after a refused CreateUser = %d, want 1", n)
					}
					_, err = f.s.User(f.ctx, u.UserID)
					wantCode(t, err, carillon.ENotFound, "User of the refused user")
					return
				}
				must(t, err, "CreateUser")
				if n != 2 {
					t.Errorf("CountUsers = %d, want 2", n)
				}
			})
		}
	})

	t.Run("UpdateUser", func(t *testing.T) {
		f := setup(t, open)
		u := f.user("Carol Zed")
		other := f.user("Dan Other")

		got, err := f.s.UpdateUser(f.ctx, u.UserID, carillon.UserUpdate{FullName: ptr("Carol Zed-Young")})
		must(t, err, "UpdateUser FullName")
		want := *u
		want.FullName = "Carol Zed-Young"
		checkUser(t, "UpdateUser result", got, &want)
		got, err = f.s.User(f.ctx, u.UserID)
		must(t, err, "User")
		checkUser(t, "User after UpdateUser", got, &want)

		got, err = f.s.UpdateUser(f.ctx, u.UserID, carillon.UserUpdate{PasswordHash: ptr("pw-hash")})
		must(t, err, "UpdateUser PasswordHash")
		want.HasPassword = true
		checkUser(t, "UpdateUser result after setting a password", got, &want)
		h, err := f.s.PasswordHash(f.ctx, u.UserID)
		must(t, err, "PasswordHash")
		if h != "pw-hash" {
			t.Errorf("PasswordHash = %q, want pw-hash", h)
		}

		// An empty update changes nothing.
		got, err = f.s.UpdateUser(f.ctx, u.UserID, carillon.UserUpdate{})
		must(t, err, "empty UpdateUser")
		checkUser(t, "empty UpdateUser result", got, &want)

		got, err = f.s.User(f.ctx, other.UserID)
		must(t, err, "User(other)")
		checkUser(t, "other user", got, other)

		_, err = f.s.UpdateUser(f.ctx, uuid.NewString(), carillon.UserUpdate{FullName: ptr("x")})
		wantCode(t, err, carillon.ENotFound, "UpdateUser of an unknown id")
	})

	t.Run("APITokens", func(t *testing.T) {
		f := setup(t, open)
		first, second := randomHash(), randomHash()
		u := f.newUser("Erin Tok")
		must(t, f.s.CreateUser(f.ctx, u, "", first), "CreateUser with token")
		got, err := f.s.UserByAPIToken(f.ctx, first)
		must(t, err, "UserByAPIToken of the token given to CreateUser")
		checkUser(t, "UserByAPIToken", got, u)
		must(t, f.s.AddAPIToken(f.ctx, u.UserID, second), "AddAPIToken")
		// The server adds CARILLON_ADMIN_TOKEN again at every start: adding
		// a token the user already has must succeed and keep it working.
		must(t, f.s.AddAPIToken(f.ctx, u.UserID, first), "AddAPIToken of a token the user has")

		for i, tok := range [][]byte{first, second} {
			got, err := f.s.UserByAPIToken(f.ctx, tok)
			must(t, err, "UserByAPIToken")
			if got.UserID != u.UserID {
				t.Errorf("token %d belongs to %s, want %s", i, got.UserID, u.UserID)
			}
		}
		// The HTTP layer turns ENotFound into 401.
		_, err = f.s.UserByAPIToken(f.ctx, randomHash())
		wantCode(t, err, carillon.ENotFound, "UserByAPIToken of an unknown token")
	})

	t.Run("Sessions", func(t *testing.T) {
		f := setup(t, open)
		u := f.user("Gil Sess")
		s1, s2 := randomHash(), randomHash()
		must(t, f.s.CreateSession(f.ctx, s1, u.UserID, t0), "CreateSession")
		must(t, f.s.CreateSession(f.ctx, s2, u.UserID, t0), "CreateSession")

		// Each use keeps the session alive for SessionTTL from that use.
		// Uses here are far more than a minute apart: a backend may write
		// the last-use time at most once a minute.
		use := t0.Add(time.Hour)
		for i := 0; i < 3; i++ {
			got, err := f.s.UserBySession(f.ctx, s1, use)
			must(t, err, "UserBySession within SessionTTL of the last use")
			if got.UserID != u.UserID || !got.Active {
				t.Fatalf("UserBySession = %+v, want active user %s", got, u.UserID)
			}
			use = use.Add(carillon.SessionTTL - time.Minute)
		}
		// Not used for longer than SessionTTL: ended. The HTTP layer passes
		// the error on as is, so it must be Unauthorized.
		_, err := f.s.UserBySession(f.ctx, s1, use.Add(2*time.Minute))
		wantCode(t, err, carillon.EUnauthorized, "UserBySession after SessionTTL of disuse")

		// s2 was never used after its creation.
		_, err = f.s.UserBySession(f.ctx, s2, t0.Add(carillon.SessionTTL+time.Minute))
		wantCode(t, err, carillon.EUnauthorized, "UserBySession of a session unused for SessionTTL")

		_, err = f.s.UserBySession(f.ctx, randomHash(), t0)
		wantCode(t, err, carillon.EUnauthorized, "UserBySession of an unknown session")

		s3 := randomHash()
		must(t, f.s.CreateSession(f.ctx, s3, u.UserID, t0), "CreateSession")
		_, err = f.s.UserBySession(f.ctx, s3, t0.Add(time.Hour))
		must(t, err, "UserBySession")
		must(t, f.s.DeleteSession(f.ctx, s3), "DeleteSession")
		_, err = f.s.UserBySession(f.ctx, s3, t0.Add(2*time.Hour))
		wantCode(t, err, carillon.EUnauthorized, "UserBySession after DeleteSession")
	})

	t.Run("PasswordChangeEndsOtherSessions", func(t *testing.T) {
		f := setup(t, open)
		u := f.user("Hal Pass")
		other := f.user("Ivy Else")
		token := randomHash()
		must(t, f.s.AddAPIToken(f.ctx, u.UserID, token), "AddAPIToken")
		a, keep, c, o := randomHash(), randomHash(), randomHash(), randomHash()
		for _, s := range [][]byte{a, keep, c} {
			must(t, f.s.CreateSession(f.ctx, s, u.UserID, t0), "CreateSession")
		}
		must(t, f.s.CreateSession(f.ctx, o, other.UserID, t0), "CreateSession")
		now := t0.Add(time.Hour)

		// A change of full name ends nothing.
		_, err := f.s.UpdateUser(f.ctx, u.UserID, carillon.UserUpdate{FullName: ptr("Hal Renamed")})
		must(t, err, "UpdateUser FullName")
		checkSessions(t, f, now, map[string][]byte{"a": a, "keep": keep, "c": c, "other user's": o}, nil)

		_, err = f.s.UpdateUser(f.ctx, u.UserID, carillon.UserUpdate{PasswordHash: ptr("new"), KeepSession: bytes.Clone(keep)})
		must(t, err, "UpdateUser PasswordHash with KeepSession")
		checkSessions(t, f, now, map[string][]byte{"keep": keep, "other user's": o}, map[string][]byte{"a": a, "c": c})
		// A new password does not revoke API tokens.
		if _, err := f.s.UserByAPIToken(f.ctx, token); err != nil {
			t.Errorf("UserByAPIToken after a password change: %v", err)
		}

		_, err = f.s.UpdateUser(f.ctx, u.UserID, carillon.UserUpdate{PasswordHash: ptr("newer")})
		must(t, err, "UpdateUser PasswordHash")
		checkSessions(t, f, now, map[string][]byte{"other user's": o}, map[string][]byte{"keep": keep})
	})

	t.Run("Deactivation", func(t *testing.T) {
		f := setup(t, open)
		u := f.user("Jo Leaving")
		other := f.user("Kim Staying")
		token, otherToken := randomHash(), randomHash()
		must(t, f.s.AddAPIToken(f.ctx, u.UserID, token), "AddAPIToken")
		must(t, f.s.AddAPIToken(f.ctx, other.UserID, otherToken), "AddAPIToken")
		s, keep, o := randomHash(), randomHash(), randomHash()
		must(t, f.s.CreateSession(f.ctx, s, u.UserID, t0), "CreateSession")
		must(t, f.s.CreateSession(f.ctx, keep, u.UserID, t0), "CreateSession")
		must(t, f.s.CreateSession(f.ctx, o, other.UserID, t0), "CreateSession")
		now := t0.Add(time.Hour)

		// KeepSession spares a session from a password change only:
		// deactivation ends every session.
		got, err := f.s.UpdateUser(f.ctx, u.UserID, carillon.UserUpdate{Active: ptr(false), KeepSession: keep})
		must(t, err, "UpdateUser Active=false")
		if got.Active {
			t.Errorf("UpdateUser result is active after deactivation")
		}
		got, err = f.s.User(f.ctx, u.UserID)
		must(t, err, "User of a deactivated user")
		if got.Active {
			t.Errorf("User of a deactivated user: Active")
		}
		checkSessions(t, f, now, map[string][]byte{"other user's": o}, map[string][]byte{"s": s, "keep": keep})
		_, err = f.s.UserByAPIToken(f.ctx, token)
		wantCode(t, err, carillon.ENotFound, "UserByAPIToken of a deactivated user")
		if _, err := f.s.UserByAPIToken(f.ctx, otherToken); err != nil {
			t.Errorf("other user's token after deactivation of someone else: %v", err)
		}

		// Revoked means gone: reactivation does not bring tokens back.
		got, err = f.s.UpdateUser(f.ctx, u.UserID, carillon.UserUpdate{Active: ptr(true)})
		must(t, err, "UpdateUser Active=true")
		if !got.Active {
			t.Errorf("UpdateUser result is not active after reactivation")
		}
		_, err = f.s.UserByAPIToken(f.ctx, token)
		wantCode(t, err, carillon.ENotFound, "UserByAPIToken of a revoked token after reactivation")
		fresh := randomHash()
		must(t, f.s.AddAPIToken(f.ctx, u.UserID, fresh), "AddAPIToken after reactivation")
		if _, err := f.s.UserByAPIToken(f.ctx, fresh); err != nil {
			t.Errorf("UserByAPIToken of a new token after reactivation: %v", err)
		}
	})
}

// checkSessions checks which sessions are alive at now.
func checkSessions(t *testing.T, f *fixture, now time.Time, alive, ended map[string][]byte) {
	t.Helper()
	for name, s := range alive {
		if _, err := f.s.UserBySession(f.ctx, s, now); err != nil {
			t.Errorf("session %s: %v, want alive", name, err)
		}
	}
	for name, s := range ended {
		_, err := f.s.UserBySession(f.ctx, s, now)
		wantCode(t, err, carillon.EUnauthorized, "session "+name)
	}
}

func checkUser(t *testing.T, what string, got, want *carillon.User) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: nil user", what)
		return
	}
	if got.UserID != want.UserID || got.Email != want.Email || got.Alias != want.Alias || got.FullName != want.FullName ||
		got.IsAdmin != want.IsAdmin || got.Active != want.Active || got.HasPassword != want.HasPassword ||
		!sameTime(got.CreatedAt, want.CreatedAt) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, *got, *want)
	}
}
