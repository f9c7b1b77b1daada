package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// PicardTimeout bounds every call to Picard, so a slow or dead Picard
// turns into an "unreachable" page within a few seconds.
const PicardTimeout = 5 * time.Second

// UnreachableError is Picard not answering (or answering garbage).
type UnreachableError struct{ Err error }

func (e *UnreachableError) Error() string { return "Picard is unreachable: " + e.Err.Error() }
func (e *UnreachableError) Unwrap() error { return e.Err }

// ErrNotConnected: the person has not connected to Picard yet.
var ErrNotConnected = errors.New("not connected to Picard")

// ErrReconnect: Picard refused the stored tokens; the person must connect again.
var ErrReconnect = errors.New("the Picard connection has expired; connect again")

// ErrNoClient: this app is not registered at Picard.
var ErrNoClient = errors.New("this app is not registered at Picard yet: run `clientapp register` or set CLIENTAPP_CLIENT_ID and CLIENTAPP_CLIENT_SECRET")

// Scopes this app asks for.
var Scopes = []string{"memories:read", "memories:write"}

// Credentials are this app's OAuth client credentials at Picard.
type Credentials struct{ ID, Secret string }

// Picard talks to Picard's HTTP endpoints (everything but MCP).
type Picard struct {
	URL      string // server-to-server
	AuthURL  string // Picard's /authorize as browsers reach it
	Callback string
	HTTP     *http.Client
	Creds    func(ctx context.Context) (Credentials, error)
	// Timeout bounds each call (PicardTimeout when zero); the one-off
	// register command allows more than a page does.
	Timeout time.Duration
}

func (p *Picard) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return PicardTimeout
}

// TokenSet is what Picard's token endpoints answer.
type TokenSet struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	UserID       string `json:"user_id"`
}

func (p *Picard) client() *http.Client {
	if p.HTTP != nil {
		return p.HTTP
	}
	return &http.Client{Timeout: p.timeout()}
}

func (p *Picard) postJSON(ctx context.Context, path, auth string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("encode: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+path, bytes.NewReader(b))
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return 0, &UnreachableError{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return resp.StatusCode, &UnreachableError{err}
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("picard %s: %d %s", path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, &UnreachableError{fmt.Errorf("decode %s: %w", path, err)}
		}
	}
	return resp.StatusCode, nil
}

// DirectConnect is the seed's recommended flow: the app (a confidential
// client) asks Picard for tokens for this person, creating the Picard user
// if needed.
func (p *Picard) DirectConnect(ctx context.Context, username, email string) (*TokenSet, error) {
	cr, err := p.Creds(ctx)
	if err != nil {
		return nil, err
	}
	var ts TokenSet
	_, err = p.postJSON(ctx, "/api/user-tokens/user-token", "", map[string]any{
		"client_id": cr.ID, "client_secret": cr.Secret, "username": username, "email": email, "create_if_not_exists": true,
	}, &ts)
	if err != nil {
		return nil, err
	}
	return &ts, nil
}

// Register signs in as a Picard superuser and registers this app as a
// confidential client with its callback URI.
func (p *Picard) Register(ctx context.Context, adminEmail, adminPassword, name string) (Credentials, error) {
	var auth struct {
		Token string `json:"token"`
	}
	if _, err := p.postJSON(ctx, "/api/collections/_superusers/auth-with-password", "", map[string]any{"identity": adminEmail, "password": adminPassword}, &auth); err != nil {
		return Credentials{}, fmt.Errorf("superuser sign-in: %w", err)
	}
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	_, err := p.postJSON(ctx, "/api/admin/clients/register", auth.Token, map[string]any{
		"name": name, "redirect_uris": []string{p.Callback}, "scopes": Scopes, "confidential": true,
	}, &out)
	if err != nil {
		return Credentials{}, fmt.Errorf("register client: %w", err)
	}
	return Credentials{ID: out.ClientID, Secret: out.ClientSecret}, nil
}

// OAuth is the authorization-code configuration for this app.
func (p *Picard) OAuth(ctx context.Context) (*oauth2.Config, error) {
	cr, err := p.Creds(ctx)
	if err != nil {
		return nil, err
	}
	return &oauth2.Config{
		ClientID: cr.ID, ClientSecret: cr.Secret, RedirectURL: p.Callback, Scopes: Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader},
	}, nil
}

func (p *Picard) oauthCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.client())
}

// Exchange trades an authorization code (with its PKCE verifier).
func (p *Picard) Exchange(ctx context.Context, code, verifier string) (*oauth2.Token, error) {
	conf, err := p.OAuth(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, PicardTimeout)
	defer cancel()
	tok, err := conf.Exchange(p.oauthCtx(ctx), code, oauth2.VerifierOption(verifier))
	return tok, classifyOAuth(err)
}

// Refresh rotates a refresh token.
func (p *Picard) Refresh(ctx context.Context, refresh string) (*oauth2.Token, error) {
	conf, err := p.OAuth(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, PicardTimeout)
	defer cancel()
	tok, err := conf.TokenSource(p.oauthCtx(ctx), &oauth2.Token{RefreshToken: refresh, Expiry: time.Unix(1, 0)}).Token()
	return tok, classifyOAuth(err)
}

// classifyOAuth tells a refusal (ErrReconnect) from Picard being away.
func classifyOAuth(err error) error {
	if err == nil {
		return nil
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode/100 == 4 {
		return fmt.Errorf("%w: %s", ErrReconnect, re.ErrorCode)
	}
	return &UnreachableError{err}
}

// Revoke revokes a token at Picard (RFC 7009).
func (p *Picard) Revoke(ctx context.Context, token string) error {
	cr, err := p.Creds(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, PicardTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"refresh_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/revoke", strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(cr.ID), url.QueryEscape(cr.Secret))
	resp, err := p.client().Do(req)
	if err != nil {
		return &UnreachableError{err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("revoke: %d %s", resp.StatusCode, b)
	}
	return nil
}

// Ping checks that Picard answers its health endpoint.
func (p *Picard) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/api/health", nil)
	if err != nil {
		return err
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return &UnreachableError{err}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &UnreachableError{fmt.Errorf("health: %d", resp.StatusCode)}
	}
	return nil
}

// subject reads the sub claim of a JWT access token this app just got
// from Picard's token endpoint (no signature check needed: it came
// straight from Picard over our own connection; Picard checks it on use).
func subject(accessToken string) string {
	parts := strings.Split(accessToken, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Sub string `json:"sub"`
	}
	_ = json.Unmarshal(b, &c)
	return c.Sub
}
