// Package server is Carillon's HTTP layer: the Chime-compatible webhook
// endpoint, the management API under /api/v1, and health checks. Handlers
// return errors; writeError turns every error into the {"Code","Message"}
// body and its status in one place.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/ingest"
	"github.com/carillon-chat/carillon/metrics"
	"github.com/carillon-chat/carillon/secret"
	"github.com/carillon-chat/carillon/webapp"
)

// Config holds what the server needs.
type Config struct {
	Store     carillon.Store
	Ingest    *ingest.Service
	Key       *secret.Key
	PublicURL string // scheme://host[:port][/prefix], no trailing slash
	Logger    *slog.Logger
	Now       func() time.Time
	// Broker delivers live events in commit order (in a cluster, package
	// feed reads them back from storage to make it so).
	Broker   carillon.Broker
	Presence carillon.Presence
	// LoginLimiter limits failed logins per client address and per account.
	LoginLimiter carillon.RateLimiter
	// TrustedProxies may name the client in X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// MaxInFlight bounds the webhook requests handled at once; more are
	// answered 503 at once. Default DefaultMaxInFlight.
	MaxInFlight int
	// Metrics, when set, counts requests and is served at GET /metrics to
	// the instance admin or the holder of MetricsToken.
	Metrics      *metrics.Metrics
	MetricsToken string
	// SecureCookies marks the session cookie Secure (under TLS).
	SecureCookies bool
	// BodyTimeout bounds how long a webhook request body may take to
	// arrive, counted from when the handler starts reading it (default
	// DefaultBodyTimeout). A client that trickles its body in is answered
	// 400 and cut off instead of holding a connection for the server's
	// whole ReadTimeout.
	BodyTimeout time.Duration
}

// DefaultBodyTimeout is Config.BodyTimeout's default.
const DefaultBodyTimeout = 10 * time.Second

// Server serves Carillon's HTTP interface.
type Server struct {
	cfg      Config
	store    carillon.Store
	ingest   *ingest.Service
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	csrf     *http.CrossOriginProtection
	draining atomic.Bool
	inFlight chan struct{} // admission tokens of the webhook endpoint
}

// DefaultMaxInFlight is the default bound on webhook requests in progress:
// enough to keep the single writer's batches full, small enough that a
// request admitted under overload still waits little.
const DefaultMaxInFlight = 1024

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	s := &Server{cfg: cfg, store: cfg.Store, ingest: cfg.Ingest, log: cfg.Logger, now: cfg.Now,
		mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection(), inFlight: make(chan struct{}, cfg.MaxInFlight)}
	s.routes()
	return s
}

// SetDraining turns readiness off while the server shuts down.
func (s *Server) SetDraining() { s.draining.Store(true) }

// handlerFunc is the shape of every API handler.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) routes() {
	// Every path under /incomingwebhooks/ and every method: the endpoint
	// answers all of them itself, in JSON.
	s.mux.HandleFunc("/incomingwebhooks/", s.handleWebhook)
	s.mux.HandleFunc("/incomingwebhooks", s.handleWebhook)

	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"Status": "ok"})
	})
	s.mux.Handle("GET /readyz", s.handle(s.handleReady))
	s.mux.Handle("GET /metrics", s.handle(s.handleMetrics))

	s.mux.Handle("POST /api/v1/sessions", s.handle(s.handleLogin))
	for _, rt := range s.apiRoutes() {
		s.mux.Handle(rt.pattern, s.handle(s.authed(rt.handler)))
	}

	// The web app (SPEC §5): its shell for the page routes the client-side
	// router knows, and its static assets. ("GET" patterns also take HEAD.)
	app := webapp.Handler()
	for _, pattern := range []string{"GET /{$}", "GET /login", "GET /rooms/{RoomId}", "GET /assets/"} {
		s.mux.Handle(pattern, app)
	}
}

const eventsRoute = "GET /api/v1/events"

type apiRoute struct {
	pattern string
	handler authedFunc
}

// apiRoutes is every authenticated endpoint of the management API.
func (s *Server) apiRoutes() []apiRoute {
	return []apiRoute{
		{"DELETE /api/v1/sessions", s.handleLogout},

		{"POST /api/v1/users", s.handleCreateUser},
		{"GET /api/v1/users/me", s.handleGetMe},
		{"PATCH /api/v1/users/me", s.handlePatchMe},
		{"PATCH /api/v1/users/{UserId}", s.handlePatchUser},

		{"POST /api/v1/rooms", s.handleCreateRoom},
		{"GET /api/v1/rooms", s.handleListRooms},
		{"GET /api/v1/rooms/{RoomId}", s.handleGetRoom},
		{"DELETE /api/v1/rooms/{RoomId}", s.handleDeleteRoom},
		{"POST /api/v1/rooms/{RoomId}/read", s.handleMarkRead},

		{"POST /api/v1/rooms/{RoomId}/memberships", s.handleAddMember},
		{"GET /api/v1/rooms/{RoomId}/memberships", s.handleListMembers},
		{"PATCH /api/v1/rooms/{RoomId}/memberships/{MemberId}", s.handleSetRole},
		{"DELETE /api/v1/rooms/{RoomId}/memberships/{MemberId}", s.handleRemoveMember},

		{"POST /api/v1/rooms/{RoomId}/webhooks", s.handleCreateWebhook},
		{"GET /api/v1/rooms/{RoomId}/webhooks", s.handleListWebhooks},
		{"PATCH /api/v1/rooms/{RoomId}/webhooks/{WebhookId}", s.handleRenameWebhook},
		{"POST /api/v1/rooms/{RoomId}/webhooks/{WebhookId}/regenerate", s.handleRegenerateWebhook},
		{"DELETE /api/v1/rooms/{RoomId}/webhooks/{WebhookId}", s.handleDeleteWebhook},

		{"GET /api/v1/rooms/{RoomId}/messages", s.handleListMessages},
		{"POST /api/v1/rooms/{RoomId}/messages", s.handlePostMessage},

		{"GET /api/v1/rooms/{RoomId}/audit", s.handleAudit},

		{"GET /api/v1/notifications", s.handleListNotifications},
		{"POST /api/v1/notifications/read", s.handleReadNotifications},

		{eventsRoute, s.handleEvents},
	}
}

