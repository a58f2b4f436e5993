package server

import (
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
)

type roomJSON struct {
	RoomID           string `json:"RoomId"`
	Name             string `json:"Name"`
	CreatedBy        string `json:"CreatedBy"`
	CreatedTimestamp string `json:"CreatedTimestamp"`
	UnreadCount      int    `json:"UnreadCount"`
	MentionCount     int    `json:"MentionCount"`
}

func toRoomJSON(r *carillon.Room) roomJSON {
	return roomJSON{RoomID: r.RoomID, Name: r.Name, CreatedBy: r.CreatedBy, CreatedTimestamp: carillon.FormatTime(r.CreatedAt),
		UnreadCount: r.UnreadCount, MentionCount: r.MentionCount}
}

type memberJSON struct {
	MemberID   string  `json:"MemberId"`
	MemberType string  `json:"MemberType"`
	Email      *string `json:"Email"`
	Alias      *string `json:"Alias"`
	FullName   string  `json:"FullName"`
}

type membershipJSON struct {
	RoomID  string     `json:"RoomId"`
	Member  memberJSON `json:"Member"`
	Role    *string    `json:"Role"`
	Present *bool      `json:"Present"`
}

func toMembershipJSON(m *carillon.Membership, present bool) membershipJSON {
	email, alias, role := m.User.Email, m.User.Alias, m.Role
	return membershipJSON{RoomID: m.RoomID, Role: &role, Present: &present,
		Member: memberJSON{MemberID: m.UserID, MemberType: carillon.MemberTypeUser, Email: &email, Alias: &alias, FullName: m.User.FullName}}
}

func webhookMembershipJSON(w *carillon.Webhook) membershipJSON {
	return membershipJSON{RoomID: w.RoomID, Member: memberJSON{MemberID: w.WebhookID, MemberType: carillon.MemberTypeWebhook, FullName: w.Name}}
}

func (s *Server) handleCreateRoom(w http.ResponseWriter, r *http.Request, c *caller) error {
	var in struct{ Name string }
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	name := strings.TrimSpace(in.Name)
	if err := checkName("Name", name, carillon.MaxRoomNameLen); err != nil {
		return err
	}
	room := &carillon.Room{RoomID: uuid.NewString(), Name: name, CreatedBy: c.UserID, CreatedAt: s.now().UTC()}
	if err := s.store.CreateRoom(r.Context(), room); err != nil {
		return err
	}
	s.publishMembership("Added", toMembershipJSON(&carillon.Membership{RoomID: room.RoomID, UserID: c.UserID,
		Role: carillon.RoleAdministrator, User: *c.User}, true))
	writeJSON(w, http.StatusCreated, map[string]any{"Room": toRoomJSON(room)})
	return nil
}

