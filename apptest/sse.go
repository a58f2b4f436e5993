package apptest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Event is one Server-Sent Event.
type Event struct {
	ID, Type, Data string
}

// Stream is an open GET /api/v1/events stream.
type Stream struct {
	events chan Event
	cancel context.CancelFunc
	done   chan struct{}
}

// OpenStream opens the caller's event stream, resuming after lastEventID
// when it is not empty. It returns once the server has answered.
func (in *Instance) OpenStream(t testing.TB, token, lastEventID string) *Stream {
	t.Helper()
	s, err := in.TryOpenStream(token, lastEventID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TryOpenStream is OpenStream for a goroutine other than the test's: it
// returns what went wrong, and the caller closes the stream.
func (in *Instance) TryOpenStream(token, lastEventID string) (*Stream, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", in.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	// The stream outlives any client timeout; the transport is the
	// instance's (TLS settings included).
	resp, err := (&http.Client{Transport: in.Client.Transport}).Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open event stream: %w", err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("event stream: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &Stream{events: make(chan Event, 1024), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var ev Event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.Type != "" || ev.Data != "" {
					s.events <- ev
				}
				ev = Event{}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Type = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data += line[6:]
			}
		}
	}()
	return s, nil
}

// Next returns the next event of one of the given types (any type when
// none is given), failing the test after timeout.
func (s *Stream) Next(t testing.TB, timeout time.Duration, types ...string) Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("event stream ended")
			}
			if len(types) == 0 {
				return ev
			}
			for _, ty := range types {
				if ev.Type == ty {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within %v", types, timeout)
		}
	}
}

// None checks that no event of the given types arrives within wait.
func (s *Stream) None(t testing.TB, wait time.Duration, types ...string) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				return
			}
			for _, ty := range types {
				if ev.Type == ty {
					t.Fatalf("unexpected %s event: %s", ev.Type, ev.Data)
				}
			}
		case <-deadline:
			return
		}
	}
}

// Events is the stream's channel of events, closed when the stream ends,
// for tests that read it from a goroutine of their own (Next and None
// must run on the test's goroutine).
func (s *Stream) Events() <-chan Event { return s.events }

// Close ends the stream.
func (s *Stream) Close() {
	s.cancel()
	<-s.done
}
