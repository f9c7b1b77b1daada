package platform_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestOAuthHappyPath is what an MCP host does: discovery, dynamic
// registration, the browser flow with PKCE, tokens, a tool call, refresh,
// remembered consent, the user's list of apps, revocation.
func TestOAuthHappyPath(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})

	// discovery: protected resource metadata points at the authorization server
	for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
		prm := s.Do("GET", path, nil, nil).Map(t)
		if prm["resource"] != s.URL+"/mcp" || !slices.Equal(anyStrings(prm["authorization_servers"]), []string{s.URL}) ||
			!slices.Equal(anyStrings(prm["bearer_methods_supported"]), []string{"header"}) || len(anyStrings(prm["scopes_supported"])) != 2 {
			t.Fatalf("%s: %v", path, prm)
		}
	}
	as := s.Do("GET", "/.well-known/oauth-authorization-server", nil, nil).Map(t)
	for k, want := range map[string]any{
		"issuer": s.URL, "authorization_endpoint": s.URL + "/authorize", "token_endpoint": s.URL + "/token",
		"registration_endpoint": s.URL + "/register", "revocation_endpoint": s.URL + "/revoke",
		"introspection_endpoint": s.URL + "/introspect", "jwks_uri": s.URL + "/.well-known/jwks.json",
		"client_id_metadata_document_supported": true, "authorization_response_iss_parameter_supported": true,
	} {
		if as[k] != want {
			t.Errorf("metadata %s = %v, want %v", k, as[k], want)
		}
	}
	for k, want := range map[string][]string{
		"code_challenge_methods_supported":      {"S256"},
		"response_types_supported":              {"code"},
		"grant_types_supported":                 {"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": {"none", "client_secret_basic", "client_secret_post"},
		"scopes_supported":                      {"memories:read", "memories:write"},
	} {
		if got := anyStrings(as[k]); !slices.Equal(got, want) {
			t.Errorf("metadata %s = %v, want %v", k, got, want)
		}
	}

	// dynamic registration of a public client
	reg := s.Do("POST", "/register", nil, map[string]any{
		"client_name": "Inspector", "redirect_uris": []string{oaRedirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"logo_uri": "https://example.com/logo.png",
	})
	if reg.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", reg.Status, reg.Body)
	}
	rm := reg.Map(t)
	clientID, _ := rm["client_id"].(string)
	if clientID == "" || rm["client_secret"] != nil || rm["token_endpoint_auth_method"] != "none" || rm["client_name"] != "Inspector" ||
		rm["client_id_issued_at"] == nil || !slices.Equal(anyStrings(rm["redirect_uris"]), []string{oaRedirect}) {
		t.Fatalf("registration response: %v", rm)
	}

	// browser: authorize -> sign up -> consent -> code
	b := newOABrowser(t, s)
	params, verifier := oaParams(t, clientID)
	params.Set("resource", s.URL+"/mcp")
	first := b.get("/authorize?" + params.Encode())
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if first.Header.Get(h) != want {
			t.Errorf("header %s = %q, want %q", h, first.Header.Get(h), want)
		}
	}
	if csp := first.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q lacks frame-ancestors 'none'", csp)
	}
	if !strings.Contains(first.Body, `<html lang="en">`) || !strings.Contains(first.Body, `<label for="identifier">`) || !strings.Contains(first.Body, "Inspector") {
		t.Errorf("sign-in page must be labelled, in English, and name the app:\n%s", first.Body)
	}
	code := b.signUpAndConsent(params, "hannah")

	r := oaExchange(s, clientID, code, verifier, url.Values{"resource": {s.URL + "/mcp"}})
	if r.Status != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("token: %d %s", r.Status, r.Body)
	}
	var tk oaTokens
	r.JSON(t, &tk)
	if tk.TokenType != "Bearer" || tk.RefreshToken == "" || tk.Scope != "memories:read memories:write" || tk.ExpiresIn != 3600 {
		t.Fatalf("token response: %+v", tk)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tk.AccessToken, claims); err != nil {
		t.Fatal(err)
	}
	if aud, _ := claims.GetAudience(); !slices.Equal(aud, []string{s.URL + "/mcp"}) || claims["client_id"] != clientID || claims["iss"] != s.URL {
		t.Fatalf("access token claims: %v", claims)
	}

	// the token works on the tools
	if st := oaToolStatus(s, tk.AccessToken); st != http.StatusOK {
		t.Fatalf("get_memories with the new token: %d", st)
	}

	// refresh rotates
	r = oaRefresh(s, clientID, tk.RefreshToken, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	var tk2 oaTokens
	r.JSON(t, &tk2)
	if tk2.RefreshToken == tk.RefreshToken || oaToolStatus(s, tk2.AccessToken) != http.StatusOK {
		t.Fatal("refresh must rotate, and the new access token must work")
	}

	// a second authorization: signed in and consent remembered -> straight back with a code
	params2, verifier2 := oaParams(t, clientID)
	q := oaCallback(t, s, b.get("/authorize?"+params2.Encode()), params2.Get("state"))
	r = oaExchange(s, clientID, q.Get("code"), verifier2, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("second exchange: %d %s", r.Status, r.Body)
	}
	var tk3 oaTokens
	r.JSON(t, &tk3)

	// prompt=consent asks again even though consent is remembered
	params3, _ := oaParams(t, clientID)
	params3.Set("prompt", "consent")
	if p := b.get("/authorize?" + params3.Encode()); p.Status != http.StatusOK || !strings.Contains(p.Body, "Allow access") {
		t.Fatalf("prompt=consent: %d", p.Status)
	}

	// the user's apps
	apps := s.Do("GET", "/api/oauth/apps", oaBearer(tk3.AccessToken), nil)
	if apps.Status != http.StatusOK {
		t.Fatalf("apps: %d %s", apps.Status, apps.Body)
	}
	var list struct {
		Apps []struct {
			ClientID    string   `json:"client_id"`
			ClientName  string   `json:"client_name"`
			Scopes      []string `json:"scopes"`
			ConnectedAt string   `json:"connected_at"`
			LastUsed    *string  `json:"last_used"`
		} `json:"apps"`
	}
	apps.JSON(t, &list)
	if len(list.Apps) != 1 || list.Apps[0].ClientID != clientID || list.Apps[0].ClientName != "Inspector" ||
		!slices.Equal(list.Apps[0].Scopes, []string{"memories:read", "memories:write"}) || list.Apps[0].ConnectedAt == "" || list.Apps[0].LastUsed == nil {
		t.Fatalf("apps: %s", apps.Body)
	}
	if r := s.Do("GET", "/api/oauth/apps", nil, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("apps without a token: %d", r.Status)
	}

	// revoking the refresh token ends its grant: its access token stops, the other grant lives
	if r := oaPost(s, "/revoke", url.Values{"client_id": {clientID}, "token": {tk2.RefreshToken}, "token_type_hint": {"refresh_token"}}, "", ""); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	if oaToolStatus(s, tk2.AccessToken) != http.StatusUnauthorized || oaRefresh(s, clientID, tk2.RefreshToken, nil).Status != http.StatusBadRequest {
		t.Fatal("a revoked refresh token must end its grant")
	}
	if oaToolStatus(s, tk3.AccessToken) != http.StatusOK {
		t.Fatal("the other grant must live on")
	}

	// disconnecting the app ends every grant and forgets the consent
	if r := s.Do("DELETE", "/api/oauth/apps/"+clientID, oaBearer(tk3.AccessToken), nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete app: %d %s", r.Status, r.Body)
	}
	if oaToolStatus(s, tk3.AccessToken) != http.StatusUnauthorized {
		t.Fatal("disconnecting the app must revoke its tokens")
	}
	params4, _ := oaParams(t, clientID)
	if p := b.get("/authorize?" + params4.Encode()); p.Status != http.StatusOK || !strings.Contains(p.Body, "Allow access") {
		t.Fatalf("after disconnecting, consent must be asked again: %d %s", p.Status, p.Location)
	}
}

func anyStrings(v any) []string {
	list, _ := v.([]any)
	out := []string{}
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
