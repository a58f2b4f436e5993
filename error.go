package carillon

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. They are the `Code` values of the API's error bodies; the HTTP
// layer maps each to a status in one place.
const (
	EBadRequest         = "BadRequest"
	EUnauthorized       = "Unauthorized"
	EForbidden          = "Forbidden"
	ENotFound           = "NotFound"
	EMethodNotAllowed   = "MethodNotAllowed"
	EConflict           = "Conflict"
	EPayloadTooLarge    = "PayloadTooLarge"
	EResourceLimit      = "ResourceLimitExceeded"
	EThrottled          = "Throttled"
	EServiceUnavailable = "ServiceUnavailable"
	EInternal           = "InternalError"
)

// Error is an error the user may see: a code and a message that says what to
// do. Any other error is internal and shown only as "internal error".
type Error struct {
	Code    string
	Message string
	// RetryAfter, when set, is how long the client should wait before
	// retrying (429 and 503 answers carry it as Retry-After).
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// RetryAfter returns err's retry hint, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ErrorCode returns the code of err: the Code of an *Error in its chain,
// EServiceUnavailable for an unavailable backend, EInternal otherwise.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, ErrUnavailable) {
		return EServiceUnavailable
	}
	return EInternal
}

// ErrorMessage returns the user-facing message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	if errors.Is(err, ErrUnavailable) {
		return "The server cannot store data right now. Retry after the number of seconds in Retry-After."
	}
	return "Internal error."
}

// ErrUnavailable marks errors from a backend that cannot serve right now
// (database read-only, disk full, locked, unreachable). Backends wrap their
// errors with it so that callers answer 503 and retry later rather than 500.
var ErrUnavailable = errors.New("backend unavailable")
