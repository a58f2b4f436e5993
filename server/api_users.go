package server

import (
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/secret"
)

type userJSON struct {
	UserID           string `json:"UserId"`
	Email            string `json:"Email"`
	Alias            string `json:"Alias"`
	FullName         string `json:"FullName"`
	CreatedTimestamp string `json:"CreatedTimestamp"`
}

func toUserJSON(u *carillon.User) userJSON {
	return userJSON{UserID: u.UserID, Email: u.Email, Alias: u.Alias, FullName: u.FullName, CreatedTimestamp: carillon.FormatTime(u.CreatedAt)}
}

var aliasPattern = regexp.MustCompile(`^[a-z0-9._-]{1,64}$`)

// NewUser validates and builds a user from API input; it is shared by the
// API and the bootstrap.
func NewUser(email, fullName, alias string, now time.Time) (*carillon.User, error) {
	email = strings.TrimSpace(email)
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" || len(email) > 254 {
		return nil, badRequest("Email must be a plain e-mail address such as mary@example.com.")
	}
	if alias == "" {
		alias = defaultAlias(email[:strings.LastIndexByte(email, '@')])
	}
	alias = strings.ToLower(alias)
	if !aliasPattern.MatchString(alias) {
		return nil, badRequest("Alias must be 1 to 64 characters of a-z, 0-9, '.', '_' and '-'.")
	}
	if alias == "all" || alias == "present" {
		return nil, badRequest("The aliases 'all' and 'present' are reserved.")
	}
	fullName = strings.TrimSpace(fullName)
	if fullName == "" {
		fullName = alias
	}
	if err := checkName("FullName", fullName, carillon.MaxFullNameLen); err != nil {
		return nil, err
	}
	return &carillon.User{UserID: uuid.NewString(), Email: email, Alias: alias, FullName: fullName, Active: true, CreatedAt: now.UTC()}, nil
}

// defaultAlias makes an alias of an e-mail's local part: lower case, other
// characters than a-z, 0-9, '.', '_' and '-' turned into '-', at most 64
// characters ("Mary.Major+ci" → "mary.major-ci").
func defaultAlias(local string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(local) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
		if b.Len() >= 64 {
			break
		}
	}
	alias := strings.Trim(b.String(), ".-_")
	if len(alias) > 64 {
		alias = alias[:64]
	}
	if alias == "" {
		alias = "user"
	}
	return alias
}

// checkName validates a display name: 1 to max characters, printable.
func checkName(field, name string, maxLen int) error {
	n := utf8.RuneCountInString(name)
	if strings.TrimSpace(name) == "" || n > maxLen || !utf8.ValidString(name) {
		return badRequest("%s must be 1 to %d characters.", field, maxLen)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return badRequest("%s must not contain control characters.", field)
		}
	}
	return nil
}

func checkPassword(pw string) error {
	if utf8.RuneCountInString(pw) < secret.MinPasswordLen || len(pw) > 1024 {
		return badRequest("Password must be at least %d characters (and at most 1024 bytes).", secret.MinPasswordLen)
	}
	return nil
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := requireInstanceAdmin(c); err != nil {
		return err
	}
	var in struct {
		Email, FullName, Alias string
		Password               *string
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	u, err := NewUser(in.Email, in.FullName, in.Alias, s.now())
	if err != nil {
		return err
	}
	var pwHash string
	if in.Password != nil {
		if err := checkPassword(*in.Password); err != nil {
			return err
		}
		if pwHash, err = secret.HashPassword(*in.Password); err != nil {
			return err
		}
	}
	token := secret.NewAPIToken()
	if err := s.store.CreateUser(r.Context(), u, pwHash, secret.Hash(token)); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"User": toUserJSON(u), "Token": token})
	return nil
}

func (s *Server) handleGetMe(w http.ResponseWriter, r *http.Request, c *caller) error {
	writeJSON(w, http.StatusOK, map[string]any{"User": toUserJSON(c.User)})
	return nil
}

