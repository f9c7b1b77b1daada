package platform_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/plugins/oauth"
)

// TestOAuthAuthorizeRefusals: requests whose redirect URI is not proven
// get an error page and are never redirected; the rest are sent back with
// error, state and iss.
func TestOAuthAuthorizeRefusals(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	clientID := oaRegister(t, s, "refusals")
	loopbackID := func() string {
		r := s.Do("POST", "/register", nil, map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb", "http://localhost:7777/cb"}, "token_endpoint_auth_method": "none"})
		return r.Map(t)["client_id"].(string)
	}()
	b := newOABrowser(t, s)

	pages := []struct {
		name   string
		change func(q url.Values)
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "6f1d6b7e-1b7a-4c1e-9d2a-3f4e5a6b7c8d") }},
		{"malformed client", func(q url.Values) { q.Set("client_id", "not-a-client") }},
		{"missing client", func(q url.Values) { q.Del("client_id") }},
		{"missing redirect", func(q url.Values) { q.Del("redirect_uri") }},
		{"trailing slash", func(q url.Values) { q.Set("redirect_uri", oaRedirect+"/") }},
		{"other path", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:9876/other") }},
		{"extra query", func(q url.Values) { q.Set("redirect_uri", oaRedirect+"?x=1") }},
		{"other host", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/callback") }},
		{"fragment", func(q url.Values) { q.Set("redirect_uri", oaRedirect+"#frag") }},
		{"case of path", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:9876/Callback") }},
		{"case of scheme", func(q url.Values) { q.Set("redirect_uri", "HTTP://127.0.0.1:9876/callback") }},
		{"localhost for 127.0.0.1", func(q url.Values) { q.Set("redirect_uri", "http://localhost:9876/callback") }},
		{"javascript", func(q url.Values) { q.Set("redirect_uri", "javascript:alert(1)") }},
		{"user info", func(q url.Values) { q.Set("redirect_uri", "http://evil@127.0.0.1:9876/callback") }},
		{"repeated redirect", func(q url.Values) { q.Add("redirect_uri", oaRedirect) }},
		{"localhost other port", func(q url.Values) { q.Set("client_id", loopbackID); q.Set("redirect_uri", "http://localhost:7778/cb") }},
		{"loopback other path", func(q url.Values) { q.Set("client_id", loopbackID); q.Set("redirect_uri", "http://127.0.0.1:5000/cb2") }},
	}
	for _, tc := range pages {
		t.Run("page/"+tc.name, func(t *testing.T) {
			q, _ := oaParams(t, clientID)
			tc.change(q)
			p := b.get("/authorize?" + q.Encode())
			if p.Status != http.StatusBadRequest || p.Location != "" || !strings.Contains(p.Body, "cannot continue") {
				t.Fatalf("want an error page and no redirect, got %d Location %q", p.Status, p.Location)
			}
		})
	}

	// RFC 8252: a loopback IP redirect may use any port
	q, _ := oaParams(t, loopbackID)
	q.Set("redirect_uri", "http://127.0.0.1:51234/cb")
	if p := b.get("/authorize?" + q.Encode()); p.Status != http.StatusOK {
		t.Fatalf("loopback IP with another port must be accepted: %d %s", p.Status, p.Body)
	}

	redirects := []struct {
		name, wantErr string
		change        func(q url.Values)
	}{
		{"missing PKCE", "invalid_request", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }},
		{"plain PKCE", "invalid_request", func(q url.Values) { q.Set("code_challenge_method", "plain") }},
		{"PKCE without method", "invalid_request", func(q url.Values) { q.Del("code_challenge_method") }},
		{"short challenge", "invalid_request", func(q url.Values) { q.Set("code_challenge", "abc") }},
		{"foreign resource", "invalid_target", func(q url.Values) { q.Set("resource", "https://evil.example/mcp") }},
		{"resource with slash", "invalid_target", func(q url.Values) { q.Set("resource", s.URL+"/mcp/") }},
		{"unknown scope", "invalid_scope", func(q url.Values) { q.Set("scope", "memories:read admin") }},
		{"token response type", "unsupported_response_type", func(q url.Values) { q.Set("response_type", "token") }},
		{"missing response type", "invalid_request", func(q url.Values) { q.Del("response_type") }},
		{"repeated scope", "invalid_request", func(q url.Values) { q.Add("scope", "memories:read") }},
		{"prompt none signed out", "login_required", func(q url.Values) { q.Set("prompt", "none") }},
	}
	for _, tc := range redirects {
		t.Run("redirect/"+tc.name, func(t *testing.T) {
			q, _ := oaParams(t, clientID)
			tc.change(q)
			cb := oaCallback(t, s, b.get("/authorize?"+q.Encode()), q.Get("state"))
			if cb.Get("error") != tc.wantErr || cb.Get("code") != "" {
				t.Fatalf("want error %s, got %v", tc.wantErr, cb)
			}
		})
	}

	// a form post without the CSRF token is refused
	q, _ = oaParams(t, clientID)
	p := b.get("/authorize?" + q.Encode())
	form := p.formFields(t, "signin")
	form.Set("csrf_token", "forged")
	form.Set("identifier", "x")
	form.Set("password", "y")
	if p := b.post("/authorize", form); p.Status != http.StatusForbidden || p.Location != "" {
		t.Fatalf("forged CSRF token: %d", p.Status)
	}
	// another browser's token does not work either (bound to the browser cookie)
	other := newOABrowser(t, s)
	form = p.formFields(t, "signin")
	form.Set("identifier", "x")
	form.Set("password", "y")
	if p := other.post("/authorize", form); p.Status != http.StatusForbidden {
		t.Fatalf("CSRF token of another browser: %d", p.Status)
	}
}

