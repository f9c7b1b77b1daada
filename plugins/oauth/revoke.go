package oauth

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

// authenticateClient reads a token-endpoint-style request (form body,
// client_secret_basic or client_secret_post) and authenticates the client.
func (s *Server) authenticateClient(e *core.RequestEvent) (*core.Record, *TokenError) {
	e.Request.Body = http.MaxBytesReader(e.Response, e.Request.Body, maxBody)
	if err := e.Request.ParseForm(); err != nil {
		return nil, tokenErr(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
	}
	id, secret := clientCredentials(e.Request)
	return s.checkClient(id, secret)
}

func writeTokenErr(e *core.RequestEvent, t *TokenError) error {
	if t.Status == http.StatusUnauthorized {
		e.Response.Header().Set("WWW-Authenticate", `Basic realm="picard"`)
	}
	return e.JSON(t.Status, t)
}

// refreshRecord finds a refresh token by its value.
func (s *Server) refreshRecord(tok string) *core.Record {
	rec, err := s.app.FindFirstRecordByData(pb_migrations.OAuthTokens, "token_hash", hashToken(tok))
	if err != nil || rec.GetString("kind") != "refresh" {
		return nil
	}
	return rec
}

// accessJTI returns the jti of an access token this server signed, whether
// or not it is still valid, or "" when it is not one of ours.
func (s *Server) accessJTI(raw string) string {
	claims := &Claims{}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithoutClaimsValidation())
	_, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if pub := s.keyByID(kid); pub != nil {
			return pub, nil
		}
		return nil, errors.New("unknown key id")
	})
	if err != nil {
		return ""
	}
	return claims.ID
}

// tokenGrant returns the grant a stored token belongs to.
func (s *Server) tokenGrant(tokenID string) *core.Record {
	t, err := s.app.FindRecordById(pb_migrations.OAuthTokens, tokenID)
	if err != nil {
		return nil
	}
	g, err := s.app.FindRecordById(pb_migrations.OAuthGrants, t.GetString("grant"))
	if err != nil {
		return nil
	}
	return g
}

// handleRevoke is RFC 7009. Unknown tokens, and tokens of other clients,
// answer 200 like a success: the caller learns nothing.
func (s *Server) handleRevoke(e *core.RequestEvent) error {
	e.Response.Header().Set("Cache-Control", "no-store")
	client, terr := s.authenticateClient(e)
	if terr != nil {
		return writeTokenErr(e, terr)
	}
	tok := e.Request.PostForm.Get("token")
	if tok == "" {
		return writeTokenErr(e, tokenErr(400, "invalid_request", "token is required"))
	}
	if len(tok) > 4096 {
		return e.NoContent(http.StatusOK)
	}
	if rec := s.refreshRecord(tok); rec != nil {
		if g := s.tokenGrant(rec.Id); g != nil && g.GetString("client") == client.Id {
			if err := s.RevokeGrant(g.Id); err != nil {
				return e.InternalServerError("", err)
			}
		}
		return e.NoContent(http.StatusOK)
	}
	if strings.Count(tok, ".") == 2 {
		if jti := s.accessJTI(tok); jti != "" {
			if g := s.tokenGrant(jti); g != nil && g.GetString("client") == client.Id {
				if _, err := s.app.DB().Update(pb_migrations.OAuthTokens, dbx.Params{"revoked": true},
					dbx.HashExp{"id": jti}).Execute(); err != nil {
					return e.InternalServerError("", err)
				}
				s.verified.invalidate()
			}
		}
	}
	return e.NoContent(http.StatusOK)
}

// handleIntrospect is RFC 7662. The caller must authenticate with a client
// secret, and sees only its own tokens; anything else is inactive.
func (s *Server) handleIntrospect(e *core.RequestEvent) error {
	e.Response.Header().Set("Cache-Control", "no-store")
	client, terr := s.authenticateClient(e)
	if terr != nil {
		return writeTokenErr(e, terr)
	}
	if !client.GetBool("confidential") {
		return writeTokenErr(e, tokenErr(http.StatusUnauthorized, "invalid_client", "introspection needs client authentication with a secret"))
	}
	tok := e.Request.PostForm.Get("token")
	if tok == "" {
		return writeTokenErr(e, tokenErr(400, "invalid_request", "token is required"))
	}
	inactive := map[string]any{"active": false}
	if len(tok) > 4096 {
		return e.JSON(http.StatusOK, inactive)
	}
	if rec := s.refreshRecord(tok); rec != nil {
		g := s.tokenGrant(rec.Id)
		if g == nil || g.GetBool("revoked") || g.GetString("client") != client.Id ||
			!rec.GetDateTime("used_at").IsZero() || rec.GetDateTime("expires").Time().Before(s.now()) {
			return e.JSON(http.StatusOK, inactive)
		}
		return e.JSON(http.StatusOK, map[string]any{
			"active": true, "scope": g.GetString("scope"), "client_id": publicClientID(client),
			"sub": g.GetString("user"), "aud": s.cfg.Resource, "iss": s.cfg.Issuer,
			"exp": rec.GetDateTime("expires").Time().Unix(), "iat": rec.GetDateTime("created").Time().Unix(),
			"token_type": "refresh_token",
		})
	}
	claims, err := s.Verify(tok)
	if err != nil || claims.ClientID != client.Id {
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			slog.Warn("oauth: introspect", "error", err)
		}
		return e.JSON(http.StatusOK, inactive)
	}
	return e.JSON(http.StatusOK, map[string]any{
		"active": true, "scope": claims.Scope, "client_id": publicClientID(client),
		"sub": claims.Subject, "aud": s.cfg.Resource, "iss": claims.Issuer,
		"exp": claims.ExpiresAt.Unix(), "iat": claims.IssuedAt.Unix(),
		"jti": claims.ID, "token_type": "Bearer",
	})
}
