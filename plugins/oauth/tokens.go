package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/picard-mcp/picard/pb_migrations"
)

// Scopes Picard knows.
const (
	ScopeRead  = "memories:read"
	ScopeWrite = "memories:write"
)

// SupportedScopes lists every scope a client may be granted.
var SupportedScopes = []string{ScopeRead, ScopeWrite}

// Claims are an access token's claims (RFC 9068).
type Claims struct {
	jwt.RegisteredClaims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
}

// HasScope reports whether the token grants scope.
func (c *Claims) HasScope(scope string) bool {
	for _, s := range strings.Fields(c.Scope) {
		if s == scope {
			return true
		}
	}
	return false
}

// TokenResponse is the RFC 6749 token response.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	UserID       string `json:"user_id,omitempty"`
}

// TokenError is an RFC 6749 error.
type TokenError struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *TokenError) Error() string { return e.Code + ": " + e.Description }

func tokenErr(status int, code, desc string) *TokenError {
	return &TokenError{Status: status, Code: code, Description: desc}
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("oauth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewGrant starts a token family for user and client with scope.
func (s *Server) NewGrant(app core.App, userID, clientID, scope string) (*core.Record, error) {
	col, err := app.FindCachedCollectionByNameOrId(pb_migrations.OAuthGrants)
	if err != nil {
		return nil, err
	}
	g := core.NewRecord(col)
	g.Set("user", userID)
	g.Set("client", clientID)
	g.Set("scope", scope)
	if err := app.Save(g); err != nil {
		return nil, fmt.Errorf("oauth: save grant: %w", err)
	}
	return g, nil
}

// IssueTokens mints an access token and a refresh token inside grant.
func (s *Server) IssueTokens(app core.App, grant *core.Record, withRefresh bool) (*TokenResponse, error) {
	key, err := s.activeKey()
	if err != nil {
		return nil, err
	}
	col, err := app.FindCachedCollectionByNameOrId(pb_migrations.OAuthTokens)
	if err != nil {
		return nil, err
	}
	now := s.now()
	jti := uuid.NewString()
	access := core.NewRecord(col)
	access.Set("id", jti)
	access.Set("grant", grant.Id)
	access.Set("kind", "access")
	access.Set("expires", now.Add(s.cfg.AccessTTL))
	if err := app.Save(access); err != nil {
		return nil, fmt.Errorf("oauth: save access token: %w", err)
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    s.cfg.Issuer,
			Subject:   grant.GetString("user"),
			Audience:  jwt.ClaimStrings{s.cfg.Resource},
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTTL)),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        jti,
		},
		ClientID: grant.GetString("client"),
		Scope:    grant.GetString("scope"),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	t.Header["typ"] = "at+jwt"
	t.Header["kid"] = key.kid
	signed, err := t.SignedString(key.private)
	if err != nil {
		return nil, fmt.Errorf("oauth: sign access token: %w", err)
	}
	resp := &TokenResponse{
		AccessToken: signed, TokenType: "Bearer",
		ExpiresIn: int(s.cfg.AccessTTL / time.Second), Scope: claims.Scope,
	}
	if withRefresh {
		rt, err := randomToken()
		if err != nil {
			return nil, err
		}
		refresh := core.NewRecord(col)
		refresh.Set("grant", grant.Id)
		refresh.Set("kind", "refresh")
		refresh.Set("token_hash", hashToken(rt))
		refresh.Set("expires", now.Add(s.cfg.RefreshTTL))
		if err := app.Save(refresh); err != nil {
			return nil, fmt.Errorf("oauth: save refresh token: %w", err)
		}
		resp.RefreshToken = rt
	}
	return resp, nil
}

// Token verification failures.
var (
	ErrNoToken      = errors.New("no bearer token")
	ErrInvalidToken = errors.New("invalid access token")
)

// verifyLeeway is the clock skew allowed on exp and iat.
const verifyLeeway = 30 * time.Second

