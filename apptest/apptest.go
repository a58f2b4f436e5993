// Package apptest starts real Carillon servers on loopback for tests, with
// a temporary data directory (a real SQLite file), and gives tests a small
// HTTP client for the API.
package apptest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carillon-chat/carillon/app"
	"github.com/carillon-chat/carillon/secret"
)

// Options tune a test server.
type Options struct {
	WebhookRate  float64 // default 1
	WebhookBurst int     // default 1
	DataDir      string  // default a fresh t.TempDir()
	// HTTP timeouts (app.Config's); zero keeps the production defaults.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	BodyTimeout       time.Duration
	// LogWriter, when set, receives the server's log (text, from debug
	// level up); by default the log is discarded. It must be safe for
	// concurrent writes if read while the server runs.
	LogWriter io.Writer
	// MaxInFlight bounds webhook requests in progress (app.Config's).
	MaxInFlight int
	// TLS serves HTTPS with a self-signed certificate that Client trusts.
	TLS bool
}

// Instance is a running server.
type Instance struct {
	URL        string // base URL, e.g. http://127.0.0.1:41234
	DataDir    string
	AdminToken string
	Client     *http.Client

	stop context.CancelFunc
	done chan error
}

// Start runs a server until the test ends.
func Start(t testing.TB, opts Options) *Instance {
	t.Helper()
	if opts.WebhookRate == 0 {
		opts.WebhookRate = 1
	}
	if opts.WebhookBurst == 0 {
		opts.WebhookBurst = 1
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	inst := &Instance{DataDir: opts.DataDir, AdminToken: "test-admin-token-" + secret.RandomString(32),
		Client: &http.Client{Timeout: 30 * time.Second}, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	inst.stop = cancel
	scheme, certFile, keyFile := "http", "", ""
	if opts.TLS {
		var pool *x509.CertPool
		certFile, keyFile, pool = selfSignedCert(t, t.TempDir())
		scheme, inst.Client = "https", tlsClient(pool)
	}
	ready := make(chan net.Addr, 1)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.LogWriter != nil {
		logger = slog.New(slog.NewTextHandler(opts.LogWriter, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	go func() {
		inst.done <- app.Run(ctx, app.Config{
			Addr: "127.0.0.1:0", DataDir: opts.DataDir, WebhookRate: opts.WebhookRate, WebhookBurst: opts.WebhookBurst,
			AdminEmail: "admin@example.com", AdminToken: inst.AdminToken,
			Logger:            logger,
			Ready:             func(a net.Addr) { ready <- a },
			ReadHeaderTimeout: opts.ReadHeaderTimeout,
			ReadTimeout:       opts.ReadTimeout,
			BodyTimeout:       opts.BodyTimeout,
			MaxInFlight:       opts.MaxInFlight,
			TLSCert:           certFile,
			TLSKey:            keyFile,
		})
	}()
	select {
	case a := <-ready:
		inst.URL = scheme + "://" + a.String()
	case err := <-inst.done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start within 30s")
	}
	t.Cleanup(inst.Stop)
	return inst
}

// Stop shuts the server down gracefully and waits for it.
func (in *Instance) Stop() {
	if in.stop == nil {
		return
	}
	in.stop()
	in.stop = nil
	if err := <-in.done; err != nil {
		panic(fmt.Sprintf("server stopped with error: %v", err))
	}
}

// Response is an HTTP answer with its body read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r *Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v: %q", r.Status, err, r.Body)
	}
	return m
}

// Decode decodes the body into v.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response %d: %v: %q", r.Status, err, r.Body)
	}
}

// Code returns the error body's Code ("" when there is none).
func (r *Response) Code() string {
	var e struct{ Code string }
	json.Unmarshal(r.Body, &e)
	return e.Code
}

// Do sends a request. body may be nil, a string or []byte (sent as is),
// or anything else (sent as JSON). token, when not empty, is sent as a
// bearer token. Extra headers are given as name, value pairs.
func (in *Instance) Do(t testing.TB, method, path, token string, body any, headers ...string) *Response {
	t.Helper()
	resp, err := in.Try(method, path, token, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// Try is Do without a test: it returns transport errors.
func (in *Instance) Try(method, path, token string, body any, headers ...string) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	url := path
	if strings.HasPrefix(path, "/") {
		url = in.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := in.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// Must checks the status of a response.
func Must(t testing.TB, r *Response, status int) *Response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

var userSeq atomic.Int64

// User is a user created for a test.
type User struct {
	ID, Email, Alias, Token string
}

// CreateUser creates a user through the API (as the instance admin).
func (in *Instance) CreateUser(t testing.TB, password string) User {
	t.Helper()
	n := userSeq.Add(1)
	alias := fmt.Sprintf("user%d-%s", n, strings.ToLower(secret.RandomString(6)))
	body := map[string]any{"Email": alias + "@example.com", "FullName": fmt.Sprintf("Test User %d", n)}
	if password != "" {
		body["Password"] = password
	}
	var out struct {
		User  struct{ UserId, Email, Alias string }
		Token string
	}
	Must(t, in.Do(t, "POST", "/api/v1/users", in.AdminToken, body), 201).Decode(t, &out)
	return User{ID: out.User.UserId, Email: out.User.Email, Alias: out.User.Alias, Token: out.Token}
}

// CreateRoom creates a room as the given user and returns its id.
func (in *Instance) CreateRoom(t testing.TB, token, name string) string {
	t.Helper()
	var out struct{ Room struct{ RoomId string } }
	Must(t, in.Do(t, "POST", "/api/v1/rooms", token, map[string]string{"Name": name}), 201).Decode(t, &out)
	return out.Room.RoomId
}

// AddMember adds a user to a room as the given administrator.
func (in *Instance) AddMember(t testing.TB, adminToken, roomID, userID, role string) {
	t.Helper()
	Must(t, in.Do(t, "POST", "/api/v1/rooms/"+roomID+"/memberships", adminToken,
		map[string]string{"MemberId": userID, "Role": role}), 201)
}

// Webhook is a webhook created for a test.
type Webhook struct {
	ID, URL string
}

// CreateWebhook creates a webhook as the given administrator.
func (in *Instance) CreateWebhook(t testing.TB, adminToken, roomID, name string) Webhook {
	t.Helper()
	var out struct {
		Webhook struct{ WebhookId, Url string }
	}
	Must(t, in.Do(t, "POST", "/api/v1/rooms/"+roomID+"/webhooks", adminToken, map[string]string{"Name": name}), 201).Decode(t, &out)
	return Webhook{ID: out.Webhook.WebhookId, URL: out.Webhook.Url}
}

// Messages lists a room's messages oldest first (up to 100).
func (in *Instance) Messages(t testing.TB, token, roomID string) []map[string]any {
	t.Helper()
	var out struct{ Messages []map[string]any }
	Must(t, in.Do(t, "GET", "/api/v1/rooms/"+roomID+"/messages?SortOrder=ASCENDING&MaxResults=100", token, nil), 200).Decode(t, &out)
	return out.Messages
}
