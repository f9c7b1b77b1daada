package platform_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestDeactivationAndPasswordResetEndGrants: an admin deactivating a user
// (users.disabled, as in the dashboard) or a password change ends that
// user's access tokens at once and their refresh tokens for good; a
// deactivated user cannot be connected again, other users are untouched,
// and a reactivated user can connect anew.
func TestDeactivationAndPasswordResetEndGrants(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	client := s.RegisterClient(s.SuperuserToken())
	call := func(u picardtest.User) int {
		t.Helper()
		return s.Tool(u, "get_memories", map[string]any{"limit": 1}).Status
	}
	refresh := func(u picardtest.User) int {
		t.Helper()
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {u.Refresh}, "client_id": {client.ID}, "client_secret": {client.Secret}}
		return s.Do("POST", "/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode()).Status
	}
	bystander := s.UserToken(client, "bystander")

	t.Run("deactivated", func(t *testing.T) {
		u := s.UserToken(client, "deactivated")
		for range 2 { // verified, then cached
			if st := call(u); st != http.StatusOK {
				t.Fatalf("fresh token: %d", st)
			}
		}
		rec, err := s.App.FindRecordById("users", u.ID)
		if err != nil {
			t.Fatal(err)
		}
		rec.Set("disabled", true)
		if err := s.App.Save(rec); err != nil {
			t.Fatal(err)
		}
		if st := call(u); st != http.StatusUnauthorized {
			t.Fatalf("deactivated user's access token answered %d, want 401", st)
		}
		if st := refresh(u); st != http.StatusBadRequest {
			t.Fatalf("deactivated user's refresh token answered %d, want 400", st)
		}
		r := s.Do("POST", "/api/user-tokens/user-token", nil, map[string]any{
			"client_id": client.ID, "client_secret": client.Secret, "username": "deactivated",
			"email": "deactivated@picard.test", "create_if_not_exists": true,
		})
		if r.Status != http.StatusForbidden || r.Map(t)["error"] != "account_disabled" {
			t.Fatalf("direct connect of a deactivated user: %d %s", r.Status, r.Body)
		}
		if st := call(bystander); st != http.StatusOK {
			t.Fatalf("another user's token answered %d", st)
		}
		rec.Set("disabled", false)
		if err := s.App.Save(rec); err != nil {
			t.Fatal(err)
		}
		again := s.UserToken(client, "deactivated")
		if st := call(again); st != http.StatusOK {
			t.Fatalf("reactivated user's new token answered %d", st)
		}
		if st := call(u); st != http.StatusUnauthorized {
			t.Fatalf("reactivation must not revive old tokens: %d", st)
		}
	})

	t.Run("password changed", func(t *testing.T) {
		u := s.UserToken(client, "resetter")
		if st := call(u); st != http.StatusOK {
			t.Fatalf("fresh token: %d", st)
		}
		rec, err := s.App.FindRecordById("users", u.ID)
		if err != nil {
			t.Fatal(err)
		}
		rec.SetPassword("a brand new password")
		if err := s.App.Save(rec); err != nil {
			t.Fatal(err)
		}
		if st := call(u); st != http.StatusUnauthorized {
			t.Fatalf("access token after a password change answered %d, want 401", st)
		}
		if st := refresh(u); st != http.StatusBadRequest {
			t.Fatalf("refresh token after a password change answered %d, want 400", st)
		}
		// an unrelated profile edit ends nothing
		fresh := s.UserToken(client, "resetter")
		rec, _ = s.App.FindRecordById("users", u.ID)
		rec.Set("name", "Someone")
		if err := s.App.Save(rec); err != nil {
			t.Fatal(err)
		}
		if st := call(fresh); st != http.StatusOK {
			t.Fatalf("a profile edit ended the tokens: %d", st)
		}
	})
	if st := call(bystander); st != http.StatusOK {
		t.Fatalf("bystander: %d", st)
	}
}
