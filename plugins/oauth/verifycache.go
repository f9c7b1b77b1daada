package oauth

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

// DefaultRevocationRecheck is how long a verified access token is trusted
// before its revocation state is read from the database again. It bounds
// how late a revocation made outside this process (another replica, a
// direct SQL edit) takes effect; revocations made through this process
// (the /revoke endpoint, refresh-token replay, disconnecting an app,
// deleting a user, disabling a client or revoking a grant in the
// dashboard) take effect at once.
const DefaultRevocationRecheck = 5 * time.Second

// maxCachedTokens bounds the verified-token cache; past it the cache is
// emptied (tokens are re-verified on their next use).
const maxCachedTokens = 50_000

// verifyCache remembers access tokens whose signature and claims were
// verified, keyed by the token's SHA-256, so the hot path does not redo
// the ES256 verification and the revocation query on every request.
type verifyCache struct {
	mu      sync.RWMutex
	entries map[[32]byte]*verifiedToken
	// epoch changes whenever this process revokes something; entries
	// checked under an older epoch are re-checked against the database.
	epoch atomic.Uint64
}

type verifiedToken struct {
	claims  *Claims
	expires time.Time // exp plus the verification leeway
	checked time.Time // when revocation was last read from the database
	epoch   uint64
}

func newVerifyCache() *verifyCache {
	return &verifyCache{entries: map[[32]byte]*verifiedToken{}}
}

// invalidate makes every cached token's revocation state stale.
func (c *verifyCache) invalidate() { c.epoch.Add(1) }

// get returns the cached entry for key, or nil.
func (c *verifyCache) get(key [32]byte) *verifiedToken {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.entries[key]
}

func (c *verifyCache) put(key [32]byte, v *verifiedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxCachedTokens {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCachedTokens {
			clear(c.entries)
		}
	}
	c.entries[key] = v
}

func (c *verifyCache) remove(key [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, key)
}

// tokenKey is the cache's key for a raw token: its SHA-256.
//
// The token's bytes are hashed in place: a conversion to []byte copied the
// token (~0.7 KB) to the heap on every request, ~3% of a mixed load's
// allocation (docs/performance.md, "Hot path, round 10"). Sum256 only
// reads its input.
func tokenKey(raw string) [32]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw))) //nolint:gosec // a read-only view of the string; Sum256 neither keeps nor changes it
}

// bindRevocationHooks empties the cache's trust whenever a record that can
// end a token's validity changes through PocketBase (dashboard, API, cascades).
func (s *Server) bindRevocationHooks(app core.App) {
	bump := func(e *core.ModelEvent) error {
		s.verified.invalidate()
		return e.Next()
	}
	app.OnModelAfterUpdateSuccess(pb_migrations.OAuthClients, pb_migrations.OAuthGrants, pb_migrations.OAuthTokens, pb_migrations.Users).BindFunc(bump)
	app.OnModelAfterDeleteSuccess(pb_migrations.OAuthClients, pb_migrations.OAuthGrants, pb_migrations.OAuthTokens, pb_migrations.Users).BindFunc(bump)
}
