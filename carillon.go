// Package carillon holds the domain of the Carillon chat-room server: rooms,
// members, webhooks and messages, the errors the rest of the program speaks,
// and the small interfaces (storage, rate limiting, event fan-out) that the
// backends in the sub-packages implement.
//
// This package imports nothing heavier than the standard library so that
// every other package can depend on it.
package carillon

import "time"

// Limits from the product contract (SPEC §1, §3).
const (
	MaxContentBytes       = 4096      // Content, UTF-8 bytes, prefix included
	MaxWebhookBodyBytes   = 32 * 1024 // whole webhook request body
	MaxWebhooksPerRoom    = 10
	MaxMembersPerRoom     = 10000
	MaxBroadcastMembers   = 50 // @All / @Present allowed up to this many user members
	MaxIdempotencyKeyLen  = 255
	MaxNameLen            = 64  // webhook names
	MaxRoomNameLen        = 256 // room names
	MaxFullNameLen        = 256
	MinAdminTokenLen      = 32
	WebhookTokenLen       = 72
	IdempotencyKeyTTL     = 24 * time.Hour
	SessionTTL            = 14 * 24 * time.Hour
	DefaultMessagesPage   = 50
	MaxMessagesPage       = 100
	UserMessagesPerSecond = 5
)

// Roles of a room member.
const (
	RoleAdministrator = "Administrator"
	RoleMember        = "Member"
)

// Sender and member types.
const (
	MemberTypeUser    = "User"
	MemberTypeWebhook = "Webhook"
)

// Message formats (SPEC §2).
const (
	FormatPlain    = "Plain"
	FormatMarkdown = "Markdown"
	FormatCode     = "Code"
)

// User is a person with an account on this instance.
type User struct {
	UserID    string
	Email     string
	Alias     string
	FullName  string
	IsAdmin   bool // instance admin
	Active    bool
	CreatedAt time.Time
	// HasPassword reports whether a password is set (a password change
	// then needs the current one).
	HasPassword bool
}

// Room is a chat room.
type Room struct {
	RoomID    string
	Name      string
	CreatedBy string
	CreatedAt time.Time
	// Per-caller counters, filled by room listings.
	UnreadCount  int
	MentionCount int
}

// Membership is a user's place in a room.
type Membership struct {
	RoomID    string
	UserID    string
	Role      string
	CreatedAt time.Time
	User      User
}

// Webhook is an incoming webhook of a room.
type Webhook struct {
	WebhookID  string
	RoomID     string
	Name       string
	TokenHash  []byte // SHA-256 of the current token
	TokenSeal  []byte // AES-256-GCM ciphertext of the current token
	CreatedAt  time.Time
	LastUsedAt *time.Time
	DeletedAt  *time.Time
}

// Mentions is what a message mentions (SPEC §2).
type Mentions struct {
	All       bool
	Present   bool
	MemberIDs []string
}

// Message is one message of a room.
type Message struct {
	MessageID   string
	RoomID      string
	Seq         int64 // commit order within the whole store; assigned on insert
	Content     string
	Format      string
	HTML        string
	SenderType  string
	SenderID    string
	SenderName  string
	DisplayName string
	Mentions    Mentions
	CreatedAt   time.Time
}

// Notification reasons, most specific last.
const (
	ReasonAll     = "All"
	ReasonPresent = "Present"
	ReasonDirect  = "Direct"
)

// Notification tells a member that a message mentions them.
type Notification struct {
	NotificationID string
	UserID         string
	MessageID      string
	MessageSeq     int64
	RoomID         string
	Reason         string
	Read           bool
	CreatedAt      time.Time
}

// AuditEvent records an administrative action on a room.
type AuditEvent struct {
	AuditEventID string
	RoomID       string
	Action       string
	ActorID      string
	TargetID     string
	CreatedAt    time.Time
}

// Audit actions (SPEC §3).
const (
	AuditWebhookCreated     = "WebhookCreated"
	AuditWebhookRenamed     = "WebhookRenamed"
	AuditWebhookRegenerated = "WebhookRegenerated"
	AuditWebhookDeleted     = "WebhookDeleted"
	AuditMemberAdded        = "MemberAdded"
	AuditMemberRemoved      = "MemberRemoved"
	AuditRoleChanged        = "RoleChanged"
	AuditRoomDeleted        = "RoomDeleted"
)

// ValidID reports whether s is a lowercase UUIDv4, the shape of every id.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		case 14:
			if c != '4' {
				return false
			}
		case 19:
			if c != '8' && c != '9' && c != 'a' && c != 'b' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// ValidWebhookToken reports whether s has the shape of a webhook token:
// exactly 72 characters of [A-Za-z0-9].
func ValidWebhookToken(s string) bool {
	if len(s) != WebhookTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
