// Package oauth is Picard's authorization server and resource-server guard:
// signing keys and JWKS, OAuth clients, the direct-connect user-token flow,
// the token endpoint, and the bearer middleware that every protected route
// (/api/tools, /mcp) runs first.
package oauth

import (
	"errors"
	"log/slog"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/plugins/fernet"
)

// Config configures the authorization server.
type Config struct {
	Issuer     string // PICARD_PUBLIC_URL
	Resource   string // <issuer>/mcp: the audience of access tokens
	Cipher     *fernet.Cipher
	AccessTTL  time.Duration // default 1h
	RefreshTTL time.Duration // default 30 days
	// RefreshGrace is how long a rotated refresh token may still be used
	// by the same client (concurrent refreshes); later use is a replay
	// that revokes the family. Default 5s; negative disables it.
	RefreshGrace time.Duration
	Now          func() time.Time
	// AllowPrivateCIMD lets client ID metadata documents be fetched over
	// http and from private, loopback and link-local addresses. Development
	// only (PICARD_OAUTH_ALLOW_PRIVATE_CIMD=true): it opens the server to SSRF.
	AllowPrivateCIMD bool
	// RevocationRecheck bounds how long a verified access token is trusted
	// before its revocation state is read again (default
	// DefaultRevocationRecheck; negative: read on every request).
	RevocationRecheck time.Duration
}

// DefaultRefreshGrace is the window in which a just-rotated refresh token
// is still honoured for the same client (RFC 9700 §4.14.2 discusses such
// a window for concurrent refreshes).
const DefaultRefreshGrace = 5 * time.Second

// Server issues and verifies tokens.
type Server struct {
	app    core.App
	cfg    Config
	cipher *fernet.Cipher
	ring   keyring

	csrfKey []byte // HMAC key for CSRF tokens, kept in oauth_secrets
	cimd    *cimdResolver

	verified *verifyCache // access tokens already verified

	signInFailsByAccount   failureCounter
	signInFailsByAccountIP failureCounter
	signInFailsByIP        failureCounter
	signUps                *limiter
	registrations          *limiter
	cimdFetches            *limiter
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// MustRegister is Register that panics on error.
func MustRegister(app core.App, cfg Config) *Server {
	s, err := Register(app, cfg)
	if err != nil {
		panic(err)
	}
	return s
}

// Register adds the OAuth routes and returns the Server for other plugins'
// middleware.
func Register(app core.App, cfg Config) (*Server, error) {
	if cfg.Issuer == "" || cfg.Resource == "" || cfg.Cipher == nil {
		return nil, errors.New("oauth: Config needs Issuer, Resource and Cipher")
	}
	if cfg.AccessTTL == 0 {
		cfg.AccessTTL = time.Hour
	}
	if cfg.RefreshTTL == 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	if cfg.RefreshGrace == 0 {
		cfg.RefreshGrace = DefaultRefreshGrace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RevocationRecheck == 0 {
		cfg.RevocationRecheck = DefaultRevocationRecheck
	}
	s := &Server{
		app: app, cfg: cfg, cipher: cfg.Cipher,
		cimd:                   newCIMDResolver(cfg.AllowPrivateCIMD),
		verified:               newVerifyCache(),
		signInFailsByAccountIP: newStoredLimiter(app, "account_ip", 5, 15*time.Minute),
		signInFailsByAccount:   newStoredLimiter(app, "account", 100, 15*time.Minute),
		signInFailsByIP:        newStoredLimiter(app, "ip", 20, 15*time.Minute),
		signUps:                newLimiter(10, time.Hour),
		registrations:          newLimiter(20, time.Hour),
		cimdFetches:            newLimiter(30, time.Hour),
	}
	if cfg.AllowPrivateCIMD {
		slog.Warn("oauth: PICARD_OAUTH_ALLOW_PRIVATE_CIMD is on: client metadata documents may be fetched over http and from private addresses; never use this in production")
	}
	s.bindRevocationHooks(app)
	s.bindUserState(app)
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		// load (or create) the signing key and the CSRF secret now:
		// creating them lazily inside a token transaction would need a
		// second writer
		if err := s.loadKeys(false); err != nil {
			return err
		}
		if err := s.loadCSRFKey(); err != nil {
			return err
		}
		s.routes(e)
		s.schedulePurge(e.App)
		return e.Next()
	})
	return s, nil
}

// ResourceMetadataURL is the RFC 9728 metadata URL for the MCP resource.
func (s *Server) ResourceMetadataURL() string {
	return s.cfg.Issuer + "/.well-known/oauth-protected-resource/mcp"
}
