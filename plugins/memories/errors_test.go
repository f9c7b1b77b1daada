package memories

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

// sqliteErr has the shape of modernc.org/sqlite's *Error.
type sqliteErr struct{ code int }

func (e sqliteErr) Error() string { return fmt.Sprintf("sqlite error (%d)", e.code) }
func (e sqliteErr) Code() int     { return e.code }

// A save that fails because the disk refuses writes tells the client so
// (storage_full, 507), instead of an opaque internal error.
func TestAsErrorStorage(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Code
	}{
		{"sqlite IOERR_WRITE", internal("save memory", sqliteErr{778}), CodeStorage},
		{"sqlite FULL", internal("save memory", sqliteErr{13}), CodeStorage},
		{"sqlite READONLY_DBMOVED", internal("save memory", sqliteErr{8 | 4<<8}), CodeStorage},
		{"ENOSPC from a file", internal("write", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}), CodeStorage},
		{"EFBIG unwrapped", fmt.Errorf("flush: %w", syscall.EFBIG), CodeStorage},
		{"sqlite CONSTRAINT stays internal", internal("save memory", sqliteErr{19}), CodeInternal},
		{"other errors stay internal", internal("save memory", errors.New("boom")), CodeInternal},
		{"typed errors keep their code", invalid("text", "is required"), CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AsError(tc.err)
			if got.Code != tc.want {
				t.Fatalf("code %q, want %q", got.Code, tc.want)
			}
			if tc.want == CodeStorage {
				if !strings.HasPrefix(got.Error(), "storage unavailable") {
					t.Fatalf("message %q", got.Error())
				}
				root := tc.err
				for errors.Unwrap(root) != nil {
					root = errors.Unwrap(root)
				}
				if !strings.Contains(got.Detail(), root.Error()) {
					t.Fatalf("detail %q hides the cause %q", got.Detail(), root)
				}
			}
		})
	}
}
