package server

import (
	"context"
	"encoding/json"

	"github.com/carillon-chat/carillon"
)

// publish sends a live event; a failure is logged, never the request's:
// the change itself is committed.
func (s *Server) publish(ev carillon.Event) {
	if s.cfg.Broker == nil {
		return
	}
	if err := s.cfg.Broker.Publish(context.Background(), ev); err != nil {
		s.log.Warn("live event not published", "type", ev.Type, "err", err)
	}
}

// publishMembership tells the room (and the member concerned) of a
// membership change.
func (s *Server) publishMembership(action string, m membershipJSON) {
	data, _ := json.Marshal(map[string]any{"Action": action, "RoomMembership": m})
	ev := carillon.Event{Type: carillon.EventMembership, RoomID: m.RoomID, Data: data}
	switch action {
	case "Added":
		ev.Joined = m.Member.MemberID
	case "Removed":
		ev.Left = m.Member.MemberID
	}
	s.publish(ev)
}

// publishWebhook tells the room of a webhook change, never its URL.
func (s *Server) publishWebhook(action string, w *carillon.Webhook) {
	data, _ := json.Marshal(map[string]any{"Action": action, "WebhookId": w.WebhookID, "RoomId": w.RoomID, "Name": w.Name})
	s.publish(carillon.Event{Type: carillon.EventWebhook, RoomID: w.RoomID, Data: data})
}