// TestOAuthCodeAttacks: a code is single use, short-lived, and bound to its
// client, redirect URI, PKCE verifier and resource.
func TestOAuthCodeAttacks(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	clientID := oaRegister(t, s, "victim")
	otherID := oaRegister(t, s, "attacker")
	b := newOABrowser(t, s)
	params, _ := oaParams(t, clientID)
	b.signUpAndConsent(params, "ivan") // consent remembered from here on

	newCode := func(t *testing.T) (code, verifier string) {
		params, verifier := oaParams(t, clientID)
		q := oaCallback(t, s, b.get("/authorize?"+params.Encode()), params.Get("state"))
		return q.Get("code"), verifier
	}
	cases := []struct {
		name, wantErr string
		run           func(code, verifier string) *picardtest.Response
	}{
		{"wrong verifier", "invalid_grant", func(code, _ string) *picardtest.Response {
			v, _ := oaPKCE(t)
			return oaExchange(s, clientID, code, v, nil)
		}},
		{"missing verifier", "invalid_request", func(code, _ string) *picardtest.Response {
			return oaExchange(s, clientID, code, "", url.Values{"code_verifier": nil})
		}},
		{"challenge as verifier", "invalid_grant", func(code, v string) *picardtest.Response {
			_, ch := oaPKCE(t)
			return oaExchange(s, clientID, code, ch, nil)
		}},
		{"another client", "invalid_grant", func(code, v string) *picardtest.Response {
			return oaExchange(s, otherID, code, v, nil)
		}},
		{"another redirect uri", "invalid_grant", func(code, v string) *picardtest.Response {
			return oaExchange(s, clientID, code, v, url.Values{"redirect_uri": {"http://127.0.0.1:9876/other"}})
		}},
		{"no redirect uri", "invalid_grant", func(code, v string) *picardtest.Response {
			return oaExchange(s, clientID, code, v, url.Values{"redirect_uri": nil})
		}},
		{"foreign resource", "invalid_target", func(code, v string) *picardtest.Response {
			return oaExchange(s, clientID, code, v, url.Values{"resource": {"https://evil.example/mcp"}})
		}},
		{"unknown code", "invalid_grant", func(_, v string) *picardtest.Response {
			return oaExchange(s, clientID, "made-up-code", v, nil)
		}},
		{"unknown client", "invalid_client", func(code, v string) *picardtest.Response {
			return oaExchange(s, "6f1d6b7e-1b7a-4c1e-9d2a-3f4e5a6b7c8d", code, v, nil)
		}},
		{"code in the query string", "invalid_request", func(code, v string) *picardtest.Response {
			return oaPost(s, "/token?code="+url.QueryEscape(code), url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "redirect_uri": {oaRedirect}, "code_verifier": {v}}, "", "")
		}},
		{"expired", "invalid_grant", func(code, v string) *picardtest.Response {
			clk.Advance(5*time.Minute + time.Second)
			return oaExchange(s, clientID, code, v, nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, verifier := newCode(t)
			r := tc.run(code, verifier)
			if r.Status == http.StatusOK || r.Map(t)["error"] != tc.wantErr || r.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("want %s, got %d %s", tc.wantErr, r.Status, r.Body)
			}
		})
	}

	t.Run("replay revokes the first exchange", func(t *testing.T) {
		code, verifier := newCode(t)
		r := oaExchange(s, clientID, code, verifier, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("first exchange: %d %s", r.Status, r.Body)
		}
		var tk oaTokens
		r.JSON(t, &tk)
		if oaToolStatus(s, tk.AccessToken) != http.StatusOK {
			t.Fatal("first token must work")
		}
		if r := oaExchange(s, clientID, code, verifier, nil); r.Status != http.StatusBadRequest || r.Map(t)["error"] != "invalid_grant" {
			t.Fatalf("replay: %d %s", r.Status, r.Body)
		}
		if oaToolStatus(s, tk.AccessToken) != http.StatusUnauthorized {
			t.Fatal("a replayed code must revoke the access token of the first exchange")
		}
		if r := oaRefresh(s, clientID, tk.RefreshToken, nil); r.Status != http.StatusBadRequest {
			t.Fatalf("a replayed code must revoke the refresh token too: %d", r.Status)
		}
	})
}

