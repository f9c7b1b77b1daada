package oauth

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

// ClientMetadata is the RFC 7591 client metadata Picard understands;
// other members are ignored, as the RFC asks.
type ClientMetadata struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes              []string `json:"grant_types,omitempty"`
	ResponseTypes           []string `json:"response_types,omitempty"`
	ClientName              string   `json:"client_name,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
}

// RegistrationResponse is the RFC 7591 §3.2.1 answer.
type RegistrationResponse struct {
	ClientID              string `json:"client_id"`
	ClientSecret          string `json:"client_secret,omitempty"`
	ClientIDIssuedAt      int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt *int64 `json:"client_secret_expires_at,omitempty"`
	ClientMetadata
}

func regErr(e *core.RequestEvent, status int, code, desc string) error {
	e.Response.Header().Set("Cache-Control", "no-store")
	return e.JSON(status, map[string]string{"error": code, "error_description": desc})
}

// validate checks and completes client metadata; it returns the RFC 7591
// error code and a description when the metadata is refused.
func (m *ClientMetadata) validate() (code, desc string) {
	if len(m.RedirectURIs) == 0 {
		return "invalid_redirect_uri", "redirect_uris is required"
	}
	if len(m.RedirectURIs) > 20 {
		return "invalid_redirect_uri", "at most 20 redirect_uris"
	}
	for _, u := range m.RedirectURIs {
		if len(u) > 2000 {
			return "invalid_redirect_uri", "redirect URI too long"
		}
		if err := ValidRedirectURI(u); err != nil {
			return "invalid_redirect_uri", u + ": " + err.Error()
		}
	}
	switch m.TokenEndpointAuthMethod {
	case "":
		m.TokenEndpointAuthMethod = "client_secret_basic" // the RFC 7591 default
	case "none", "client_secret_basic", "client_secret_post":
	default:
		return "invalid_client_metadata", "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post"
	}
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{"authorization_code", "refresh_token"}
	}
	for _, g := range m.GrantTypes {
		if g != "authorization_code" && g != "refresh_token" {
			return "invalid_client_metadata", "grant_types may only contain authorization_code and refresh_token"
		}
	}
	if !slices.Contains(m.GrantTypes, "authorization_code") {
		return "invalid_client_metadata", "grant_types must contain authorization_code"
	}
	if len(m.ResponseTypes) == 0 {
		m.ResponseTypes = []string{"code"}
	}
	if len(m.ResponseTypes) != 1 || m.ResponseTypes[0] != "code" {
		return "invalid_client_metadata", `response_types must be ["code"]`
	}
	m.ClientName = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, m.ClientName))
	if len([]rune(m.ClientName)) > 200 {
		return "invalid_client_metadata", "client_name is too long (at most 200 characters)"
	}
	scopes := strings.Fields(m.Scope)
	if len(scopes) == 0 {
		scopes = SupportedScopes
	}
	for _, sc := range scopes {
		if !slices.Contains(SupportedScopes, sc) {
			return "invalid_client_metadata", "unknown scope " + sc + "; supported: " + strings.Join(SupportedScopes, " ")
		}
	}
	m.Scope = strings.Join(scopes, " ")
	return "", ""
}

// handleDynamicRegister is RFC 7591 dynamic client registration, open to
// anyone (rate limited per IP). Registered names are shown to users as
// unverified.
func (s *Server) handleDynamicRegister(e *core.RequestEvent) error {
	if !s.registrations.Take(e.RealIP(), s.now()) {
		e.Response.Header().Set("Retry-After", "3600")
		return regErr(e, http.StatusTooManyRequests, "too_many_requests", "too many registrations from this address; try again later")
	}
	body, err := io.ReadAll(io.LimitReader(e.Request.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return regErr(e, http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON object of at most 64 KiB")
	}
	var m ClientMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		return regErr(e, http.StatusBadRequest, "invalid_client_metadata", "the body must be a JSON object of client metadata: "+err.Error())
	}
	if code, desc := m.validate(); code != "" {
		return regErr(e, http.StatusBadRequest, code, desc)
	}
	name := m.ClientName
	if name == "" {
		name = "Unnamed app"
	}
	col, err := e.App.FindCachedCollectionByNameOrId(pb_migrations.OAuthClients)
	if err != nil {
		return e.InternalServerError("", err)
	}
	rec := core.NewRecord(col)
	rec.Set("name", name)
	rec.Set("redirect_uris", m.RedirectURIs)
	rec.Set("scopes", strings.Fields(m.Scope))
	rec.Set("source", sourceDynamic)
	rec.Set("token_endpoint_auth_method", m.TokenEndpointAuthMethod)
	confidential := m.TokenEndpointAuthMethod != "none"
	rec.Set("confidential", confidential)
	var secret string
	if confidential {
		if secret, err = randomToken(); err != nil {
			return e.InternalServerError("", err)
		}
		rec.Set("secret_hash", hashToken(secret))
	}
	if err := e.App.Save(rec); err != nil {
		return e.InternalServerError("could not save the client", err)
	}
	resp := RegistrationResponse{
		ClientID: rec.Id, ClientSecret: secret,
		ClientIDIssuedAt: rec.GetDateTime("created").Time().Unix(),
		ClientMetadata:   m,
	}
	if confidential {
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	e.Response.Header().Set("Cache-Control", "no-store")
	return e.JSON(http.StatusCreated, resp)
}