func (s *Server) handleListRooms(w http.ResponseWriter, r *http.Request, c *caller) error {
	rooms, err := s.store.RoomsOfUser(r.Context(), c.UserID)
	if err != nil {
		return err
	}
	out := make([]roomJSON, len(rooms))
	for i := range rooms {
		out[i] = toRoomJSON(&rooms[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"Rooms": out})
	return nil
}

func (s *Server) handleGetRoom(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoom(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	room := a.room
	if a.member != nil {
		// The caller's counters come with the room listing.
		rooms, err := s.store.RoomsOfUser(r.Context(), c.UserID)
		if err != nil {
			return err
		}
		for i := range rooms {
			if rooms[i].RoomID == room.RoomID {
				room = &rooms[i]
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"Room": toRoomJSON(room)})
	return nil
}

func (s *Server) handleDeleteRoom(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoomAdmin(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	members, err := s.store.Members(r.Context(), a.room.RoomID)
	if err != nil {
		return err
	}
	if err := s.store.DeleteRoom(r.Context(), a.room.RoomID, c.UserID, s.now()); err != nil {
		return err
	}
	// Members' streams stop following the room, and their apps learn it
	// is gone.
	for i := range members {
		s.publishMembership("Removed", toMembershipJSON(&members[i], false))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleMarkRead(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoom(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	if a.member == nil {
		return carillon.Errorf(carillon.EForbidden, "Only members of the room have a read position.")
	}
	var in struct {
		MessageID string `json:"MessageId"`
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if !carillon.ValidID(in.MessageID) {
		return badRequest("MessageId must be the id of a message of this room.")
	}
	if err := s.store.MarkRead(r.Context(), a.room.RoomID, c.UserID, in.MessageID); err != nil {
		if carillon.ErrorCode(err) == carillon.ENotFound {
			return badRequest("MessageId must be the id of a message of this room.")
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleAddMember(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoomAdmin(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	var in struct {
		MemberID string `json:"MemberId"`
		Email    string
		Role     string
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Role == "" {
		in.Role = carillon.RoleMember
	}
	if in.Role != carillon.RoleMember && in.Role != carillon.RoleAdministrator {
		return badRequest(`Role must be "Administrator" or "Member".`)
	}
	var user *carillon.User
	switch {
	case in.MemberID != "" && in.Email != "":
		return badRequest("Give MemberId or Email, not both.")
	case in.MemberID != "":
		if !carillon.ValidID(in.MemberID) {
			return badRequest("MemberId must be a user id.")
		}
		user, err = s.store.User(r.Context(), in.MemberID)
	case in.Email != "":
		user, err = s.store.UserByEmail(r.Context(), strings.TrimSpace(in.Email))
	default:
		return badRequest("Give the MemberId or the Email of the user to add.")
	}
	if carillon.ErrorCode(err) == carillon.ENotFound || (err == nil && !user.Active) {
		return badRequest("No active user has this MemberId or Email.")
	}
	if err != nil {
		return err
	}
	m := &carillon.Membership{RoomID: a.room.RoomID, UserID: user.UserID, Role: in.Role, CreatedAt: s.now().UTC(), User: *user}
	if err := s.store.AddMember(r.Context(), m, c.UserID); err != nil {
		return err
	}
	out := toMembershipJSON(m, s.isPresent(r, m.UserID))
	s.publishMembership("Added", out)
	writeJSON(w, http.StatusCreated, map[string]any{"RoomMembership": out})
	return nil
}

func (s *Server) handleListMembers(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoom(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	members, err := s.store.Members(r.Context(), a.room.RoomID)
	if err != nil {
		return err
	}
	hooks, err := s.store.WebhooksOfRoom(r.Context(), a.room.RoomID)
	if err != nil {
		return err
	}
	ids := make([]string, len(members))
	for i := range members {
		ids[i] = members[i].UserID
	}
	present, err := s.cfg.Presence.Present(r.Context(), ids)
	if err != nil {
		return err
	}
	out := make([]membershipJSON, 0, len(members)+len(hooks))
	for i := range members {
		out = append(out, toMembershipJSON(&members[i], present[members[i].UserID]))
	}
	for i := range hooks {
		out = append(out, webhookMembershipJSON(&hooks[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"RoomMemberships": out})
	return nil
}

// isPresent reports a user's presence for a roster entry; an error reads as
// absent.
func (s *Server) isPresent(r *http.Request, userID string) bool {
	p, err := s.cfg.Presence.Present(r.Context(), []string{userID})
	return err == nil && p[userID]
}

// memberTarget loads the membership named in the path.
func (s *Server) memberTarget(r *http.Request, a *roomAccess) (*carillon.Membership, error) {
	id := r.PathValue("MemberId")
	notFound := carillon.Errorf(carillon.ENotFound, "No such member in this room.")
	if !carillon.ValidID(id) {
		return nil, notFound
	}
	m, err := s.store.Membership(r.Context(), a.room.RoomID, id)
	if carillon.ErrorCode(err) == carillon.ENotFound {
		return nil, notFound
	}
	return m, err
}

func (s *Server) handleSetRole(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoomAdmin(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	target, err := s.memberTarget(r, a)
	if err != nil {
		return err
	}
	var in struct{ Role string }
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Role != carillon.RoleMember && in.Role != carillon.RoleAdministrator {
		return badRequest(`Role must be "Administrator" or "Member".`)
	}
	m, err := s.store.SetRole(r.Context(), a.room.RoomID, target.UserID, in.Role, c.UserID, s.now())
	if err != nil {
		return err
	}
	out := toMembershipJSON(m, s.isPresent(r, m.UserID))
	if target.Role != m.Role {
		s.publishMembership("RoleChanged", out)
	}
	writeJSON(w, http.StatusOK, map[string]any{"RoomMembership": out})
	return nil
}

func (s *Server) handleRemoveMember(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoom(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	leaving := r.PathValue("MemberId") == c.UserID
	if !a.admin && !leaving {
		return carillon.Errorf(carillon.EForbidden, "Only administrators of this room can remove other members.")
	}
	target, err := s.memberTarget(r, a)
	if err != nil {
		return err
	}
	if err := s.store.RemoveMember(r.Context(), a.room.RoomID, target.UserID, c.UserID, s.now()); err != nil {
		return err
	}
	s.publishMembership("Removed", toMembershipJSON(target, false))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type auditJSON struct {
	AuditEventID     string `json:"AuditEventId"`
	Action           string `json:"Action"`
	ActorID          string `json:"ActorId"`
	TargetID         string `json:"TargetId"`
	CreatedTimestamp string `json:"CreatedTimestamp"`
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoomAdmin(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	limit, err := maxResults(r)
	if err != nil {
		return err
	}
	after := r.URL.Query().Get("NextToken")
	if after != "" && !carillon.ValidID(after) {
		return badRequest("NextToken is not valid.")
	}
	events, err := s.store.AuditEvents(r.Context(), a.room.RoomID, after, limit)
	if err != nil {
		return err
	}
	var next *string
	if len(events) > limit {
		events = events[:limit]
		id := events[limit-1].AuditEventID
		next = &id
	}
	out := make([]auditJSON, len(events))
	for i, e := range events {
		out[i] = auditJSON{e.AuditEventID, e.Action, e.ActorID, e.TargetID, carillon.FormatTime(e.CreatedAt)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"AuditEvents": out, "NextToken": next})
	return nil
}