func (s *Server) handlePatchMe(w http.ResponseWriter, r *http.Request, c *caller) error {
	var in struct {
		FullName, Password, CurrentPassword *string
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	upd, err := profileUpdate(in.FullName, in.Password, func() error {
		if !c.HasPassword {
			return nil
		}
		current, err := s.store.PasswordHash(r.Context(), c.UserID)
		if err != nil {
			return err
		}
		if in.CurrentPassword == nil || !secret.CheckPassword(current, *in.CurrentPassword) {
			return carillon.Errorf(carillon.EForbidden, "CurrentPassword is missing or wrong; it is needed to change the password.")
		}
		return nil
	})
	if err != nil {
		return err
	}
	upd.KeepSession = c.sessionHash
	u, err := s.store.UpdateUser(r.Context(), c.UserID, upd)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"User": toUserJSON(u)})
	return nil
}

// profileUpdate validates a new FullName and Password into an update.
// checkCurrent, when not nil, runs once the new password is valid and
// before it is hashed: users changing their own password prove the
// current one.
func profileUpdate(fullName, password *string, checkCurrent func() error) (carillon.UserUpdate, error) {
	var upd carillon.UserUpdate
	if fullName != nil {
		name := strings.TrimSpace(*fullName)
		if err := checkName("FullName", name, carillon.MaxFullNameLen); err != nil {
			return upd, err
		}
		upd.FullName = &name
	}
	if password != nil {
		if err := checkPassword(*password); err != nil {
			return upd, err
		}
		if checkCurrent != nil {
			if err := checkCurrent(); err != nil {
				return upd, err
			}
		}
		h, err := secret.HashPassword(*password)
		if err != nil {
			return upd, err
		}
		upd.PasswordHash = &h
	}
	return upd, nil
}

func (s *Server) handlePatchUser(w http.ResponseWriter, r *http.Request, c *caller) error {
	if err := requireInstanceAdmin(c); err != nil {
		return err
	}
	id := r.PathValue("UserId")
	if !carillon.ValidID(id) {
		return carillon.Errorf(carillon.ENotFound, "No such user.")
	}
	var in struct {
		FullName, Password *string
		Active             *bool
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	upd, err := profileUpdate(in.FullName, in.Password, nil)
	if err != nil {
		return err
	}
	if in.Active != nil {
		if !*in.Active && id == c.UserID {
			return carillon.Errorf(carillon.EConflict, "You cannot deactivate yourself.")
		}
		upd.Active = in.Active
	}
	u, err := s.store.UpdateUser(r.Context(), id, upd)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"User": toUserJSON(u)})
	return nil
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) (err error) {
	if err := s.csrf.Check(r); err != nil {
		return carillon.Errorf(carillon.EForbidden, "Cross-site requests are refused.")
	}
	var in struct{ Email, Password string }
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	attempt, err := s.reserveLoginAttempt(r, in.Email)
	if err != nil {
		return err
	}
	// A successful login gives its attempt back: only failures count.
	defer func() {
		if err == nil {
			attempt()
		}
	}()
	wrong := carillon.Errorf(carillon.EUnauthorized, "The e-mail address or password is wrong.")
	u, err := s.store.UserByEmail(r.Context(), strings.TrimSpace(in.Email))
	if carillon.ErrorCode(err) == carillon.ENotFound {
		return wrong
	}
	if err != nil {
		return err
	}
	hash, err := s.store.PasswordHash(r.Context(), u.UserID)
	if err != nil {
		return err
	}
	if !u.Active || !secret.CheckPassword(hash, in.Password) {
		return wrong
	}
	token := secret.NewSessionToken()
	if err := s.store.CreateSession(r.Context(), secret.Hash(token), u.UserID, s.now()); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: s.cfg.SecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: int(carillon.SessionTTL / time.Second),
	})
	writeJSON(w, http.StatusOK, map[string]any{"User": toUserJSON(u)})
	return nil
}

func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, c *caller) error {
	if c.sessionHash != nil {
		if err := s.store.DeleteSession(r.Context(), c.sessionHash); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, Secure: s.cfg.SecureCookies,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
