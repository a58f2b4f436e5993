package server

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/carillon-chat/carillon"
)

// statusOf maps an error code to its HTTP status: the one place this is
// decided.
var statusOf = map[string]int{
	carillon.EBadRequest:         http.StatusBadRequest,
	carillon.EUnauthorized:       http.StatusUnauthorized,
	carillon.EForbidden:          http.StatusForbidden,
	carillon.ENotFound:           http.StatusNotFound,
	carillon.EMethodNotAllowed:   http.StatusMethodNotAllowed,
	carillon.EConflict:           http.StatusConflict,
	carillon.EPayloadTooLarge:    http.StatusRequestEntityTooLarge,
	carillon.EResourceLimit:      http.StatusBadRequest,
	carillon.EThrottled:          http.StatusTooManyRequests,
	carillon.EServiceUnavailable: http.StatusServiceUnavailable,
	carillon.EInternal:           http.StatusInternalServerError,
}

type errorBody struct {
	Code    string `json:"Code"`
	Message string `json:"Message"`
}

// writeError writes err as the JSON error body with its status, and a
// Retry-After header for 429 and 503.
func writeError(w http.ResponseWriter, err error) {
	code := carillon.ErrorCode(err)
	status := statusOf[code]
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", retryAfterSeconds(carillon.RetryAfter(err), status))
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="carillon"`)
	}
	writeJSON(w, status, errorBody{Code: code, Message: carillon.ErrorMessage(err)})
}

// retryAfterSeconds rounds a wait up to whole seconds: at least 1, and for
// 503 at most 30.
func retryAfterSeconds(d time.Duration, status int) string {
	secs := int64(math.Ceil(d.Seconds()))
	if d > time.Duration(math.MaxInt64/2) {
		secs = 3600
	}
	secs = max(secs, 1)
	if status == http.StatusServiceUnavailable {
		secs = min(secs, 30)
	}
	return strconv.FormatInt(secs, 10)
}

// writeJSON writes v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"Code":"InternalError","Message":"Internal error."}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(data)+1))
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// maxAPIBody bounds management API request bodies.
const maxAPIBody = 64 * 1024

// decodeJSON reads a JSON object request body into v. Unknown keys are
// ignored; a missing body counts as {}.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	tooLargeErr := carillon.Errorf(carillon.EPayloadTooLarge, "The request body is over %d bytes.", maxAPIBody)
	if r.ContentLength > maxAPIBody {
		// Refused unread, at once: reading would wait for a body that a
		// hostile client declares but never sends (up to the server's
		// ReadTimeout). Closing the connection keeps net/http from
		// draining it first.
		w.Header().Set("Connection", "close")
		return tooLargeErr
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAPIBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return tooLargeErr
	}
	if err != nil {
		return carillon.Errorf(carillon.EBadRequest, "The request body could not be read.")
	}
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" {
		trimmed = "{}"
	}
	if trimmed[0] != '{' {
		return carillon.Errorf(carillon.EBadRequest, "The request body must be a JSON object.")
	}
	if err := json.Unmarshal([]byte(trimmed), v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return carillon.Errorf(carillon.EBadRequest, "%s has the wrong type: want a %s.", typeErr.Field, jsonTypeName(typeErr.Type.Kind().String()))
		}
		return carillon.Errorf(carillon.EBadRequest, "The request body is not valid JSON.")
	}
	return nil
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice":
		return "list"
	case "ptr":
		return "value of another type"
	default:
		return "number"
	}
}

func badRequest(format string, args ...any) error {
	return carillon.Errorf(carillon.EBadRequest, format, args...)
}
