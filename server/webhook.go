package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/carillon-chat/carillon"
	"github.com/carillon-chat/carillon/ingest"
	"github.com/carillon-chat/carillon/secret"
)

const webhookPrefix = "/incomingwebhooks/"

// The answers for URLs that never worked (403) and that worked once (404),
// made once: they are the most frequent errors.
var (
	errWebhookForbidden = carillon.Errorf(carillon.EForbidden, "This webhook URL is not valid. Check that it was copied completely.")
	errWebhookGone      = carillon.Errorf(carillon.ENotFound, "This webhook URL no longer works: the webhook was regenerated or deleted. Ask a room administrator for the current URL.")
)

// webhookForgetter is a store that caches webhooks (see storecache).
type webhookForgetter interface{ ForgetWebhook(webhookID string) }

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// handleWebhook is the Chime-compatible incoming webhook endpoint. Its
// checks run in the order of SPEC §1: 405, 403, 404, 413, 400, replay/409,
// 429, then the durable write (200) or 503.
func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, carillon.Errorf(carillon.EMethodNotAllowed, "Webhooks accept only POST."))
		return
	}
	// Admission control: beyond the in-flight limit, shed load at once,
	// before any lookup, rather than queue without bound.
	select {
	case s.inFlight <- struct{}{}:
		defer func() { <-s.inFlight }()
	default:
		writeError(w, &carillon.Error{Code: carillon.EServiceUnavailable, RetryAfter: 1e9,
			Message: "The server is overloaded. Retry after the number of seconds in Retry-After."})
		return
	}
	acc, err := s.acceptWebhook(w, r)
	if err != nil {
		code := carillon.ErrorCode(err)
		if code == carillon.EInternal || code == carillon.EServiceUnavailable {
			// Whatever failed inside, the client should retry: the
			// message was not stored.
			s.log.Warn("webhook post not stored", "path", redactedPath(r), "err", err)
			if code == carillon.EInternal {
				err = &carillon.Error{Code: carillon.EServiceUnavailable, RetryAfter: 2e9,
					Message: "The message could not be stored. Retry after the number of seconds in Retry-After."}
			}
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, acc)
}

func (s *Server) acceptWebhook(w http.ResponseWriter, r *http.Request) (ingest.Accepted, error) {
	ctx := r.Context()
	id, ok := strings.CutPrefix(r.URL.Path, webhookPrefix)
	token := r.URL.Query().Get("token")
	if !ok || !carillon.ValidID(id) || !carillon.ValidWebhookToken(token) {
		return ingest.Accepted{}, errWebhookForbidden
	}
	hook, err := s.store.Webhook(ctx, id)
	if carillon.ErrorCode(err) == carillon.ENotFound {
		return ingest.Accepted{}, errWebhookForbidden
	}
	if err != nil {
		return ingest.Accepted{}, err
	}
	tokenHash := secret.Hash(token)
	if f, ok := s.store.(webhookForgetter); ok && !secret.Equal(tokenHash, hook.TokenHash) {
		// The cached webhook may predate a regenerate on another node:
		// look again before refusing.
		f.ForgetWebhook(id)
		if hook, err = s.store.Webhook(ctx, id); err != nil {
			return ingest.Accepted{}, err
		}
	}
	if !secret.Equal(tokenHash, hook.TokenHash) {
		had, err := s.store.WebhookHadToken(ctx, id, tokenHash)
		if err != nil {
			return ingest.Accepted{}, err
		}
		if had {
			return ingest.Accepted{}, errWebhookGone
		}
		return ingest.Accepted{}, errWebhookForbidden
	}
	if hook.DeletedAt != nil {
		return ingest.Accepted{}, errWebhookGone
	}

	content, err := readWebhookContent(w, r, s.cfg.BodyTimeout)
	if err != nil {
		return ingest.Accepted{}, err
	}
	keys, hasKey := r.Header["Idempotency-Key"]
	var key string
	if hasKey {
		key = keys[0]
	}
	return s.ingest.Submit(ctx, ingest.Post{
		RoomID:            hook.RoomID,
		SenderType:        carillon.MemberTypeWebhook,
		SenderID:          hook.WebhookID,
		SenderName:        hook.Name,
		Content:           content,
		IdempotencyKey:    key,
		HasIdempotencyKey: hasKey,
		WebhookTokenHash:  tokenHash,
	})
}

// readWebhookContent reads at most MaxWebhookBodyBytes of body and returns
// its Content. The body is JSON whatever the Content-Type says. The whole
// body must arrive within bodyTimeout.
func readWebhookContent(w http.ResponseWriter, r *http.Request, bodyTimeout time.Duration) (string, error) {
	tooLarge := carillon.Errorf(carillon.EPayloadTooLarge,
		"The request body is over %d bytes. Send at most %d bytes of Content.", carillon.MaxWebhookBodyBytes, carillon.MaxContentBytes)
	if r.ContentLength > carillon.MaxWebhookBodyBytes {
		// Refused unread: closing the connection keeps net/http from
		// draining (waiting for) up to 256 KiB of body before it sends
		// this answer.
		w.Header().Set("Connection", "close")
		return "", tooLarge
	}
	// A per-request body deadline: without it a client sending one byte
	// a second holds the connection (and this goroutine) for the server's
	// whole ReadTimeout. ErrNotSupported (a ResponseWriter that is not a
	// connection's, as in handler tests) leaves the server's own timeouts.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(bodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, carillon.MaxWebhookBodyBytes))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return "", tooLarge
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		w.Header().Set("Connection", "close")
		return "", carillon.Errorf(carillon.EBadRequest,
			"The request body did not arrive within %s. Send the whole body at once.", bodyTimeout)
	}
	if err != nil {
		return "", carillon.Errorf(carillon.EBadRequest, "The request body could not be read.")
	}
	// The body is in. Lift the deadline: net/http now watches the
	// connection for a client hang-up, and a deadline expiring while the
	// message waits for its commit would cancel the request's context
	// (and turn an accepted message into a 503).
	rc.SetReadDeadline(time.Time{})
	// Content's size and blankness are checked by ingest.Submit, first.
	return decodeContent(body)
}

// decodeContent extracts Content from a webhook body: one JSON object whose
// Content is a string; other keys ignored, the last of duplicate keys wins.
// A leading byte-order mark is dropped, and a body that is not UTF-8 is read
// as Windows-1252 (what Windows PowerShell 5.1 sends).
func decodeContent(body []byte) (string, error) {
	body = bytes.TrimPrefix(body, utf8BOM)
	if !utf8.Valid(body) {
		decoded, err := charmap.Windows1252.NewDecoder().Bytes(body)
		if err != nil {
			return "", carillon.Errorf(carillon.EBadRequest, "The body is not valid text.")
		}
		body = decoded
	}
	notObject := carillon.Errorf(carillon.EBadRequest, `The body must be a JSON object such as {"Content": "Hello"}.`)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return "", notObject
	}
	raw, ok := fields["Content"]
	if !ok {
		return "", carillon.Errorf(carillon.EBadRequest, `The body has no "Content" key. Send {"Content": "your message"}.`)
	}
	var content string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &content) != nil {
		return "", carillon.Errorf(carillon.EBadRequest, `"Content" must be a string.`)
	}
	return content, nil
}
