package platform_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestDirectConnectOnlyForAdminClients: a client that registered itself
// (RFC 7591) gets a secret, but must never mint tokens for a user it names.
func TestDirectConnectOnlyForAdminClients(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	admin := s.RegisterClient(s.SuperuserToken())
	victim := s.UserToken(admin, "victim")
	if r := s.Tool(victim, "submit_memory", map[string]any{"text": "victim's private diary entry"}); r.Status != 200 {
		t.Fatalf("submit: %d", r.Status)
	}
	reg := s.Do("POST", "/register", nil, map[string]any{"redirect_uris": []string{"https://evil.example/cb"}, "token_endpoint_auth_method": "client_secret_post"}).Map(t)
	id, _ := reg["client_id"].(string)
	secret, _ := reg["client_secret"].(string)
	if id == "" || secret == "" {
		t.Fatalf("self-registration of a confidential client: %v", reg)
	}
	r := s.Do("POST", "/api/user-tokens/user-token", nil, map[string]any{
		"client_id": id, "client_secret": secret, "email": "victim@picard.test", "username": "victim",
	})
	if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), "unauthorized_client") || strings.Contains(string(r.Body), "access_token") {
		t.Fatalf("self-registered client used direct connect: %d %s", r.Status, r.Body)
	}
}

// TestDirectConnectRefusesUnverifiedAccounts: someone who signed up on
// Picard's pages with another person's email must not receive what an app
// later stores for that email.
func TestDirectConnectRefusesUnverifiedAccounts(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	admin := s.RegisterClient(s.SuperuserToken())
	clientID := oaRegister(t, s, "squatter's app")
	b := newOABrowser(t, s)
	params, _ := oaParams(t, clientID)
	b.signUpAndConsent(params, "squatter") // signs up as squatter@picard.test, unverified
	r := s.Do("POST", "/api/user-tokens/user-token", nil, map[string]any{
		"client_id": admin.ID, "client_secret": admin.Secret, "email": "squatter@picard.test", "username": "realowner", "create_if_not_exists": true,
	})
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "unverified_account") {
		t.Fatalf("direct connect bound an unverified account: %d %s", r.Status, r.Body)
	}
}

// TestPocketBaseUserPasswordAuthIsOff: users sign in only through Picard's
// throttled pages, not PocketBase's own endpoint.
func TestPocketBaseUserPasswordAuthIsOff(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	b := newOABrowser(t, s)
	params, _ := oaParams(t, oaRegister(t, s, "app"))
	b.signUpAndConsent(params, "pbuser")
	r := s.Do("POST", "/api/collections/users/auth-with-password", nil, map[string]any{"identity": "pbuser@picard.test", "password": oaPassword})
	if r.Status == http.StatusOK || strings.Contains(string(r.Body), `"token"`) {
		t.Fatalf("PocketBase password auth for users must be off: %d %s", r.Status, r.Body)
	}
}
