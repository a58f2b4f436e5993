-- +goose Up
-- The unread-mention index was keyed by (user, room): with many rooms,
-- every stored mention inserted into a page at random, about 1.5 pages
-- written per message (BenchmarkWALFramesPerMessage). Keyed by the
-- user's message order it grows at its end. It carries room_id so that
-- counting a room's unread mentions and marking a room read need not
-- visit the table; both now scan the user's unread mentions, which are
-- few for anyone who reads them.
DROP INDEX notifications_user_room_unread;
CREATE INDEX notifications_user_unread ON notifications (user_id, message_seq, room_id) WHERE read = 0;

-- +goose Down
DROP INDEX notifications_user_unread;
CREATE INDEX notifications_user_room_unread ON notifications (user_id, room_id) WHERE read = 0;
