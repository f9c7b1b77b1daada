package oauth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

const (
	bidKey     = "picard.oauth.bid"
	sessionTTL = 24 * time.Hour
	browserTTL = 30 * 24 * time.Hour
)

// secureCookies is true when the issuer is https: cookies get Secure and
// the __Host- prefix (no Domain, Path=/, only over TLS).
func (s *Server) secureCookies() bool { return strings.HasPrefix(s.cfg.Issuer, "https://") }

func (s *Server) cookieName(base string) string {
	if s.secureCookies() {
		return "__Host-" + base
	}
	return base
}

func (s *Server) setCookie(e *core.RequestEvent, base, value string, maxAge time.Duration) {
	// Secure whenever the issuer is https; a plain-http issuer is a
	// loopback development setup, where a Secure cookie would never return
	c := &http.Cookie{ //nolint:gosec // Secure follows the issuer's scheme, see above
		Name: s.cookieName(base), Value: value, Path: "/",
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode,
		MaxAge: int(maxAge / time.Second),
	}
	if maxAge < 0 {
		c.MaxAge = -1
	}
	e.SetCookie(c)
}

func (s *Server) cookie(e *core.RequestEvent, base string) string {
	c, err := e.Request.Cookie(s.cookieName(base))
	if err != nil {
		return ""
	}
	return c.Value
}

// loadCSRFKey reads the server's CSRF HMAC key, creating it on first start.
func (s *Server) loadCSRFKey() error {
	const name = "csrf_hmac"
	rec, err := s.app.FindFirstRecordByData(pb_migrations.OAuthSecrets, "name", name)
	if err != nil {
		col, cerr := s.app.FindCachedCollectionByNameOrId(pb_migrations.OAuthSecrets)
		if cerr != nil {
			return fmt.Errorf("oauth: secrets collection: %w", cerr)
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("oauth: random: %w", err)
		}
		enc, err := s.cipher.Encrypt(base64.StdEncoding.EncodeToString(key))
		if err != nil {
			return fmt.Errorf("oauth: encrypt csrf key: %w", err)
		}
		rec = core.NewRecord(col)
		rec.Set("name", name)
		rec.Set("value", enc)
		if err := s.app.Save(rec); err != nil {
			// another process may have created it meanwhile
			if rec, err = s.app.FindFirstRecordByData(pb_migrations.OAuthSecrets, "name", name); err != nil {
				return fmt.Errorf("oauth: save csrf key: %w", err)
			}
		}
	}
	plain, err := s.cipher.Decrypt(rec.GetString("value"))
	if err != nil {
		return fmt.Errorf("oauth: csrf key does not decrypt with the configured Fernet keys: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(plain)
	if err != nil || len(key) < 32 {
		return fmt.Errorf("oauth: csrf key is malformed")
	}
	s.csrfKey = key
	return nil
}

// browserID returns the random id of this browser, setting its cookie on
// first sight. CSRF tokens are bound to it.
func (s *Server) browserID(e *core.RequestEvent) string {
	if id, _ := e.Get(bidKey).(string); id != "" {
		return id // set earlier in this request
	}
	if id := s.cookie(e, "picard_bid"); len(id) >= 32 && len(id) <= 64 {
		return id
	}
	id, err := randomToken()
	if err != nil {
		return ""
	}
	s.setCookie(e, "picard_bid", id, browserTTL)
	e.Set(bidKey, id)
	return id
}

// csrfToken is HMAC(server key, browser id): forms carry it, and a post
// without the matching browser cookie is refused.
func (s *Server) csrfToken(browserID string) string {
	m := hmac.New(sha256.New, s.csrfKey)
	m.Write([]byte("csrf\x00" + browserID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (s *Server) checkCSRF(e *core.RequestEvent, token string) bool {
	id := s.cookie(e, "picard_bid")
	if id == "" || token == "" {
		return false
	}
	return hmac.Equal([]byte(token), []byte(s.csrfToken(id)))
}

// startSession signs the browser in as user.
func (s *Server) startSession(e *core.RequestEvent, user *core.Record) error {
	tok, err := randomToken()
	if err != nil {
		return err
	}
	col, err := s.app.FindCachedCollectionByNameOrId(pb_migrations.OAuthSessions)
	if err != nil {
		return fmt.Errorf("oauth: sessions collection: %w", err)
	}
	rec := core.NewRecord(col)
	rec.Set("token_hash", hashToken(tok))
	rec.Set("user", user.Id)
	rec.Set("expires", s.now().Add(sessionTTL))
	if err := s.app.Save(rec); err != nil {
		return fmt.Errorf("oauth: save session: %w", err)
	}
	// a fresh session id on every sign-in: no fixation
	if old := s.cookie(e, "picard_session"); old != "" {
		s.endSession(old)
	}
	s.setCookie(e, "picard_session", tok, sessionTTL)
	return nil
}

// sessionUser returns the signed-in user of this browser, or nil.
func (s *Server) sessionUser(e *core.RequestEvent) *core.Record {
	tok := s.cookie(e, "picard_session")
	if tok == "" || len(tok) > 128 {
		return nil
	}
	sess, err := s.app.FindFirstRecordByData(pb_migrations.OAuthSessions, "token_hash", hashToken(tok))
	if err != nil || sess.GetDateTime("expires").Time().Before(s.now()) {
		return nil
	}
	user, err := s.app.FindRecordById(pb_migrations.Users, sess.GetString("user"))
	if err != nil || userDisabled(user) {
		return nil
	}
	return user
}

func (s *Server) endSession(tok string) {
	_, _ = s.app.DB().Delete(pb_migrations.OAuthSessions, dbx.HashExp{"token_hash": hashToken(tok)}).Execute()
}

// pageHeaders are set on every HTML page of the authorization flow.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
}
