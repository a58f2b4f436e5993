package server

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/carillon-chat/carillon"
)

// Live event streams (SPEC §4): one Server-Sent Events stream per client for
// all of the caller's rooms.
const (
	keepAliveInterval = 10 * time.Second // SPEC: at least every 15 s
	streamWriteWait   = 10 * time.Second
	replayPage        = 500
	maxBurst          = 256 // live events written between two flushes
	// replayLimit bounds what a reconnecting stream replays; a client that
	// missed more gets a reset and reloads its state.
	replayLimit = 20000
)

// eventID is the SSE id of a message event ("<seq>") or of a notification
// event ("<seq>n", which follows its message).
func eventID(seq int64, notification bool) string {
	id := strconv.FormatInt(seq, 10)
	if notification {
		id += "n"
	}
	return id
}

func parseEventID(id string) (carillon.EventPosition, bool) {
	var pos carillon.EventPosition
	if s, ok := strings.CutSuffix(id, "n"); ok {
		pos.Notification = true
		id = s
	}
	seq, err := strconv.ParseInt(id, 10, 64)
	if err != nil || seq < 0 {
		return pos, false
	}
	pos.Seq = seq
	return pos, true
}

// stream is one client's event stream.
type stream struct {
	w     http.ResponseWriter
	rc    *http.ResponseController
	user  string
	rooms map[string]bool
	// delivered is the last message and notification position written,
	// to drop live events already replayed.
	lastMessage, lastNotification int64
	unflushed                     bool
}

func (st *stream) write(id, event string, data []byte) error {
	var b bytes.Buffer
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	b.WriteString("event: " + event + "\ndata: ")
	b.Write(data)
	b.WriteString("\n\n")
	st.rc.SetWriteDeadline(time.Now().Add(streamWriteWait))
	_, err := st.w.Write(b.Bytes())
	st.unflushed = true
	return err
}

// flush sends what was written since the last flush.
func (st *stream) flush() error {
	if !st.unflushed {
		return nil
	}
	st.unflushed = false
	st.rc.SetWriteDeadline(time.Now().Add(streamWriteWait))
	return st.rc.Flush()
}

// wants routes a live event to this stream, keeping its room set current.
func (st *stream) wants(ev *carillon.Event) bool {
	if ev.Joined == st.user {
		st.rooms[ev.RoomID] = true
	}
	if ev.Left == st.user {
		delete(st.rooms, ev.RoomID)
		return true // the member learns of its own removal
	}
	if ev.UserIDs != nil {
		for _, id := range ev.UserIDs {
			if id == st.user {
				return true
			}
		}
		return false
	}
	return ev.RoomID != "" && st.rooms[ev.RoomID]
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, c *caller) error {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	// The stream outlives the server's read timeout.
	rc.SetReadDeadline(time.Time{})

	// Subscribe first, then replay from storage: nothing committed in
	// between can be missed, and live duplicates are dropped by position.
	events, cancel := s.cfg.Broker.Subscribe(c.UserID)
	defer cancel()
	roomIDs, err := s.store.RoomIDsOfUser(ctx, c.UserID)
	if err != nil {
		return err
	}
	st := &stream{w: w, rc: rc, user: c.UserID, rooms: make(map[string]bool, len(roomIDs))}
	for _, id := range roomIDs {
		st.rooms[id] = true
	}
	disconnect, err := s.cfg.Presence.Connect(ctx, c.UserID)
	if err != nil {
		return err
	}
	defer disconnect()
	defer s.cfg.Metrics.StreamOpened()()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte(": connected\n\n")); err != nil {
		return nil
	}
	rc.Flush()

	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("lastEventId")
	}
	if last != "" {
		if err := s.replay(ctx, st, last); err != nil || st.flush() != nil {
			s.log.Debug("event stream ended during replay", "err", err)
			return nil
		}
	} else if s.cfg.OrderFromStore {
		// Live only, read from storage: start at the newest commit.
		newest, err := s.store.NewestSeq(ctx)
		if err != nil {
			return nil
		}
		st.lastMessage, st.lastNotification = newest, newest
	} else {
		// Live only: the first event written is whatever comes next.
		st.lastMessage, st.lastNotification = -1, -1
	}

	keepAlive := time.NewTicker(keepAliveInterval)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-keepAlive.C:
			rc.SetWriteDeadline(time.Now().Add(streamWriteWait))
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return nil
			}
			if rc.Flush() != nil {
				return nil
			}
		case ev, ok := <-events:
			if !ok {
				return nil // dropped as too slow, or shutting down
			}
			// Write this event and whatever else is already waiting, then
			// flush once: one write call for a burst, not one per event.
		burst:
			for n := 1; ; n++ {
				if err := s.deliver(ctx, st, ev); err != nil {
					return nil
				}
				if n == maxBurst {
					break
				}
				select {
				case ev, ok = <-events:
					if !ok {
						break burst
					}
				default:
					break burst
				}
			}
			if st.flush() != nil || !ok {
				return nil
			}
		}
	}
}

