package server

import (
	"net/http"
	"strings"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/secret"
)

// sessionCookie is the name of the web UI's session cookie.
const sessionCookie = "carillon_session"

// caller is the authenticated user of a request.
type caller struct {
	*carillon.User
	// sessionHash is set when the request came with the session cookie.
	sessionHash []byte
}

type authedFunc func(w http.ResponseWriter, r *http.Request, c *caller) error

// authed authenticates a request by bearer token or session cookie.
// Cookie-authenticated requests that change state must not be cross-site.
func (s *Server) authed(h authedFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if c.sessionHash != nil {
			if err := s.csrf.Check(r); err != nil {
				return carillon.Errorf(carillon.EForbidden, "Cross-site requests are refused.")
			}
		}
		return h(w, r, c)
	}
}

func (s *Server) authenticate(r *http.Request) (*caller, error) {
	ctx := r.Context()
	if auth := r.Header.Get("Authorization"); auth != "" {
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return nil, carillon.Errorf(carillon.EUnauthorized, "Use the header Authorization: Bearer <API token>.")
		}
		u, err := s.store.UserByAPIToken(ctx, secret.Hash(strings.TrimSpace(token)))
		if carillon.ErrorCode(err) == carillon.ENotFound {
			return nil, carillon.Errorf(carillon.EUnauthorized, "The API token is not valid.")
		}
		if err != nil {
			return nil, err
		}
		return &caller{User: u}, nil
	}
	if ck, err := r.Cookie(sessionCookie); err == nil && ck.Value != "" {
		hash := secret.Hash(ck.Value)
		u, err := s.store.UserBySession(ctx, hash, s.now())
		if err != nil {
			return nil, err
		}
		return &caller{User: u, sessionHash: hash}, nil
	}
	return nil, carillon.Errorf(carillon.EUnauthorized, "Authentication required: send Authorization: Bearer <API token>, or log in.")
}

// roomAccess is what the caller may do in a room.
type roomAccess struct {
	room *carillon.Room
	// member is the caller's membership, nil for an instance admin who is
	// not a member.
	member *carillon.Membership
	admin  bool // may manage the room
}

// accessRoom loads a room the caller can see: members and instance admins
// see it; anyone else gets 404, never learning that it exists.
func (s *Server) accessRoom(r *http.Request, c *caller, roomID string) (*roomAccess, error) {
	notFound := carillon.Errorf(carillon.ENotFound, "No such room, or you are not a member of it.")
	if !carillon.ValidID(roomID) {
		return nil, notFound
	}
	ctx := r.Context()
	room, err := s.store.Room(ctx, roomID)
	if carillon.ErrorCode(err) == carillon.ENotFound {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	m, err := s.store.Membership(ctx, roomID, c.UserID)
	if carillon.ErrorCode(err) == carillon.ENotFound {
		m, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	if m == nil && !c.IsAdmin {
		return nil, notFound
	}
	return &roomAccess{room: room, member: m, admin: c.IsAdmin || m.Role == carillon.RoleAdministrator}, nil
}

// accessRoomAdmin is accessRoom for actions reserved to administrators.
func (s *Server) accessRoomAdmin(r *http.Request, c *caller, roomID string) (*roomAccess, error) {
	a, err := s.accessRoom(r, c, roomID)
	if err != nil {
		return nil, err
	}
	if !a.admin {
		return nil, carillon.Errorf(carillon.EForbidden, "Only administrators of this room can do this.")
	}
	return a, nil
}

// requireInstanceAdmin refuses callers that are not the instance admin.
func requireInstanceAdmin(c *caller) error {
	if !c.IsAdmin {
		return carillon.Errorf(carillon.EForbidden, "Only the instance administrator can do this.")
	}
	return nil
}
