package server

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
	// streamLinger is the mean least time between two writes of a
	// stream: an event after a quiet spell goes out at once, and in a
	// busy room a stream writes the events of the last streamLinger in
	// one system call instead of one each (2,000 streams at 100
	// messages/s are 200,000 writes a second otherwise). After each
	// write a stream draws its linger from streamLinger ± lingerSpread,
	// so the streams of a room, which all write the first event after a
	// quiet spell at the same instant, do not go on waking all together.
	// 40 ms rather than 25: on a 2-core machine, 2,000 streams at 100
	// messages/s then spend a fifth less CPU, and in a slow hour of that
	// machine the last stream had a message after 72–106 ms (p99) instead
	// of 115–233 ms (docs/performance.md, seventh set).
	streamLinger = 40 * time.Millisecond
	lingerSpread = streamLinger / 5
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
	out   streamOutput
	user  string
	rooms map[string]bool
	// delivered is the last message and notification position written,
	// to drop live events already replayed.
	lastMessage, lastNotification int64
	// pending holds what was written since the last flush, in a buffer
	// taken from pendingBuffers: an idle stream holds none.
	pending *[]byte
}

// pendingBuffers are reused between flushes of all streams: a busy room
// would otherwise allocate one per stream and write.
var pendingBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func (st *stream) buffer() []byte {
	if st.pending == nil {
		st.pending = pendingBuffers.Get().(*[]byte)
	}
	return *st.pending
}

func (st *stream) write(id, event string, data []byte) error {
	b := st.buffer()
	if id != "" {
		b = append(b, "id: "...)
		b = append(b, id...)
		b = append(b, '\n')
	}
	b = append(b, "event: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	b = append(b, "\n\n"...)
	*st.pending = b
	if len(b) >= 64<<10 {
		return st.flush() // a long replay goes out as it is read
	}
	return nil
}

// comment queues an SSE comment line (": text").
func (st *stream) comment(text string) {
	b := st.buffer()
	b = append(b, ": "...)
	b = append(b, text...)
	b = append(b, "\n\n"...)
	*st.pending = b
}

// hasPending reports whether anything waits for a flush.
func (st *stream) hasPending() bool { return st.pending != nil && len(*st.pending) > 0 }

// flush sends what was written since the last flush in one write.
func (st *stream) flush() error {
	if st.pending == nil {
		return nil
	}
	var err error
	if b := *st.pending; len(b) > 0 {
		err = st.out.send(b)
	}
	if cap(*st.pending) <= 256<<10 { // a huge replay's buffer is not kept
		*st.pending = (*st.pending)[:0]
		pendingBuffers.Put(st.pending)
	}
	st.pending = nil
	return err
}

// streamOutput is where a stream's bytes go: the hijacked connection of an
// HTTP/1.x stream, or the ResponseWriter otherwise (HTTP/2).
type streamOutput interface {
	send(p []byte) error // write p and push it to the client now
	close()
}

// responseOutput streams through net/http: the handler's goroutine and the
// connection's buffers stay with the stream.
type responseOutput struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (o responseOutput) send(p []byte) error {
	o.rc.SetWriteDeadline(time.Now().Add(streamWriteWait))
	if _, err := o.w.Write(p); err != nil {
		return err
	}
	return o.rc.Flush()
}

func (o responseOutput) close() {}

// connOutput writes straight to a hijacked HTTP/1.x connection. An idle
// stream then costs its own small goroutines and no net/http buffers:
// 10,000 open streams fit in the memory budget of docs/performance.md.
type connOutput struct {
	conn     net.Conn
	deadline time.Time // the write deadline set last
}

func (o *connOutput) send(p []byte) error {
	// Moving a deadline updates a runtime timer: once per write it was ~3 %
	// of the CPU of a 2,000-stream fan-out. It moves only once half the
	// wait is used up, so a write still gets between half and all of it.
	if now := time.Now(); o.deadline.Sub(now) < streamWriteWait/2 {
		o.deadline = now.Add(streamWriteWait)
		o.conn.SetWriteDeadline(o.deadline)
	}
	_, err := o.conn.Write(p)
	return err
}

func (o *connOutput) close() { o.conn.Close() }

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
		// The broker passes a subscriber only the user-targeted events
		// naming its user: no need to look through the list (a presence
		// change names every roommate, thousands in a big room).
		return true
	}
	return ev.RoomID != "" && st.rooms[ev.RoomID]
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, c *caller) error {
	// Subscribe first, then replay from storage: nothing committed in
	// between can be missed, and live duplicates are dropped by position.
	events, cancel := s.cfg.Broker.Subscribe(c.UserID)
	roomIDs, err := s.store.RoomIDsOfUser(r.Context(), c.UserID)
	if err != nil {
		cancel()
		return err
	}
	st := &stream{user: c.UserID, rooms: make(map[string]bool, len(roomIDs))}
	for _, id := range roomIDs {
		st.rooms[id] = true
	}
	disconnect, err := s.cfg.Presence.Connect(r.Context(), c.UserID)
	if err != nil {
		cancel()
		return err
	}
	streamClosed := s.cfg.Metrics.StreamOpened()
	end := func() {
		streamClosed()
		disconnect()
		cancel()
	}

	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("lastEventId")
	}
	ctx, out, detached := s.openStream(w, r)
	st.out = out
	if !detached {
		defer out.close()
		defer end()
		s.runStream(ctx, st, events, last)
		return nil
	}
	// The connection is the stream's now: serve it on a goroutine of its
	// own and let net/http's goroutine and buffers go.
	go func() {
		defer out.close()
		defer end()
		s.runStream(ctx, st, events, last)
	}()
	return nil
}

