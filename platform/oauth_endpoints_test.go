package platform_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
)

// TestOAuthIntrospectAndRevoke: RFC 7662 needs client authentication and
// shows only the caller's tokens; RFC 7009 revokes access tokens by jti.
func TestOAuthIntrospectAndRevoke(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	su := s.SuperuserToken()
	conf := s.RegisterClient(su)
	other := s.RegisterClient(su)
	u := s.UserToken(conf, "nina")
	publicID := oaRegister(t, s, "public app")

	introspect := func(id, secret, tok string) *picardtest.Response {
		return oaPost(s, "/introspect", url.Values{"token": {tok}}, id, secret)
	}
	refusals := []struct {
		name string
		r    *picardtest.Response
	}{
		{"no client auth", oaPost(s, "/introspect", url.Values{"token": {u.Access}}, "", "")},
		{"wrong secret", introspect(conf.ID, "wrong", u.Access)},
		{"public client", oaPost(s, "/introspect", url.Values{"token": {u.Access}, "client_id": {publicID}}, "", "")},
	}
	for _, tc := range refusals {
		if tc.r.Status != http.StatusUnauthorized || tc.r.Map(t)["error"] != "invalid_client" {
			t.Errorf("introspect %s: want 401 invalid_client, got %d %s", tc.name, tc.r.Status, tc.r.Body)
		}
	}
	m := introspect(conf.ID, conf.Secret, u.Access).Map(t)
	for k, want := range map[string]any{"active": true, "client_id": conf.ID, "sub": u.ID, "aud": s.URL + "/mcp", "iss": s.URL,
		"scope": "memories:read memories:write", "token_type": "Bearer"} {
		if m[k] != want {
			t.Errorf("introspect %s = %v, want %v", k, m[k], want)
		}
	}
	if m["exp"] == nil || m["iat"] == nil {
		t.Errorf("introspect lacks exp/iat: %v", m)
	}
	if m := oaPost(s, "/introspect", url.Values{"token": {u.Refresh}, "client_id": {conf.ID}, "client_secret": {conf.Secret}}, "", "").Map(t); m["active"] != true || m["sub"] != u.ID {
		t.Errorf("introspect refresh token (client_secret_post): %v", m)
	}
	for name, tok := range map[string]string{"garbage": "nope", "other client's": u.Access} {
		id, secret := conf.ID, conf.Secret
		if name == "other client's" {
			id, secret = other.ID, other.Secret
		}
		if m := introspect(id, secret, tok).Map(t); len(m) != 1 || m["active"] != false {
			t.Errorf("introspect %s token: want only active:false, got %v", name, m)
		}
	}

	// revoke: unknown tokens answer 200; another client cannot revoke; the owner can
	if r := oaPost(s, "/revoke", url.Values{"token": {"unknown"}}, conf.ID, conf.Secret); r.Status != http.StatusOK {
		t.Fatalf("revoke unknown: %d", r.Status)
	}
	if r := oaPost(s, "/revoke", url.Values{"token": {u.Access}}, "", ""); r.Status != http.StatusUnauthorized {
		t.Fatalf("revoke without client auth: %d", r.Status)
	}
	if r := oaPost(s, "/revoke", url.Values{"token": {u.Access}}, other.ID, other.Secret); r.Status != http.StatusOK || s.Tool(u, "get_memories", nil).Status != http.StatusOK {
		t.Fatalf("another client must not revoke the token: %d", r.Status)
	}
	if r := oaPost(s, "/revoke", url.Values{"token": {u.Access}, "token_type_hint": {"access_token"}}, conf.ID, conf.Secret); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d", r.Status)
	}
	if st := s.Tool(u, "get_memories", nil).Status; st != http.StatusUnauthorized {
		t.Fatalf("revoked access token still works: %d", st)
	}
	if m := introspect(conf.ID, conf.Secret, u.Access).Map(t); m["active"] != false {
		t.Fatalf("revoked access token introspects active: %v", m)
	}
	// the refresh token of the grant still works (only the access token was revoked)
	if r := oaPost(s, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {u.Refresh}}, conf.ID, conf.Secret); r.Status != http.StatusOK {
		t.Fatalf("refresh after revoking only the access token: %d %s", r.Status, r.Body)
	}
}

