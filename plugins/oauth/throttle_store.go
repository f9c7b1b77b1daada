package oauth

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/picard-mcp/picard/pb_migrations"
)

// failureCounter is what the sign-in throttle needs.
type failureCounter interface {
	Blocked(key string, now time.Time) bool
	Add(key string, now time.Time)
	Reset(key string)
}

var (
	_ failureCounter = (*limiter)(nil)
	_ failureCounter = (*storedLimiter)(nil)
)

// storedLimiter is a limiter whose events are also kept in the database
// (oauth_signin_failures), so a restart does not reset an account's
// lockout and replicas on one database share the count. Failed sign-ins
// are rare, so the extra queries only cost on the failure path and on the
// check before a password is verified. If the database cannot answer, the
// in-memory count still applies.
type storedLimiter struct {
	mem    *limiter
	app    core.App
	bucket string
}

func newStoredLimiter(app core.App, bucket string, maxEvents int, window time.Duration) *storedLimiter {
	return &storedLimiter{mem: newLimiter(maxEvents, window), app: app, bucket: bucket}
}

func hashKey(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

func dbTime(t time.Time) string {
	dt, _ := types.ParseDateTime(t.UTC())
	return dt.String()
}

// Blocked reports whether key has reached the limit in memory or in the
// database.
func (l *storedLimiter) Blocked(key string, now time.Time) bool {
	if l.mem.Blocked(key, now) {
		return true
	}
	var n int
	err := l.app.DB().Select("count(*)").From(pb_migrations.OAuthSignInFailures).
		Where(dbx.HashExp{"bucket": l.bucket, "key_hash": hashKey(key)}).
		AndWhere(dbx.NewExp("at > {:since}", dbx.Params{"since": dbTime(now.Add(-l.mem.window))})).
		Row(&n)
	if err != nil {
		slog.Warn("oauth: sign-in throttle: database unavailable; counting in memory only", "error", err)
		return false
	}
	return n >= l.mem.max
}

// Add records a failure, and drops this bucket's rows that left the window.
func (l *storedLimiter) Add(key string, now time.Time) {
	l.mem.Add(key, now)
	err := l.app.RunInTransaction(func(tx core.App) error {
		if _, err := tx.DB().Delete(pb_migrations.OAuthSignInFailures, dbx.And(
			dbx.HashExp{"bucket": l.bucket},
			dbx.NewExp("at <= {:cut}", dbx.Params{"cut": dbTime(now.Add(-l.mem.window))}),
		)).Execute(); err != nil {
			return err
		}
		at := dbTime(now)
		_, err := tx.DB().Insert(pb_migrations.OAuthSignInFailures, dbx.Params{
			"id": uuid.NewString(), "bucket": l.bucket, "key_hash": hashKey(key), "at": at,
			"created": at, "updated": at,
		}).Execute()
		return err
	})
	if err != nil {
		slog.Warn("oauth: sign-in throttle: could not persist a failure", "error", err)
	}
}

// Reset forgets key's failures.
func (l *storedLimiter) Reset(key string) {
	l.mem.Reset(key)
	if _, err := l.app.DB().Delete(pb_migrations.OAuthSignInFailures,
		dbx.HashExp{"bucket": l.bucket, "key_hash": hashKey(key)}).Execute(); err != nil {
		slog.Warn("oauth: sign-in throttle: could not reset", "error", err)
	}
}
