package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/carillon-chat/carillon"
)

// sampleContent is Amazon Chime's own sample webhook message. Its @All and
// @Present are accepted only in rooms of at most 50 members (SPEC §1),
// which the ingest rooms are.
const sampleContent = "Message Body emoji test: :) :+1: link test: http://sample.com email test: marymajor@example.com All Members: @All All Present Members: @Present"

// quietContent is the sample without its room-wide mentions, for rooms
// with more than 50 members (fan-out, reads).
const quietContent = "Message Body emoji test: :) :+1: link test: http://sample.com email test: marymajor@example.com"

func contentBody(content string) []byte {
	b, _ := json.Marshal(map[string]string{"Content": content})
	return b
}

// newLoadTransport is the transport of the load: keep-alive connections
// to one host, as many idle ones kept as there are connections, and no
// more than conns open at once (extra requests wait for a free
// connection inside the transport; an open-loop run counts that wait as
// latency).
func newLoadTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:                 nil, // loopback load never goes through a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns * 2,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 0, // the client's Timeout bounds the whole request
		ExpectContinueTimeout: 0,
		ForceAttemptHTTP2:     false,
	}
}

// classifyErr names a transport error without its URL (webhook URLs hold
// secret tokens and must not end up in a report).
func classifyErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no free local port (EADDRNOTAVAIL)"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by server (EOF)"
	}
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80] + "…"
	}
	return msg
}

// bufPool holds response-body buffers.
var bufPool = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 512)) }}

// maxBody bounds how much of a response is read.
const maxBody = 1 << 20

// postTarget is one URL requests are posted to: a webhook URL, or a
// user's POST /api/v1/rooms/{id}/messages.
type postTarget struct {
	url    string
	auth   string // Authorization header value, "" for webhooks
	roomID string // expected RoomId of the answer, "" to accept any
	status int    // expected status: 200 for webhooks, 201 for user posts
	// next is when this target may be posted to again (unix ns): the
	// client-side pacing that keeps each webhook under its rate limit.
	next atomic.Int64
}

// poster posts a fixed body round-robin over targets, each at most once
// per gap.
type poster struct {
	client  *http.Client
	targets []*postTarget
	body    []byte
	gap     time.Duration
	// onOK, when set, is called with every accepted answer's MessageId,
	// the time the request was sent and the time its answer was read.
	onOK func(messageID string, sent, answered time.Time)
	// paceWaits counts requests that had to wait for their target.
	paceWaits atomic.Uint64
}

// pace reserves the next free slot of t and waits for it. It returns
// false when the slot lies after notAfter (nothing reserved then).
func (p *poster) pace(ctx context.Context, t *postTarget, notAfter time.Time) bool {
	if p.gap <= 0 {
		return true
	}
	for {
		now := time.Now().UnixNano()
		nx := t.next.Load()
		slot := max(now, nx)
		if !notAfter.IsZero() && slot >= notAfter.UnixNano() {
			return false
		}
		if !t.next.CompareAndSwap(nx, slot+int64(p.gap)) {
			continue
		}
		if wait := time.Duration(slot - now); wait > 0 {
			p.paceWaits.Add(1)
			tm := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				tm.Stop()
				return false
			case <-tm.C:
			}
		}
		return true
	}
}

// shot is the poster's Shot: round-robin target by sequence number.
func (p *poster) shot(ctx context.Context, c Call) Outcome {
	t := p.targets[c.Seq%uint64(len(p.targets))]
	if !p.pace(ctx, t, c.NotAfter) {
		return Outcome{Skipped: true}
	}
	return p.send(ctx, t)
}

func (p *poster) send(ctx context.Context, t *postTarget) Outcome {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(p.body))
	if err != nil {
		return Outcome{Err: "bad request: " + classifyErr(err)}
	}
	req.Header["Content-Type"] = []string{"application/json"}
	if t.auth != "" {
		req.Header["Authorization"] = []string{t.auth}
	}
	sent := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return Outcome{Err: classifyErr(err), Sent: sent}
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	_, rerr := buf.ReadFrom(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	o := Outcome{Status: resp.StatusCode, Sent: sent}
	if rerr != nil {
		o = Outcome{Err: "reading body: " + classifyErr(rerr), Sent: sent}
	} else if resp.StatusCode == t.status {
		id, bad := verifyAccepted(buf.Bytes(), t.roomID)
		if bad != "" {
			o.Bad = bad
		} else {
			o.OK = true
			if p.onOK != nil {
				p.onOK(id, sent, time.Now())
			}
		}
	} else if !json.Valid(buf.Bytes()) {
		o.Bad = fmt.Sprintf("status %d with a body that is not JSON", resp.StatusCode)
	}
	bufPool.Put(buf)
	return o
}

// verifyAccepted checks a 200/201 body: {"MessageId": uuid, "RoomId": uuid}
// (RoomId equal to room when room is not ""). It returns the MessageId,
// or why the body is wrong.
func verifyAccepted(body []byte, room string) (string, string) {
	var a struct{ MessageId, RoomId string }
	if err := json.Unmarshal(body, &a); err != nil {
		return "", "accepted body is not JSON: " + err.Error()
	}
	if !carillon.ValidID(a.MessageId) {
		return "", fmt.Sprintf("accepted body has no MessageId: %.120s", body)
	}
	if !carillon.ValidID(a.RoomId) {
		return "", fmt.Sprintf("accepted body has no RoomId: %.120s", body)
	}
	if room != "" && a.RoomId != room {
		return "", fmt.Sprintf("accepted body names room %s, want %s", a.RoomId, room)
	}
	return a.MessageId, ""
}

// baselineServer is a bare net/http handler that reads and discards the
// body and answers a fixed Chime-style 200: the ceiling of what any Go
// HTTP server can do on this machine with this client.
type baselineServer struct {
	URL  string
	srv  *http.Server
	done chan struct{}
}

const baselineRoomID = "00000000-0000-4000-8000-000000000001"

var baselineBody = []byte(`{"MessageId":"00000000-0000-4000-8000-000000000000","RoomId":"` + baselineRoomID + `"}`)

func startBaseline(addr string) (*baselineServer, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Write(baselineBody)
	})
	b := &baselineServer{URL: "http://" + ln.Addr().String(), done: make(chan struct{}),
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}}
	go func() { b.srv.Serve(ln); close(b.done) }()
	return b, nil
}

func (b *baselineServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.srv.Shutdown(ctx)
	<-b.done
}

// joinURL puts the path and query of a webhook URL under base, so that a
// server whose public URL differs from the address used here (localhost
// vs 127.0.0.1, a proxy) is still reached at base.
func joinURL(base, webhookURL string) (string, error) {
	i := strings.Index(webhookURL, "/incomingwebhooks/")
	if i < 0 {
		return "", fmt.Errorf("not a webhook URL: %.40q…", webhookURL)
	}
	return strings.TrimRight(base, "/") + webhookURL[i:], nil
}