// TestOAuthDynamicRegistration: RFC 7591 validation and rate limit.
func TestOAuthDynamicRegistration(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	bad := []struct {
		name, wantErr string
		body          map[string]any
	}{
		{"no redirect uris", "invalid_redirect_uri", map[string]any{"token_endpoint_auth_method": "none"}},
		{"javascript", "invalid_redirect_uri", map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}},
		{"data", "invalid_redirect_uri", map[string]any{"redirect_uris": []string{"data:text/html,hi"}}},
		{"http not loopback", "invalid_redirect_uri", map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}},
		{"fragment", "invalid_redirect_uri", map[string]any{"redirect_uris": []string{"https://app.example/cb#x"}}},
		{"relative", "invalid_redirect_uri", map[string]any{"redirect_uris": []string{"/cb"}}},
		{"auth method", "invalid_client_metadata", map[string]any{"redirect_uris": []string{oaRedirect}, "token_endpoint_auth_method": "private_key_jwt"}},
		{"implicit grant", "invalid_client_metadata", map[string]any{"redirect_uris": []string{oaRedirect}, "grant_types": []string{"implicit"}}},
		{"token response", "invalid_client_metadata", map[string]any{"redirect_uris": []string{oaRedirect}, "response_types": []string{"token"}}},
		{"unknown scope", "invalid_client_metadata", map[string]any{"redirect_uris": []string{oaRedirect}, "scope": "admin"}},
		{"wrong type", "invalid_client_metadata", map[string]any{"redirect_uris": "https://app.example/cb"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Do("POST", "/register", nil, tc.body)
			if r.Status != http.StatusBadRequest || r.Map(t)["error"] != tc.wantErr {
				t.Fatalf("want 400 %s, got %d %s", tc.wantErr, r.Status, r.Body)
			}
		})
	}
	// a confidential client gets a secret and can use client_secret_basic
	r := s.Do("POST", "/register", nil, map[string]any{"client_name": "server app", "redirect_uris": []string{"https://app.example/cb"}, "scope": "memories:read"})
	m := r.Map(t)
	if r.Status != http.StatusCreated || m["client_secret"] == nil || m["token_endpoint_auth_method"] != "client_secret_basic" || m["scope"] != "memories:read" {
		t.Fatalf("confidential registration: %d %s", r.Status, r.Body)
	}
	id, secret := m["client_id"].(string), m["client_secret"].(string)
	if r := oaPost(s, "/introspect", url.Values{"token": {"x"}}, id, secret); r.Status != http.StatusOK {
		t.Fatalf("registered secret must authenticate: %d %s", r.Status, r.Body)
	}
	// rate limit: 20 registrations an hour per address (13 were made above)
	limited := false
	for range 20 {
		if r := s.Do("POST", "/register", nil, map[string]any{"redirect_uris": []string{oaRedirect}, "token_endpoint_auth_method": "none"}); r.Status == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("registration must be rate limited")
	}
}

// TestOAuthSignInThrottle: the message never tells which part was wrong;
// five failures lock the account for 15 minutes; many from one address
// lock the address.
func TestOAuthSignInThrottle(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	clientID := oaRegister(t, s, "app")
	oaConnect(t, s, clientID, "olga") // password oaPassword
	b := newOABrowser(t, s)
	params, _ := oaParams(t, clientID)

	wrongPw := b.signIn(params, "olga", "wrong password!")
	noUser := b.signIn(params, "nobody@picard.test", "wrong password!")
	for name, p := range map[string]*oaPage{"wrong password": wrongPw, "unknown user": noUser} {
		if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "Wrong email/username or password.") {
			t.Errorf("%s: want the generic message, got %d", name, p.Status)
		}
	}
	for range 4 {
		b.signIn(params, "OLGA@picard.test", "wrong password!") // email and username count for one account
	}
	if p := b.signIn(params, "olga", oaPassword); p.Status != http.StatusTooManyRequests || !strings.Contains(p.Body, "Too many failed sign-ins") {
		t.Fatalf("sixth attempt, right password: want 429, got %d", p.Status)
	}
	clk.Advance(15*time.Minute + time.Second)
	if p := b.signIn(params, "olga", oaPassword); p.Status != http.StatusSeeOther {
		t.Fatalf("after the window the right password works: %d", p.Status)
	}

	// per address: failures spread over many names
	b2 := newOABrowser(t, s)
	var last *oaPage
	for i := range 21 {
		last = b2.signIn(params, fmt.Sprintf("user%d", i), "wrong password!")
	}
	if last.Status != http.StatusTooManyRequests {
		t.Fatalf("per-address throttle: want 429, got %d", last.Status)
	}
}

