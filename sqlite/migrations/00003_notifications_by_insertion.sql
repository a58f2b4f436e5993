-- +goose Up
-- Notifications were keyed by their random id, so every stored mention
-- wrote a random page of the table. They are now stored in insertion order
-- (rowid) and found through the user's index; their ids stay random.
CREATE TABLE notifications_new (
    seq             INTEGER PRIMARY KEY,
    notification_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    message_seq     INTEGER NOT NULL,
    room_id         TEXT NOT NULL,
    reason          TEXT NOT NULL,
    read            INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
INSERT INTO notifications_new (notification_id, user_id, message_id, message_seq, room_id, reason, read, created_at)
    SELECT notification_id, user_id, message_id, message_seq, room_id, reason, read, created_at
    FROM notifications ORDER BY message_seq;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;
CREATE INDEX notifications_user_seq ON notifications (user_id, message_seq);
CREATE INDEX notifications_user_room_unread ON notifications (user_id, room_id) WHERE read = 0;

-- +goose Down
CREATE UNIQUE INDEX notifications_id ON notifications (notification_id);
