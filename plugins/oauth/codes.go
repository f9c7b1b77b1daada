package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

var verifierRE = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// s256 is the PKCE S256 transform of a code verifier.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// checkResource validates the resource parameters of a token request;
// absent means the MCP resource.
func (s *Server) checkResource(form url.Values) *TokenError {
	rs, ok := form["resource"]
	if !ok {
		return nil
	}
	if len(rs) != 1 || rs[0] != s.cfg.Resource {
		return tokenErr(400, "invalid_target", "the only resource served here is "+s.cfg.Resource)
	}
	return nil
}

// ExchangeCode redeems an authorization code (RFC 6749 §4.1.3 with PKCE).
// A code is single use: redeeming it again is refused and revokes every
// token the first redemption issued.
func (s *Server) ExchangeCode(client *core.Record, form url.Values) (*TokenResponse, error) {
	code := form.Get("code")
	if code == "" || len(form["code"]) > 1 {
		return nil, tokenErr(400, "invalid_request", "code is required (once)")
	}
	rec, err := s.app.FindFirstRecordByData(pb_migrations.OAuthCodes, "code_hash", hashToken(code))
	if err != nil {
		return nil, tokenErr(400, "invalid_grant", "authorization code is invalid")
	}
	if !rec.GetDateTime("used_at").IsZero() {
		s.revokeCodeGrant(rec.Id)
		return nil, tokenErr(400, "invalid_grant", "authorization code was already used; the tokens it issued are now revoked")
	}
	if rec.GetString("client") != client.Id {
		return nil, tokenErr(400, "invalid_grant", "authorization code was issued to another client")
	}
	if rec.GetDateTime("expires").Time().Before(s.now()) {
		return nil, tokenErr(400, "invalid_grant", "authorization code has expired")
	}
	if ru := form.Get("redirect_uri"); ru == "" || ru != rec.GetString("redirect_uri") {
		return nil, tokenErr(400, "invalid_grant", "redirect_uri must be the one used in the authorization request")
	}
	verifier := form.Get("code_verifier")
	if verifier == "" {
		return nil, tokenErr(400, "invalid_request", "code_verifier is required (PKCE)")
	}
	if !verifierRE.MatchString(verifier) ||
		subtle.ConstantTimeCompare([]byte(s256(verifier)), []byte(rec.GetString("code_challenge"))) != 1 {
		return nil, tokenErr(400, "invalid_grant", "code_verifier does not match the code_challenge")
	}
	if terr := s.checkResource(form); terr != nil {
		return nil, terr
	}
	var (
		resp   *TokenResponse
		replay bool
	)
	err = s.app.RunInTransaction(func(tx core.App) error {
		won, err := claimOnce(tx, pb_migrations.OAuthCodes, rec.Id, s.now())
		if err != nil {
			return err
		}
		if !won {
			replay = true
			return nil
		}
		grant, err := s.NewGrant(tx, rec.GetString("user"), client.Id, rec.GetString("scope"))
		if err != nil {
			return err
		}
		if _, err := tx.DB().Update(pb_migrations.OAuthCodes, dbx.Params{"grant": grant.Id},
			dbx.HashExp{"id": rec.Id}).Execute(); err != nil {
			return err
		}
		resp, err = s.IssueTokens(tx, grant, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("oauth: exchange code: %w", err)
	}
	if replay {
		s.revokeCodeGrant(rec.Id)
		return nil, tokenErr(400, "invalid_grant", "authorization code was already used; the tokens it issued are now revoked")
	}
	return resp, nil
}

// revokeCodeGrant ends the grant a code was exchanged for.
func (s *Server) revokeCodeGrant(codeID string) {
	rec, err := s.app.FindRecordById(pb_migrations.OAuthCodes, codeID)
	if err != nil || rec.GetString("grant") == "" {
		return
	}
	if err := s.RevokeGrant(rec.GetString("grant")); err != nil {
		slog.Error("oauth: revoke grant of replayed code", "error", err)
		return
	}
	slog.Warn("oauth: authorization code replayed; its grant is revoked", "grant", rec.GetString("grant"))
}
