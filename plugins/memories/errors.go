package memories

import (
	"errors"
	"fmt"
)

// Code classifies an Error for transports (HTTP status, MCP isError).
type Code string

// Error codes.
const (
	CodeInvalid     Code = "invalid_argument" // 400
	CodeNotFound    Code = "not_found"        // 404
	CodeUnavailable Code = "unavailable"      // 503
	CodeInternal    Code = "internal"         // 500
)

// Error is a typed service error. Field names the argument at fault.
type Error struct {
	Code    Code
	Field   string
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// errNotFound is the single answer for a missing memory and for one the
// caller may not see: the two must be indistinguishable.
func errNotFound() *Error {
	return &Error{Code: CodeNotFound, Field: "memory_id", Message: "memory not found"}
}

func internal(msg string, err error) *Error {
	return &Error{Code: CodeInternal, Message: msg, Err: err}
}

// ErrSearchUnavailable is what search answers while the vector store is down.
var ErrSearchUnavailable = &Error{Code: CodeUnavailable, Message: "search temporarily unavailable: the vector store cannot be reached; memories are still saved and will be indexed when it is back"}

// AsError returns err as *Error, wrapping unknown errors as internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return internal("internal error", err)
}
