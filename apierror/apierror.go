// Package apierror is the one error type of Latch's own REST API: an HTTP
// status, an error code and a description safe to show, and a private cause
// that is logged but never sent.
package apierror

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/latchhq/latch/storage"
)

// Error is rendered as {"error": Code, "error_description": Description}.
type Error struct {
	Status      int
	Code        string
	Description string
	Cause       error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Description, e.Cause)
	}
	return e.Code + ": " + e.Description
}

func (e *Error) Unwrap() error { return e.Cause }

func newf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Description: fmt.Sprintf(format, args...)}
}

// BadRequest is a malformed or invalid body or parameter.
func BadRequest(format string, args ...any) *Error {
	return newf(http.StatusBadRequest, "invalid_request", format, args...)
}

// Unauthorized is a missing or wrong API key.
func Unauthorized(format string, args ...any) *Error {
	return newf(http.StatusUnauthorized, "unauthorized", format, args...)
}

// NotFound is an unknown resource.
func NotFound(format string, args ...any) *Error {
	return newf(http.StatusNotFound, "not_found", format, args...)
}

// Gone is a resource past its lifetime.
func Gone(format string, args ...any) *Error {
	return newf(http.StatusGone, "expired", format, args...)
}

// Conflict is a state change that already happened.
func Conflict(format string, args ...any) *Error {
	return newf(http.StatusConflict, "conflict", format, args...)
}

// Unavailable is a database that cannot be reached: the request was fine
// and may be retried, so it is not a 500.
func Unavailable(cause error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
		Description: "the database is unreachable; retry shortly", Cause: cause}
}

// Internal hides the cause behind a generic message; a cause that is the
// database being unreachable is Unavailable instead.
func Internal(cause error) *Error {
	if errors.Is(cause, storage.ErrUnavailable) {
		return Unavailable(cause)
	}
	return &Error{Status: http.StatusInternalServerError, Code: "server_error", Description: "internal error", Cause: cause}
}
