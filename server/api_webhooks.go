package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/secret"
)

type webhookJSON struct {
	WebhookID         string  `json:"WebhookId"`
	RoomID            string  `json:"RoomId"`
	Name              string  `json:"Name"`
	URL               *string `json:"Url"`
	CreatedTimestamp  string  `json:"CreatedTimestamp"`
	LastUsedTimestamp *string `json:"LastUsedTimestamp"`
}

// WebhookURL is the public URL of a webhook with the given token.
func WebhookURL(publicURL, webhookID, token string) string {
	return strings.TrimRight(publicURL, "/") + webhookPrefix + webhookID + "?token=" + token
}

// toWebhookJSON shows a webhook to an administrator. Url is null when the
// token cannot be decrypted (the secret key changed).
func (s *Server) toWebhookJSON(w *carillon.Webhook) webhookJSON {
	out := webhookJSON{WebhookID: w.WebhookID, RoomID: w.RoomID, Name: w.Name, CreatedTimestamp: carillon.FormatTime(w.CreatedAt)}
	if token, err := s.cfg.Key.Open(w.TokenSeal); err == nil {
		u := WebhookURL(s.cfg.PublicURL, w.WebhookID, token)
		out.URL = &u
	}
	lastUsed := w.LastUsedAt
	if t, ok := s.ingest.LastUsed(w.WebhookID); ok && (lastUsed == nil || t.After(*lastUsed)) {
		lastUsed = &t // not written yet
	}
	if lastUsed != nil {
		t := carillon.FormatTime(*lastUsed)
		out.LastUsedTimestamp = &t
	}
	return out
}

// NewWebhook makes a webhook with a fresh token sealed under key.
func NewWebhook(key *secret.Key, roomID, name string, now time.Time) (*carillon.Webhook, error) {
	name = strings.TrimSpace(name)
	if err := checkName("Name", name, carillon.MaxNameLen); err != nil {
		return nil, err
	}
	token := secret.NewWebhookToken()
	return &carillon.Webhook{WebhookID: uuid.NewString(), RoomID: roomID, Name: name,
		TokenHash: secret.Hash(token), TokenSeal: key.Seal(token), CreatedAt: now.UTC()}, nil
}

func (s *Server) handleCreateWebhook(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoomAdmin(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	var in struct{ Name string }
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	hook, err := NewWebhook(s.cfg.Key, a.room.RoomID, in.Name, s.now())
	if err != nil {
		return err
	}
	if err := s.store.CreateWebhook(r.Context(), hook, c.UserID); err != nil {
		return err
	}
	s.publishWebhook("Created", hook)
	writeJSON(w, http.StatusCreated, map[string]any{"Webhook": s.toWebhookJSON(hook)})
	return nil
}

func (s *Server) handleListWebhooks(w http.ResponseWriter, r *http.Request, c *caller) error {
	a, err := s.accessRoomAdmin(r, c, r.PathValue("RoomId"))
	if err != nil {
		return err
	}
	hooks, err := s.store.WebhooksOfRoom(r.Context(), a.room.RoomID)
	if err != nil {
		return err
	}
	out := make([]webhookJSON, len(hooks))
	for i := range hooks {
		out[i] = s.toWebhookJSON(&hooks[i])
	}
	writeJSON(w, http.StatusOK, map[string]any{"Webhooks": out})
	return nil
}

// webhookTarget loads the live webhook named in the path, in the room named
// in the path, for one of the room's administrators.
func (s *Server) webhookTarget(r *http.Request, c *caller) (*carillon.Webhook, error) {
	a, err := s.accessRoomAdmin(r, c, r.PathValue("RoomId"))
	if err != nil {
		return nil, err
	}
	notFound := carillon.Errorf(carillon.ENotFound, "No such webhook in this room.")
	id := r.PathValue("WebhookId")
	if !carillon.ValidID(id) {
		return nil, notFound
	}
	hook, err := s.store.Webhook(r.Context(), id)
	if carillon.ErrorCode(err) == carillon.ENotFound || (err == nil && (hook.DeletedAt != nil || hook.RoomID != a.room.RoomID)) {
		return nil, notFound
	}
	return hook, err
}

func (s *Server) handleRenameWebhook(w http.ResponseWriter, r *http.Request, c *caller) error {
	hook, err := s.webhookTarget(r, c)
	if err != nil {
		return err
	}
	var in struct{ Name string }
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	name := strings.TrimSpace(in.Name)
	if err := checkName("Name", name, carillon.MaxNameLen); err != nil {
		return err
	}
	hook, err = s.store.RenameWebhook(r.Context(), hook.WebhookID, name, c.UserID, s.now())
	if err != nil {
		return err
	}
	s.publishWebhook("Renamed", hook)
	writeJSON(w, http.StatusOK, map[string]any{"Webhook": s.toWebhookJSON(hook)})
	return nil
}

func (s *Server) handleRegenerateWebhook(w http.ResponseWriter, r *http.Request, c *caller) error {
	hook, err := s.webhookTarget(r, c)
	if err != nil {
		return err
	}
	token := secret.NewWebhookToken()
	hook, err = s.store.RegenerateWebhook(r.Context(), hook.WebhookID, secret.Hash(token), s.cfg.Key.Seal(token), c.UserID, s.now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"Webhook": s.toWebhookJSON(hook)})
	return nil
}

func (s *Server) handleDeleteWebhook(w http.ResponseWriter, r *http.Request, c *caller) error {
	hook, err := s.webhookTarget(r, c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteWebhook(r.Context(), hook.WebhookID, c.UserID, s.now()); err != nil {
		return err
	}
	s.publishWebhook("Deleted", hook)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