// openStream answers 200 with the event-stream headers. An HTTP/1.x
// connection is hijacked (detached is true): its context then ends when
// the client closes it, noticed by a reader goroutine.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request) (ctx context.Context, out streamOutput, detached bool) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	if r.ProtoMajor == 1 && r.Method == http.MethodGet { // HEAD: net/http drops the body
		if conn, _, err := rc.Hijack(); err == nil {
			conn.SetDeadline(time.Time{})
			var head bytes.Buffer
			head.WriteString("HTTP/1.1 200 OK\r\n")
			h.Set("Connection", "close") // the body ends when the stream does
			h.Write(&head)
			head.WriteString("\r\n")
			out := &connOutput{conn: conn, deadline: time.Now().Add(streamWriteWait)}
			conn.SetWriteDeadline(out.deadline)
			conn.Write(head.Bytes()) // a failure shows at the first flush
			ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
			go watchClosed(conn, cancel)
			return ctx, out, true
		}
	}
	// The stream outlives the server's read timeout.
	rc.SetReadDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	return r.Context(), responseOutput{w: w, rc: rc}, false
}

// watchClosed cancels when the client closes its connection (or sends
// anything: a stream's client only listens).
func watchClosed(conn net.Conn, cancel context.CancelFunc) {
	var b [1]byte
	conn.Read(b[:])
	cancel()
}

// runStream writes the replay after the client's last event id (none:
// live only), then live events and keep-alives until the client leaves,
// the subscription ends or a write fails.
func (s *Server) runStream(ctx context.Context, st *stream, events <-chan *carillon.Event, last string) {
	st.comment("connected")
	if st.flush() != nil {
		return
	}
	if last != "" {
		if err := s.replay(ctx, st, last); err != nil || st.flush() != nil {
			s.log.Debug("event stream ended during replay", "err", err)
			return
		}
	} else {
		// Live only: the first event written is whatever comes next.
		st.lastMessage, st.lastNotification = -1, -1
	}

	keepAlive := time.NewTicker(keepAliveInterval)
	defer keepAlive.Stop()
	linger := time.NewTimer(streamLinger)
	linger.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keepAlive.C:
			st.comment("keep-alive")
			if st.flush() != nil {
				return
			}
			continue
		case ev, ok := <-events:
			if !ok {
				return // dropped as too slow, or shutting down
			}
			if err := st.deliver(ev); err != nil {
				return
			}
			if !st.hasPending() {
				continue // not this stream's
			}
		}
		// Write this event with whatever else is queued, up to maxBurst.
		ok := true
		n := 1
		for ; n < maxBurst && ok && len(events) > 0; n++ {
			var ev *carillon.Event
			if ev, ok = <-events; ok {
				if err := st.deliver(ev); err != nil {
					return
				}
			}
		}
		if st.flush() != nil || !ok {
			return
		}
		// A write cut at maxBurst leaves a backlog that goes out without
		// waiting: else a flood would be held to maxBurst events per
		// streamLinger and the stream dropped as slow.
		if n == maxBurst && len(events) > 0 {
			continue
		}
		// Then the stream sleeps out its linger, the events published
		// meanwhile queuing in its channel without waking it: a publish
		// to a room of 2,000 streams would otherwise make 2,000
		// goroutines runnable at once, ahead of everything else.
		linger.Reset(streamLinger - lingerSpread + rand.N(2*lingerSpread))
		select {
		case <-linger.C:
		case <-ctx.Done():
			return
		}
	}
}

// deliver writes one live event to a stream if it concerns it.
func (st *stream) deliver(ev *carillon.Event) error {
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
		if ev.Type == carillon.EventMessage {
			st.lastMessage = ev.Seq
		} else {
			st.lastNotification = ev.Seq
		}
		id = eventID(ev.Seq, ev.Type == carillon.EventNotification)
	}
	if ev.Batch != nil {
		for _, data := range ev.Batch {
			if err := st.write(id, ev.Type, data); err != nil {
				return err
			}
		}
		return nil
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
		st.lastMessage = m.Seq
		return st.write(eventID(m.Seq, false), carillon.EventMessage, carillon.MessageEvent(m).Data)
	}
	n := it.Notification
	st.lastNotification = n.MessageSeq
	return st.write(eventID(n.MessageSeq, true), carillon.EventNotification, carillon.NotificationEvent(n).Data)
}