// deliver writes one live event to a stream if it concerns it.
func (s *Server) deliver(ctx context.Context, st *stream, ev *carillon.Event) error {
	if !st.wants(ev) {
		return nil
	}
	var id string
	switch ev.Type {
	case carillon.EventMessage, carillon.EventNotification:
		last := st.lastMessage
		if ev.Type == carillon.EventNotification {
			last = st.lastNotification
		}
		if ev.Seq <= last {
			return nil // replayed already
		}
		if s.cfg.OrderFromStore {
			// Events from several nodes may arrive out of commit order;
			// storage has them in order and without gaps.
			return s.catchUp(ctx, st)
		}
		if ev.Type == carillon.EventMessage {
			st.lastMessage = ev.Seq
		} else {
			st.lastNotification = ev.Seq
		}
		id = eventID(ev.Seq, ev.Type == carillon.EventNotification)
	}
	return st.write(id, ev.Type, ev.Data)
}

// replay writes what the client missed since the Last-Event-ID, or a
// reset when that is unknown or too much.
func (s *Server) replay(ctx context.Context, st *stream, last string) error {
	pos, ok := parseEventID(last)
	newest, err := s.store.NewestSeq(ctx)
	if err != nil {
		return err
	}
	reset := func() error {
		st.lastMessage, st.lastNotification = newest, newest
		return st.write("", carillon.EventReset, []byte("{}"))
	}
	if !ok || pos.Seq > newest {
		return reset()
	}
	st.lastMessage, st.lastNotification = pos.Seq, pos.Seq
	if !pos.Notification {
		st.lastNotification = pos.Seq - 1
	}
	var pending []carillon.ReplayItem
	for total := 0; ; {
		items, err := s.store.Replay(ctx, st.user, pos, replayPage)
		if err != nil {
			return err
		}
		total += len(items)
		if total > replayLimit {
			return reset()
		}
		pending = append(pending, items...)
		if len(items) == 0 {
			break
		}
		lastItem := items[len(items)-1]
		if lastItem.Message != nil {
			pos = carillon.EventPosition{Seq: lastItem.Message.Seq}
		} else {
			pos = carillon.EventPosition{Seq: lastItem.Notification.MessageSeq, Notification: true}
		}
	}
	for _, it := range pending {
		if err := st.writeItem(it); err != nil {
			return err
		}
	}
	return nil
}

// writeItem writes a stored message or notification and moves the
// stream's position past it.
func (st *stream) writeItem(it carillon.ReplayItem) error {
	if m := it.Message; m != nil {
		data, _ := json.Marshal(m)
		st.lastMessage = m.Seq
		return st.write(eventID(m.Seq, false), carillon.EventMessage, data)
	}
	n := it.Notification
	data, _ := json.Marshal(n.JSON())
	st.lastNotification = n.MessageSeq
	return st.write(eventID(n.MessageSeq, true), carillon.EventNotification, data)
}

// position is where the stream stands in commit order.
func (st *stream) position() carillon.EventPosition {
	return carillon.EventPosition{Seq: st.lastMessage, Notification: st.lastNotification >= st.lastMessage}
}

// catchUp writes, in commit order, what was committed after the stream's
// position: the live path of a stream whose events come from many nodes.
func (s *Server) catchUp(ctx context.Context, st *stream) error {
	for {
		items, err := s.store.Replay(ctx, st.user, st.position(), replayPage)
		if err != nil {
			return err
		}
		for _, it := range items {
			if err := st.writeItem(it); err != nil {
				return err
			}
		}
		if len(items) < replayPage {
			return nil
		}
	}
}
