package memories

import (
	"errors"
	"fmt"
	"syscall"
)

// Code classifies an Error for transports (HTTP status, MCP isError).
type Code string

// Error codes.
const (
	CodeInvalid     Code = "invalid_argument" // 400
	CodeNotFound    Code = "not_found"        // 404
	CodeUnavailable Code = "unavailable"      // 503
	CodeInternal    Code = "internal"         // 500
	CodeStorage     Code = "storage_full"     // 507: the data dir refuses writes
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

// AsError returns err as *Error, wrapping unknown errors as internal. An
// internal error caused by the data dir refusing writes (disk full,
// read-only, I/O error) becomes CodeStorage, so clients learn that nothing
// was saved and that trying again later is the remedy.
func AsError(err error) *Error {
	var e *Error
	if !errors.As(err, &e) {
		e = internal("internal error", err)
	}
	if e.Code == CodeInternal && isStorageError(err) {
		return &Error{Code: CodeStorage, Message: storageMessage, Err: err}
	}
	return e
}

// Detail is the error with every wrapped cause, for logs.
func (e *Error) Detail() string {
	if e.Err == nil {
		return e.Error()
	}
	var inner *Error
	if errors.As(e.Err, &inner) {
		return e.Error() + ": " + inner.Detail()
	}
	return e.Error() + ": " + e.Err.Error()
}

const storageMessage = "storage unavailable: the server cannot write to its data directory (disk full or read-only); nothing was saved, try again later"

// isStorageError reports whether err comes from the disk refusing I/O:
// SQLite's FULL, READONLY or IOERR result codes, or a file system errno.
func isStorageError(err error) bool {
	var coded interface{ Code() int } // modernc.org/sqlite's *Error
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff { // the primary result code
		case 8, 10, 13: // SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL
			return true
		}
	}
	for _, errno := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG, syscall.EROFS, syscall.EIO} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