// Verify checks an access token: algorithm allow-list (ES256 only), key id,
// signature, typ, iss, aud, exp (required), iat, and that neither the
// token, its grant, its client nor its user was revoked, disabled or
// deleted.
//
// A token that passed is remembered by its hash until it expires, so later
// requests skip the signature check; its revocation state is read again
// after Config.RevocationRecheck, and at once after this process revoked
// anything (see DefaultRevocationRecheck).
func (s *Server) Verify(raw string) (*Claims, error) {
	now := s.now()
	key := tokenKey(raw)
	epoch := s.verified.epoch.Load()
	if v := s.verified.get(key); v != nil {
		if !now.Before(v.expires) {
			s.verified.remove(key)
			return nil, fmt.Errorf("%w: token is expired", ErrInvalidToken)
		}
		if v.epoch == epoch && now.Sub(v.checked) < s.cfg.RevocationRecheck && !now.Before(v.checked) {
			return v.claims, nil
		}
		// the signature was verified already: only the revocation state is stale
		if err := s.checkNotRevoked(v.claims); err != nil {
			s.verified.remove(key)
			return nil, err
		}
		s.verified.put(key, &verifiedToken{claims: v.claims, expires: v.expires, checked: now, epoch: epoch}, now)
		return v.claims, nil
	}
	claims, err := s.verifySignedClaims(raw)
	if err != nil {
		return nil, err
	}
	if err := s.checkNotRevoked(claims); err != nil {
		return nil, err
	}
	s.verified.put(key, &verifiedToken{claims: claims, expires: claims.ExpiresAt.Add(verifyLeeway), checked: now, epoch: epoch}, now)
	return claims, nil
}

// verifySignedClaims checks the JWT itself (no database).
func (s *Server) verifySignedClaims(raw string) (*Claims, error) {
	claims := &Claims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(s.cfg.Issuer),
		jwt.WithAudience(s.cfg.Resource),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
		jwt.WithLeeway(verifyLeeway),
	)
	tok, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); !strings.EqualFold(typ, "at+jwt") {
			return nil, errors.New("typ is not at+jwt")
		}
		kid, _ := t.Header["kid"].(string)
		pub := s.keyByID(kid)
		if pub == nil {
			return nil, errors.New("unknown key id")
		}
		return pub, nil
	})
	if err != nil || !tok.Valid {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if claims.ID == "" || claims.Subject == "" || claims.ClientID == "" {
		return nil, fmt.Errorf("%w: missing jti, sub or client_id", ErrInvalidToken)
	}
	return claims, nil
}

// checkNotRevoked reads the token's row, its grant, its client and its
// user: all must exist and none be revoked or disabled.
func (s *Server) checkNotRevoked(claims *Claims) error {
	var row struct {
		Revoked      bool   `db:"revoked"`
		TokenRevoked bool   `db:"token_revoked"`
		Disabled     bool   `db:"disabled"`
		User         string `db:"user"`
		Client       string `db:"client"`
		UserDisabled bool   `db:"user_disabled"`
	}
	err := s.app.DB().NewQuery(`SELECT g.revoked AS revoked, t.revoked AS token_revoked, c.disabled AS disabled, g.user AS user, g.client AS client, u.disabled AS user_disabled
		FROM ` + pb_migrations.OAuthTokens + ` t
		JOIN ` + pb_migrations.OAuthGrants + ` g ON g.id = t.[[grant]]
		JOIN ` + pb_migrations.OAuthClients + ` c ON c.id = g.client
		JOIN ` + pb_migrations.Users + ` u ON u.id = g.user
		WHERE t.id = {:jti} AND t.kind = 'access'`).Bind(dbx.Params{"jti": claims.ID}).One(&row)
	if err != nil {
		return fmt.Errorf("%w: token not known or its grant was removed", ErrInvalidToken)
	}
	if row.Revoked || row.TokenRevoked || row.Disabled || row.UserDisabled || row.User != claims.Subject || row.Client != claims.ClientID {
		return fmt.Errorf("%w: revoked", ErrInvalidToken)
	}
	return nil
}

