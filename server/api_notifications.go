package server

import (
	"net/http"

	"github.com/carillon-chat/carillon"
)

const maxNotifications = 200

func (s *Server) handleListNotifications(w http.ResponseWriter, r *http.Request, c *caller) error {
	var unread bool
	switch r.URL.Query().Get("Unread") {
	case "", "false":
	case "true":
		unread = true
	default:
		return badRequest("Unread must be true or false.")
	}
	notes, err := s.store.Notifications(r.Context(), c.UserID, unread, maxNotifications)
	if err != nil {
		return err
	}
	out := make([]carillon.NotificationJSON, len(notes))
	for i := range notes {
		out[i] = notes[i].JSON()
	}
	writeJSON(w, http.StatusOK, map[string]any{"Notifications": out})
	return nil
}

func (s *Server) handleReadNotifications(w http.ResponseWriter, r *http.Request, c *caller) error {
	var in struct {
		NotificationIDs []string `json:"NotificationIds"`
		All             bool
	}
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if !in.All && len(in.NotificationIDs) == 0 {
		return badRequest(`Send {"NotificationIds": [...]} or {"All": true}.`)
	}
	if len(in.NotificationIDs) > 1000 {
		return badRequest("At most 1000 NotificationIds at once.")
	}
	for _, id := range in.NotificationIDs {
		if !carillon.ValidID(id) {
			return badRequest("NotificationIds must be notification ids.")
		}
	}
	if err := s.store.MarkNotificationsRead(r.Context(), c.UserID, in.NotificationIDs, in.All); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
