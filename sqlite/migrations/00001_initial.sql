-- +goose Up
-- Times are Unix milliseconds (UTC). E-mail and alias uniqueness uses the
-- lower-cased *_key columns, folded in Go so that every backend agrees.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    user_id       TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL UNIQUE,
    alias         TEXT NOT NULL,
    alias_key     TEXT NOT NULL UNIQUE,
    full_name     TEXT NOT NULL,
    password_hash TEXT NOT NULL DEFAULT '',
    is_admin      INTEGER NOT NULL DEFAULT 0,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (user_id),
    created_at INTEGER NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE sessions (
    session_hash BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (user_id),
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Rooms and webhooks are soft-deleted: their tombstones keep old webhook
-- URLs answering 404 rather than 403.
CREATE TABLE rooms (
    room_id    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    deleted_at INTEGER
);

CREATE TABLE memberships (
    room_id       TEXT NOT NULL REFERENCES rooms (room_id),
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    role          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE webhooks (
    webhook_id   TEXT PRIMARY KEY,
    room_id      TEXT NOT NULL REFERENCES rooms (room_id),
    name         TEXT NOT NULL,
    token_hash   BLOB NOT NULL,
    token_seal   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    deleted_at   INTEGER
);
CREATE INDEX webhooks_room ON webhooks (room_id);

-- Every token hash a webhook ever had, current or retired.
CREATE TABLE webhook_tokens (
    token_hash BLOB PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (webhook_id),
    created_at INTEGER NOT NULL
);

-- seq is the commit order of messages across the instance.
CREATE TABLE messages (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id   TEXT NOT NULL UNIQUE,
    room_id      TEXT NOT NULL REFERENCES rooms (room_id),
    sender_type  TEXT NOT NULL,
    sender_id    TEXT NOT NULL,
    sender_name  TEXT NOT NULL,
    display_name TEXT NOT NULL,
    content      TEXT NOT NULL,
    format       TEXT NOT NULL,
    html         TEXT NOT NULL,
    mentions     TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX messages_room_seq ON messages (room_id, seq);

CREATE TABLE idempotency_keys (
    sender_id    TEXT NOT NULL,
    key          TEXT NOT NULL,
    content_hash BLOB NOT NULL,
    message_id   TEXT NOT NULL,
    room_id      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (sender_id, key)
);

CREATE TABLE audit_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_event_id TEXT NOT NULL UNIQUE,
    room_id        TEXT NOT NULL,
    action         TEXT NOT NULL,
    actor_id       TEXT NOT NULL,
    target_id      TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX audit_events_room ON audit_events (room_id, seq);

-- +goose Down
DROP TABLE audit_events;
DROP TABLE idempotency_keys;
DROP TABLE messages;
DROP TABLE webhook_tokens;
DROP TABLE webhooks;
DROP TABLE memberships;
DROP TABLE rooms;
DROP TABLE sessions;
DROP TABLE api_tokens;
DROP TABLE users;
DROP TABLE meta;
