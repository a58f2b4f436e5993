package carillon

import (
	"encoding/json"
	"time"
)

// TimeFormat is the API's timestamp format: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// FormatTime formats t for the API.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// MessageJSON is the API shape of a message (SPEC §3), shared by the
// message listing and the live event stream.
type MessageJSON struct {
	MessageID        string       `json:"MessageId"`
	RoomID           string       `json:"RoomId"`
	Content          string       `json:"Content"`
	Format           string       `json:"Format"`
	HTML             string       `json:"Html"`
	Sender           SenderJSON   `json:"Sender"`
	DisplayName      string       `json:"DisplayName"`
	Mentions         MentionsJSON `json:"Mentions"`
	CreatedTimestamp string       `json:"CreatedTimestamp"`
}

// SenderJSON is the API shape of a message's sender.
type SenderJSON struct {
	SenderID   string `json:"SenderId"`
	SenderType string `json:"SenderType"`
	Name       string `json:"Name"`
}

// MentionsJSON is the API shape of a message's mentions.
type MentionsJSON struct {
	All       bool     `json:"All"`
	Present   bool     `json:"Present"`
	MemberIDs []string `json:"MemberIds"`
}

// JSON returns the API shape of m.
func (m *Message) JSON() MessageJSON {
	ids := m.Mentions.MemberIDs
	if ids == nil {
		ids = []string{}
	}
	return MessageJSON{
		MessageID:        m.MessageID,
		RoomID:           m.RoomID,
		Content:          m.Content,
		Format:           m.Format,
		HTML:             m.HTML,
		Sender:           SenderJSON{SenderID: m.SenderID, SenderType: m.SenderType, Name: m.SenderName},
		DisplayName:      m.DisplayName,
		Mentions:         MentionsJSON{All: m.Mentions.All, Present: m.Mentions.Present, MemberIDs: ids},
		CreatedTimestamp: FormatTime(m.CreatedAt),
	}
}

// MarshalJSON encodes m in its API shape.
func (m *Message) MarshalJSON() ([]byte, error) { return json.Marshal(m.JSON()) }

// NotificationJSON is the API shape of a notification (SPEC §3).
type NotificationJSON struct {
	NotificationID   string `json:"NotificationId"`
	MessageID        string `json:"MessageId"`
	RoomID           string `json:"RoomId"`
	Reason           string `json:"Reason"`
	Read             bool   `json:"Read"`
	CreatedTimestamp string `json:"CreatedTimestamp"`
}

// JSON returns the API shape of n.
func (n *Notification) JSON() NotificationJSON {
	return NotificationJSON{NotificationID: n.NotificationID, MessageID: n.MessageID, RoomID: n.RoomID,
		Reason: n.Reason, Read: n.Read, CreatedTimestamp: FormatTime(n.CreatedAt)}
}