// TestOAuthRefreshAttacks: rotation, replay, races, other clients, scope.
func TestOAuthRefreshAttacks(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	clientID := oaRegister(t, s, "app")
	otherID := oaRegister(t, s, "other app")

	t.Run("replay revokes the family", func(t *testing.T) {
		tk := oaConnect(t, s, clientID, "julia")
		r := oaRefresh(s, clientID, tk.RefreshToken, nil)
		var next oaTokens
		r.JSON(t, &next)
		clk.Advance(oauth.DefaultRefreshGrace + time.Second)
		if r := oaRefresh(s, clientID, tk.RefreshToken, nil); r.Status != http.StatusBadRequest || r.Map(t)["error"] != "invalid_grant" {
			t.Fatalf("replay: %d %s", r.Status, r.Body)
		}
		if oaToolStatus(s, next.AccessToken) != http.StatusUnauthorized || oaToolStatus(s, tk.AccessToken) != http.StatusUnauthorized {
			t.Fatal("every access token of the family must be revoked")
		}
		if r := oaRefresh(s, clientID, next.RefreshToken, nil); r.Status != http.StatusBadRequest {
			t.Fatal("the newest refresh token must be revoked too")
		}
	})

	t.Run("concurrent refreshes of one client both succeed; the family lives", func(t *testing.T) {
		tk := oaConnect(t, s, clientID, "karl")
		const n = 2
		results := make([]*picardtest.Response, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i] = oaRefresh(s, clientID, tk.RefreshToken, nil)
			}()
		}
		close(start)
		wg.Wait()
		for i, r := range results {
			if r.Status != http.StatusOK {
				t.Fatalf("refresh %d inside the grace window: %d %s", i, r.Status, r.Body)
			}
			var next oaTokens
			r.JSON(t, &next)
			if oaToolStatus(s, next.AccessToken) != http.StatusOK {
				t.Fatalf("refresh %d: its access token must work", i)
			}
		}
		// once the window has passed, the rotated token is a replay again
		clk.Advance(oauth.DefaultRefreshGrace + time.Second)
		if r := oaRefresh(s, clientID, tk.RefreshToken, nil); r.Status != http.StatusBadRequest {
			t.Fatalf("replay after the grace window: %d %s", r.Status, r.Body)
		}
		var first oaTokens
		results[0].JSON(t, &first)
		if oaToolStatus(s, first.AccessToken) != http.StatusUnauthorized {
			t.Fatal("a replay after the grace window must revoke the family")
		}
	})

	t.Run("another client cannot use the grace window", func(t *testing.T) {
		tk := oaConnect(t, s, clientID, "mira")
		if r := oaRefresh(s, clientID, tk.RefreshToken, nil); r.Status != http.StatusOK {
			t.Fatalf("refresh: %d %s", r.Status, r.Body)
		}
		if r := oaRefresh(s, otherID, tk.RefreshToken, nil); r.Status != http.StatusBadRequest {
			t.Fatalf("another client within the window: %d %s", r.Status, r.Body)
		}
	})

	cases := []struct {
		name, wantErr string
		status        int
		run           func(tk oaTokens) *picardtest.Response
	}{
		{"another client", "invalid_grant", 400, func(tk oaTokens) *picardtest.Response { return oaRefresh(s, otherID, tk.RefreshToken, nil) }},
		{"scope escalation", "invalid_scope", 400, func(tk oaTokens) *picardtest.Response {
			return oaRefresh(s, clientID, tk.RefreshToken, url.Values{"scope": {"memories:read memories:write admin"}})
		}},
		{"foreign resource", "invalid_target", 400, func(tk oaTokens) *picardtest.Response {
			return oaRefresh(s, clientID, tk.RefreshToken, url.Values{"resource": {"https://evil.example/mcp"}})
		}},
		{"made-up token", "invalid_grant", 400, func(oaTokens) *picardtest.Response { return oaRefresh(s, clientID, "made-up", nil) }},
		{"no client", "invalid_client", 401, func(tk oaTokens) *picardtest.Response {
			return oaPost(s, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.RefreshToken}}, "", "")
		}},
		{"unknown grant type", "unsupported_grant_type", 400, func(tk oaTokens) *picardtest.Response {
			return oaRefresh(s, clientID, tk.RefreshToken, url.Values{"grant_type": {"password"}})
		}},
	}
	tk := oaConnect(t, s, clientID, "lena")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.run(tk)
			if r.Status != tc.status || r.Map(t)["error"] != tc.wantErr {
				t.Fatalf("want %d %s, got %d %s", tc.status, tc.wantErr, r.Status, r.Body)
			}
		})
	}
	// none of those refusals consumed the token; narrowing the scope is allowed
	r := oaRefresh(s, clientID, tk.RefreshToken, url.Values{"scope": {"memories:read"}})
	if r.Status != http.StatusOK || r.Map(t)["scope"] != "memories:read" {
		t.Fatalf("narrowing refresh: %d %s", r.Status, r.Body)
	}
}