// Refresh exchanges a refresh token for a new pair (rotation). A token
// that was already used revokes its whole family, access tokens included:
// someone holds a copy. Of two concurrent uses exactly one wins.
func (s *Server) Refresh(client *core.Record, refreshToken, scope string) (*TokenResponse, error) {
	if refreshToken == "" {
		return nil, tokenErr(400, "invalid_request", "refresh_token is required")
	}
	rec, err := s.app.FindFirstRecordByData(pb_migrations.OAuthTokens, "token_hash", hashToken(refreshToken))
	if err != nil || rec.GetString("kind") != "refresh" {
		return nil, tokenErr(400, "invalid_grant", "refresh token is invalid")
	}
	grant, err := s.app.FindRecordById(pb_migrations.OAuthGrants, rec.GetString("grant"))
	if err != nil || grant.GetBool("revoked") {
		return nil, tokenErr(400, "invalid_grant", "refresh token is revoked")
	}
	if grant.GetString("client") != client.Id {
		return nil, tokenErr(400, "invalid_grant", "refresh token was issued to another client")
	}
	if rec.GetDateTime("expires").Time().Before(s.now()) {
		return nil, tokenErr(400, "invalid_grant", "refresh token has expired")
	}
	newScope := grant.GetString("scope")
	if scope != "" {
		have := strings.Fields(newScope)
		for _, sc := range strings.Fields(scope) {
			if !slices.Contains(have, sc) {
				return nil, tokenErr(400, "invalid_scope", "scope "+sc+" exceeds the original grant")
			}
		}
		newScope = strings.Join(strings.Fields(scope), " ")
	}
	var resp *TokenResponse
	var replay bool
	err = s.app.RunInTransaction(func(tx core.App) error {
		won, err := claimOnce(tx, pb_migrations.OAuthTokens, rec.Id, s.now())
		if err != nil {
			return err
		}
		if !won {
			// Two requests of the same client racing with one refresh
			// token (hosts refreshing from parallel requests) land here
			// within moments of each other: the late one gets a pair of
			// its own in the same family. Anything later is a replay.
			inGrace, err := s.usedWithinGrace(tx, rec.Id)
			if err != nil {
				return err
			}
			if !inGrace {
				replay = true
				return nil
			}
		}
		if newScope != grant.GetString("scope") {
			grant.Set("scope", newScope)
			if err := tx.Save(grant); err != nil {
				return err
			}
		}
		resp, err = s.IssueTokens(tx, grant, true)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("oauth: refresh: %w", err)
	}
	if replay {
		if err := s.RevokeGrant(grant.Id); err != nil {
			return nil, err
		}
		return nil, tokenErr(400, "invalid_grant", "refresh token was already used; every token of this grant is now revoked")
	}
	return resp, nil
}

// RevokeGrant ends a token family: its access and refresh tokens stop working.
func (s *Server) RevokeGrant(grantID string) error {
	_, err := s.app.DB().Update(pb_migrations.OAuthGrants, dbx.Params{"revoked": true}, dbx.HashExp{"id": grantID}).Execute()
	s.verified.invalidate()
	if err != nil {
		return fmt.Errorf("oauth: revoke grant: %w", err)
	}
	return nil
}

// claimOnce marks a single-use row (code, refresh token) used. Exactly one
// of any number of concurrent callers gets true; the others, and every
// later caller, get false: a replay.
func claimOnce(tx core.App, table, id string, now time.Time) (bool, error) {
	usedAt, err := types.ParseDateTime(now)
	if err != nil {
		return false, err
	}
	res, err := tx.DB().Update(table,
		dbx.Params{"used_at": usedAt.String()},
		dbx.NewExp("id = {:id} AND used_at = ''", dbx.Params{"id": id})).Execute()
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// usedWithinGrace reports whether the refresh token id was used no longer
// than RefreshGrace ago.
func (s *Server) usedWithinGrace(tx core.App, id string) (bool, error) {
	if s.cfg.RefreshGrace <= 0 {
		return false, nil
	}
	var row struct {
		UsedAt string `db:"used_at"`
	}
	err := tx.DB().Select("used_at").From(pb_migrations.OAuthTokens).
		Where(dbx.HashExp{"id": id}).One(&row)
	if err != nil {
		return false, fmt.Errorf("oauth: read refresh token: %w", err)
	}
	used, err := types.ParseDateTime(row.UsedAt)
	if err != nil {
		return false, fmt.Errorf("oauth: refresh token used_at: %w", err)
	}
	if used.IsZero() {
		return false, nil
	}
	return s.now().Sub(used.Time()) <= s.cfg.RefreshGrace, nil
}