// TestOAuthCIMDRefusesPrivateAddresses: without the development flag a
// client ID metadata document on a private address is never fetched.
func TestOAuthCIMDRefusesPrivateAddresses(t *testing.T) {
	fetched := make(chan struct{}, 10)
	doc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched <- struct{}{}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":"https://%s/client.json","redirect_uris":[%q],"token_endpoint_auth_method":"none"}`, r.Host, oaRedirect)
	}))
	defer doc.Close()
	s := picardtest.Start(t, picardtest.Options{})
	b := newOABrowser(t, s)
	port := doc.Listener.Addr().(interface{ String() string }).String()
	_, p, _ := strings.Cut(port, ":")
	for _, id := range []string{
		doc.URL + "/client.json",                                             // https://127.0.0.1:port
		"https://localhost:" + p + "/client.json",                            // a name resolving to loopback
		"https://[::1]:" + p + "/client.json",                                // IPv6 loopback
		"https://169.254.169.254/latest/meta-data",                           // cloud metadata
		"http://" + strings.TrimPrefix(doc.URL, "https://") + "/client.json", // plain http
		"https://10.0.0.1/client.json",
		"https://100.64.0.1/client.json",
	} {
		params, _ := oaParams(t, id)
		pg := b.get("/authorize?" + params.Encode())
		if pg.Status != http.StatusBadRequest || pg.Location != "" {
			t.Errorf("%s: want an error page, got %d Location %q", id, pg.Status, pg.Location)
		}
	}
	select {
	case <-fetched:
		t.Fatal("the private document was fetched")
	default:
	}
}

// TestOAuthDisabledClient: disabling a client in the dashboard ends its
// tokens everywhere.
func TestOAuthDisabledClient(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	su := s.SuperuserToken()
	c := s.RegisterClient(su)
	u := s.UserToken(c, "paul")
	rec, err := s.App.FindRecordById(pb_migrations.OAuthClients, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.Set("disabled", true)
	if err := s.App.Save(rec); err != nil {
		t.Fatal(err)
	}
	if st := s.Tool(u, "get_memories", nil).Status; st != http.StatusUnauthorized {
		t.Errorf("bearer of a disabled client: %d", st)
	}
	if r := oaPost(s, "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {u.Refresh}}, c.ID, c.Secret); r.Status != http.StatusUnauthorized {
		t.Errorf("refresh by a disabled client: %d %s", r.Status, r.Body)
	}
	if r := oaPost(s, "/introspect", url.Values{"token": {u.Access}}, c.ID, c.Secret); r.Status != http.StatusUnauthorized {
		t.Errorf("introspect by a disabled client: %d", r.Status)
	}
	params, _ := oaParams(t, c.ID)
	if p := newOABrowser(t, s).get("/authorize?" + params.Encode()); p.Status != http.StatusBadRequest || p.Location != "" {
		t.Errorf("authorize for a disabled client: %d", p.Status)
	}
}

// TestSigningKeyRotation: after rotation old tokens keep working and the
// old public key stays in the JWKS until its tokens have expired.
func TestSigningKeyRotation(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	c := s.RegisterClient(s.SuperuserToken())
	old := s.UserToken(c, "quinn")
	if err := s.C.OAuth.RotateKey(); err != nil {
		t.Fatal(err)
	}
	keys := func() []string {
		var jwks struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		s.Do("GET", "/.well-known/jwks.json", nil, nil).JSON(t, &jwks)
		var out []string
		for _, k := range jwks.Keys {
			out = append(out, k.Kid)
		}
		return out
	}
	if got := keys(); len(got) != 2 {
		t.Fatalf("after rotation the JWKS must hold both keys: %v", got)
	}
	if st := s.Tool(old, "get_memories", nil).Status; st != http.StatusOK {
		t.Fatalf("token signed by the old key: %d", st)
	}
	fresh := s.UserToken(c, "quinn")
	var h map[string]any
	decodeSeg(t, strings.Split(fresh.Access, ".")[0], &h)
	var hOld map[string]any
	decodeSeg(t, strings.Split(old.Access, ".")[0], &hOld)
	if h["kid"] == hOld["kid"] || h["kid"] != keys()[0] {
		t.Fatalf("new tokens must use the new key (listed first): %v vs %v", h["kid"], hOld["kid"])
	}
	clk.Advance(time.Hour + 6*time.Minute)
	if got := keys(); len(got) != 1 || got[0] != h["kid"] {
		t.Fatalf("once its tokens expired the old key leaves the JWKS: %v", got)
	}
	if st := s.Tool(old, "get_memories", nil).Status; st != http.StatusUnauthorized {
		t.Fatalf("old token after expiry: %d", st)
	}
}
