-- +goose Up
-- A notification tells a member that a message mentions them. message_seq
-- orders them with the messages in the live event stream.
CREATE TABLE notifications (
    notification_id TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    message_seq     INTEGER NOT NULL,
    room_id         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    read            INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE INDEX notifications_user_seq ON notifications (user_id, message_seq);
CREATE INDEX notifications_user_room_unread ON notifications (user_id, room_id) WHERE read = 0;

-- +goose Down
DROP TABLE notifications;
