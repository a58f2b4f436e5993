-- +goose Up
-- The schema mirrors the SQLite backend's (sqlite/migrations), so that a
-- store can be copied from one to the other column by column:
--   * times are Unix milliseconds (UTC) in bigint columns;
--   * e-mail and alias uniqueness uses the lower-cased *_key columns, folded
--     in Go so that every backend agrees on what "the same" means;
--   * hashes and sealed tokens are bytea;
--   * ids are text (lowercase UUIDs), so that a malformed id is simply not
--     found rather than a type error.
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE users (
    user_id       text PRIMARY KEY,
    email         text NOT NULL,
    email_key     text NOT NULL UNIQUE,
    alias         text NOT NULL,
    alias_key     text NOT NULL UNIQUE,
    full_name     text NOT NULL,
    password_hash text NOT NULL DEFAULT '',
    is_admin      boolean NOT NULL DEFAULT false,
    active        boolean NOT NULL DEFAULT true,
    created_at    bigint NOT NULL
);

CREATE TABLE api_tokens (
    token_hash bytea PRIMARY KEY,
    user_id    text NOT NULL REFERENCES users (user_id),
    created_at bigint NOT NULL
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE sessions (
    session_hash bytea PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (user_id),
    created_at   bigint NOT NULL,
    last_used_at bigint NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Rooms and webhooks are soft-deleted: their tombstones keep old webhook
-- URLs answering 404 rather than 403. No foreign key cascades for the
-- same reason.
CREATE TABLE rooms (
    room_id    text PRIMARY KEY,
    name       text NOT NULL,
    created_by text NOT NULL,
    created_at bigint NOT NULL,
    deleted_at bigint
);

CREATE TABLE memberships (
    room_id       text NOT NULL REFERENCES rooms (room_id),
    user_id       text NOT NULL REFERENCES users (user_id),
    role          text NOT NULL,
    created_at    bigint NOT NULL,
    last_read_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

CREATE TABLE webhooks (
    webhook_id   text PRIMARY KEY,
    room_id      text NOT NULL REFERENCES rooms (room_id),
    name         text NOT NULL,
    token_hash   bytea NOT NULL,
    token_seal   bytea NOT NULL,
    created_at   bigint NOT NULL,
    last_used_at bigint,
    deleted_at   bigint
);
CREATE INDEX webhooks_room ON webhooks (room_id);

-- Every token hash a webhook ever had, current or retired.
CREATE TABLE webhook_tokens (
    token_hash bytea PRIMARY KEY,
    webhook_id text NOT NULL REFERENCES webhooks (webhook_id),
    created_at bigint NOT NULL
);

-- The one row that orders the message log. value is the newest seq
-- handed out and last_created_at the CreatedAt (ms) of that message.
-- Every AppendMessages transaction locks this row first and updates it
-- last, so batches commit one after another and seq is commit order
-- (a sequence would hand out numbers that commit out of order). The
-- operations that can break an append's condition (regenerating or
-- deleting a webhook, deleting a room, removing a member) take the row
-- in share mode first, so they too fall strictly before or after each
-- batch. See messages.go.
CREATE TABLE seq_counter (
    id              smallint PRIMARY KEY CHECK (id = 1),
    value           bigint NOT NULL,
    last_created_at bigint NOT NULL
);
INSERT INTO seq_counter (id, value, last_created_at) VALUES (1, 0, 0);

-- seq is the commit order of messages across the instance, assigned from
-- seq_counter (never from a sequence).
CREATE TABLE messages (
    seq          bigint PRIMARY KEY,
    message_id   text NOT NULL UNIQUE,
    room_id      text NOT NULL REFERENCES rooms (room_id),
    sender_type  text NOT NULL,
    sender_id    text NOT NULL,
    sender_name  text NOT NULL,
    display_name text NOT NULL,
    content      text NOT NULL,
    format       text NOT NULL,
    html         text NOT NULL,
    mentions     text NOT NULL,
    created_at   bigint NOT NULL
);
CREATE INDEX messages_room_seq ON messages (room_id, seq);

CREATE TABLE idempotency_keys (
    sender_id    text NOT NULL,
    key          text NOT NULL,
    content_hash bytea NOT NULL,
    message_id   text NOT NULL,
    room_id      text NOT NULL,
    created_at   bigint NOT NULL,
    PRIMARY KEY (sender_id, key)
);

-- Audit events are ordered by seq within a room; the id is handed out as
-- the API's NextToken.
CREATE TABLE audit_events (
    seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    audit_event_id text NOT NULL UNIQUE,
    room_id        text NOT NULL,
    action         text NOT NULL,
    actor_id       text NOT NULL,
    target_id      text NOT NULL,
    created_at     bigint NOT NULL
);
CREATE INDEX audit_events_room ON audit_events (room_id, seq);

-- A notification tells a member that a message mentions them. message_seq
-- orders them with the messages in the live event stream.
CREATE TABLE notifications (
    notification_id text PRIMARY KEY,
    user_id         text NOT NULL,
    message_id      text NOT NULL,
    message_seq     bigint NOT NULL,
    room_id         text NOT NULL,
    reason          text NOT NULL,
    read            boolean NOT NULL DEFAULT false,
    created_at      bigint NOT NULL
);
CREATE INDEX notifications_user_seq ON notifications (user_id, message_seq);
CREATE INDEX notifications_user_room_unread ON notifications (user_id, room_id) WHERE NOT read;

-- +goose Down
DROP TABLE notifications;
DROP TABLE audit_events;
DROP TABLE idempotency_keys;
DROP TABLE messages;
DROP TABLE seq_counter;
DROP TABLE webhook_tokens;
DROP TABLE webhooks;
DROP TABLE memberships;
DROP TABLE rooms;
DROP TABLE sessions;
DROP TABLE api_tokens;
DROP TABLE users;
DROP TABLE meta;