// APIRoutes lists the patterns of every authenticated API endpoint, so that
// tests can check each one is covered.
func APIRoutes() []string {
	var s Server
	var out []string
	for _, rt := range s.apiRoutes() {
		out = append(out, rt.pattern)
	}
	return out
}

// routeMethods are tried to tell a wrong method (405) from an unknown path.
var routeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut}

// ServeHTTP routes a request. Requests no route takes get a JSON 404 or
// 405 rather than the mux's plain-text answers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Metrics == nil {
		s.serve(w, r)
		return
	}
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.serve(rec, r)
	route := r.Pattern // set by the mux on the request it routed
	switch {
	case route != "":
	case strings.HasPrefix(r.URL.Path, "/incomingwebhooks"):
		route = "POST /incomingwebhooks/{WebhookId}"
	default:
		route = "unmatched"
	}
	s.cfg.Metrics.Request(route, rec.status, time.Since(start), route != eventsRoute)
}

// statusRecorder remembers the status a handler answered with. Unwrap lets
// http.ResponseController reach the connection's flusher and deadlines.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (rec *statusRecorder) WriteHeader(status int) {
	if !rec.wroteHeader {
		rec.status, rec.wroteHeader = status, true
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *statusRecorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

// serve routes a request.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// API answers are data, never documents: nothing may run or load in
	// one opened directly. The web app's handler replaces this policy
	// with its own for pages and assets.
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	// Every path under /incomingwebhooks/ is the webhook endpoint's to
	// answer (SPEC §1), unclean ones ("//", "/./", "/../") included: the
	// mux would answer those with a plain-text redirect carrying the token.
	if r.URL.Path == "/incomingwebhooks" || strings.HasPrefix(r.URL.Path, webhookPrefix) {
		s.handleWebhook(w, r)
		return
	}
	// The mux would answer an unclean API path ("/api/v1//rooms",
	// "/api/v1/x/../rooms") with an HTML redirect; under /api/ every
	// answer is JSON (SPEC §3), and such a path names no endpoint.
	if strings.HasPrefix(r.URL.Path, "/api/") && !isCleanPath(r.URL.Path) {
		writeError(w, carillon.Errorf(carillon.ENotFound, "No such endpoint: %s. Paths have no empty, \".\" or \"..\" segments.", r.URL.Path))
		return
	}
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	var allow []string
	for _, m := range routeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		h.Set("Allow", strings.Join(allow, ", "))
		writeError(w, carillon.Errorf(carillon.EMethodNotAllowed, "%s is not allowed here; use %s.", r.Method, strings.Join(allow, " or ")))
		return
	}
	writeError(w, carillon.Errorf(carillon.ENotFound, "No such endpoint: %s.", r.URL.Path))
}

// isCleanPath reports whether p has no empty, "." or ".." segments (a
// trailing slash allowed).
func isCleanPath(p string) bool {
	c := path.Clean(p)
	return p == c || p == c+"/"
}

// handle adapts a handlerFunc: its error becomes the JSON error answer.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.logError(r, err)
			writeError(w, err)
		}
	})
}

// logError logs errors the user cannot fix: internal ones and outages.
func (s *Server) logError(r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client went away (or timed out) while its request waited:
		// nothing failed on this side.
		s.log.Debug("request abandoned by the client", "method", r.Method, "path", redactedPath(r), "err", err)
		return
	}
	switch carillon.ErrorCode(err) {
	case carillon.EInternal:
		s.log.Error("internal error", "method", r.Method, "path", redactedPath(r), "err", err)
	case carillon.EServiceUnavailable:
		s.log.Warn("service unavailable", "method", r.Method, "path", redactedPath(r), "err", err)
	}
}

// redactedPath is the path for logs: never a query string, which holds
// webhook tokens.
func redactedPath(r *http.Request) string { return r.URL.Path }

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) error {
	if s.draining.Load() {
		return &carillon.Error{Code: carillon.EServiceUnavailable, Message: "The server is shutting down.", RetryAfter: time.Second}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ingest.Healthy(); err != nil {
		return &carillon.Error{Code: carillon.EServiceUnavailable, Message: "Storage cannot take messages right now.", RetryAfter: 2 * time.Second}
	}
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		return &carillon.Error{Code: carillon.EServiceUnavailable, Message: "Storage cannot take writes right now.", RetryAfter: 2 * time.Second}
	}
	writeJSON(w, http.StatusOK, map[string]string{"Status": "ready"})
	return nil
}
