package platform_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestDebugProfilesSuperuserOnly: the pprof route answers superusers only;
// no token, a user's MCP access token or a user's PocketBase token are
// refused, and none of them gets a profile.
func TestDebugProfilesSuperuserOnly(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	su := s.SuperuserToken()
	u := s.UserToken(s.RegisterClient(su), "alice")
	rec, err := s.App.FindRecordById("users", u.ID)
	if err != nil {
		t.Fatal(err)
	}
	pbUserToken, err := rec.NewAuthToken()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		auth string
		want []int
	}{
		{"no token", "", []int{http.StatusUnauthorized}},
		{"user's MCP access token", "Bearer " + u.Access, []int{http.StatusUnauthorized, http.StatusForbidden}},
		{"user's PocketBase token", pbUserToken, []int{http.StatusUnauthorized, http.StatusForbidden}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/api/debug/pprof/", "/api/debug/pprof/heap", "/api/debug/pprof/profile?seconds=1"} {
				h := map[string]string{}
				if tc.auth != "" {
					h["Authorization"] = tc.auth
				}
				r := s.Do("GET", path, h, nil)
				if !slices.Contains(tc.want, r.Status) || strings.Contains(string(r.Body), "goroutine") {
					t.Errorf("GET %s: %d %s, want one of %v", path, r.Status, r.Body, tc.want)
				}
			}
		})
	}
	r := s.Do("GET", "/api/debug/pprof/goroutine?debug=1", map[string]string{"Authorization": su}, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "goroutine") {
		t.Fatalf("superuser: %d %.200s", r.Status, r.Body)
	}
}
