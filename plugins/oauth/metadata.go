package oauth

import (
	"net/http"

	"github.com/pocketbase/pocketbase/core"
)

// AuthServerMetadata is the RFC 8414 authorization server metadata.
type AuthServerMetadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	RegistrationEndpoint                       string   `json:"registration_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
}

// ProtectedResourceMetadata is the RFC 9728 metadata of the MCP resource.
type ProtectedResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

var (
	authMethodsAll    = []string{"none", "client_secret_basic", "client_secret_post"}
	authMethodsSecret = []string{"client_secret_basic", "client_secret_post"}
)

// Metadata returns the authorization server metadata.
func (s *Server) Metadata() AuthServerMetadata {
	iss := s.cfg.Issuer
	return AuthServerMetadata{
		Issuer:                                     iss,
		AuthorizationEndpoint:                      iss + "/authorize",
		TokenEndpoint:                              iss + "/token",
		RegistrationEndpoint:                       iss + "/register",
		RevocationEndpoint:                         iss + "/revoke",
		IntrospectionEndpoint:                      iss + "/introspect",
		JWKSURI:                                    iss + "/.well-known/jwks.json",
		ScopesSupported:                            SupportedScopes,
		ResponseTypesSupported:                     []string{"code"},
		ResponseModesSupported:                     []string{"query"},
		GrantTypesSupported:                        []string{"authorization_code", "refresh_token"},
		TokenEndpointAuthMethodsSupported:          authMethodsAll,
		RevocationEndpointAuthMethodsSupported:     authMethodsAll,
		IntrospectionEndpointAuthMethodsSupported:  authMethodsSecret,
		CodeChallengeMethodsSupported:              []string{"S256"},
		ClientIDMetadataDocumentSupported:          true,
		AuthorizationResponseIssParameterSupported: true,
	}
}

// ResourceMetadata returns the protected resource metadata of /mcp.
func (s *Server) ResourceMetadata() ProtectedResourceMetadata {
	return ProtectedResourceMetadata{
		Resource:               s.cfg.Resource,
		AuthorizationServers:   []string{s.cfg.Issuer},
		ScopesSupported:        SupportedScopes,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "Picard memories",
	}
}

func (s *Server) handleASMetadata(e *core.RequestEvent) error {
	e.Response.Header().Set("Cache-Control", "public, max-age=3600")
	return e.JSON(http.StatusOK, s.Metadata())
}

func (s *Server) handlePRMetadata(e *core.RequestEvent) error {
	e.Response.Header().Set("Cache-Control", "public, max-age=3600")
	return e.JSON(http.StatusOK, s.ResourceMetadata())
}