// TestOAuthForgedTokens: the bearer guard refuses hand-made JWTs.
func TestOAuthForgedTokens(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	clientID := oaRegister(t, s, "app")
	tk := oaConnect(t, s, clientID, "mona")
	if oaToolStatus(s, tk.AccessToken) != http.StatusOK {
		t.Fatal("genuine token must work")
	}
	parts := strings.Split(tk.AccessToken, ".")
	var header, claims map[string]any
	decodeSeg(t, parts[0], &header)
	decodeSeg(t, parts[1], &claims)
	kid, _ := header["kid"].(string)

	// the server's public key, as an attacker would read it from the JWKS
	pubDER := func() []byte {
		k, err := s.App.FindRecordById(pb_migrations.OAuthKeys, kid)
		if err != nil {
			t.Fatal(err)
		}
		var jwk struct{ X, Y string }
		if err := k.UnmarshalJSONField("public_jwk", &jwk); err != nil {
			t.Fatal(err)
		}
		x, _ := base64.RawURLEncoding.DecodeString(jwk.X)
		y, _ := base64.RawURLEncoding.DecodeString(jwk.Y)
		return append(append([]byte{4}, x...), y...)
	}()
	attackerKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	with := func(change func(c jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{}
		for k, v := range claims {
			c[k] = v
		}
		change(c)
		return c
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims, hdr map[string]any) string {
		tok := jwt.NewWithClaims(m, c)
		tok.Header["typ"] = "at+jwt"
		tok.Header["kid"] = kid
		for k, v := range hdr {
			tok.Header[k] = v
		}
		out, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	same := func(jwt.MapClaims) {}
	cases := []struct {
		name  string
		token func() string
	}{
		{"alg none", func() string {
			return sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, with(same), nil)
		}},
		{"HS256 keyed with the public key", func() string { return sign(jwt.SigningMethodHS256, pubDER, with(same), nil) }},
		{"unknown kid", func() string {
			return sign(jwt.SigningMethodES256, attackerKey, with(same), map[string]any{"kid": "6f1d6b7e-1b7a-4c1e-9d2a-3f4e5a6b7c8d"})
		}},
		{"attacker key with the real kid", func() string { return sign(jwt.SigningMethodES256, attackerKey, with(same), nil) }},
		{"altered claims", func() string {
			c, _ := json.Marshal(with(func(c jwt.MapClaims) { c["scope"] = "memories:read memories:write admin" }))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
		}},
		{"altered subject", func() string {
			c, _ := json.Marshal(with(func(c jwt.MapClaims) { c["sub"] = "6f1d6b7e-1b7a-4c1e-9d2a-3f4e5a6b7c8d" }))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
		}},
		{"wrong aud", func() string {
			return sign(jwt.SigningMethodES256, attackerKey, with(func(c jwt.MapClaims) { c["aud"] = "https://evil.example/mcp" }), nil)
		}},
		{"missing exp", func() string {
			return sign(jwt.SigningMethodES256, attackerKey, with(func(c jwt.MapClaims) { delete(c, "exp") }), nil)
		}},
		{"garbage", func() string { return "not.a.jwt" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if st := oaToolStatus(s, tc.token()); st != http.StatusUnauthorized {
				t.Fatalf("want 401, got %d", st)
			}
		})
	}
	t.Run("token in the query string", func(t *testing.T) {
		r := s.Do("POST", "/api/tools?access_token="+url.QueryEscape(tk.AccessToken), nil, map[string]any{"tool": "get_memories"})
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("want 401, got %d", r.Status)
		}
	})
	t.Run("expired", func(t *testing.T) {
		clk.Advance(time.Hour + time.Minute)
		if st := oaToolStatus(s, tk.AccessToken); st != http.StatusUnauthorized {
			t.Fatalf("want 401, got %d", st)
		}
	})
}

func decodeSeg(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
