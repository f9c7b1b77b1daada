package platform_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/plugins/oauth"
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

// TestRevocationDespiteTokenCache: access tokens are verified once and then
// trusted from a cache, yet every way of ending a token still ends it: at
// once when the change goes through this server (RFC 7009 revoke, deleting
// the user, disabling the client or revoking the grant in the dashboard),
// and within oauth.DefaultRevocationRecheck when the database is changed
// behind the server's back (another replica, a manual SQL edit).
func TestRevocationDespiteTokenCache(t *testing.T) {
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	s := picardtest.Start(t, picardtest.Options{Now: now})
	su := s.SuperuserToken()
	client := s.RegisterClient(su)
	call := func(u picardtest.User) int {
		t.Helper()
		return s.Tool(u, "get_memories", map[string]any{"limit": 1}).Status
	}
	warm := func(name string) picardtest.User {
		t.Helper()
		u := s.UserToken(client, name)
		for range 3 { // verified, then served from the cache
			if st := call(u); st != http.StatusOK {
				t.Fatalf("%s: fresh token answered %d", name, st)
			}
		}
		return u
	}
	grantOf := func(u picardtest.User) *core.Record {
		t.Helper()
		g, err := s.App.FindFirstRecordByData("oauth_grants", "user", u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}

	t.Run("revoked through /revoke stops at once", func(t *testing.T) {
		u := warm("rev-endpoint")
		form := url.Values{"client_id": {client.ID}, "client_secret": {client.Secret}, "token": {u.Access}}
		r := s.Do("POST", "/revoke", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
		if r.Status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		if st := call(u); st != http.StatusUnauthorized {
			t.Fatalf("revoked token answered %d, want 401", st)
		}
	})
	t.Run("deleted user stops at once", func(t *testing.T) {
		u := warm("rev-deleted")
		rec, err := s.App.FindRecordById("users", u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.App.Delete(rec); err != nil {
			t.Fatal(err)
		}
		if st := call(u); st != http.StatusUnauthorized {
			t.Fatalf("deleted user's token answered %d, want 401", st)
		}
	})
	t.Run("grant revoked in the dashboard stops at once", func(t *testing.T) {
		u := warm("rev-dashboard")
		g := grantOf(u)
		g.Set("revoked", true)
		if err := s.App.Save(g); err != nil {
			t.Fatal(err)
		}
		if st := call(u); st != http.StatusUnauthorized {
			t.Fatalf("token of a revoked grant answered %d, want 401", st)
		}
	})
	t.Run("revoked behind the server's back stops within the bound", func(t *testing.T) {
		u := warm("rev-sql")
		other := warm("rev-sql-other")
		// another process writes the database directly: no hook runs here
		if _, err := s.App.NonconcurrentDB().NewQuery("UPDATE oauth_grants SET revoked = TRUE WHERE id = {:id}").
			Bind(dbx.Params{"id": grantOf(u).Id}).Execute(); err != nil {
			t.Fatal(err)
		}
		clock.Add(int64(oauth.DefaultRevocationRecheck + time.Second))
		if st := call(u); st != http.StatusUnauthorized {
			t.Fatalf("token revoked %v ago answered %d, want 401", oauth.DefaultRevocationRecheck+time.Second, st)
		}
		if st := call(other); st != http.StatusOK {
			t.Fatalf("an unrelated user's token answered %d after the recheck", st)
		}
	})
	t.Run("expired token stops although cached", func(t *testing.T) {
		u := warm("rev-expired")
		clock.Add(int64(2 * time.Hour))
		if st := call(u); st != http.StatusUnauthorized {
			t.Fatalf("expired token answered %d, want 401", st)
		}
	})
}

// TestNewRecordIDCheckUsesAnIndex: PocketBase checks a new record's id with
// `id = ? COLLATE NOCASE`; on the collections written on the hot path that
// lookup must use an index, or every insert scans the whole table and
// writes slow down as memories accumulate.
func TestNewRecordIDCheckUsesAnIndex(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	for _, name := range pb_migrations.NoCaseIDIndexed {
		var plan []struct {
			Detail string `db:"detail"`
		}
		err := s.App.DB().NewQuery("EXPLAIN QUERY PLAN SELECT (1) FROM " + name + " WHERE id = {:id} COLLATE NOCASE LIMIT 1").
			Bind(dbx.Params{"id": "00000000-0000-4000-8000-000000000000"}).All(&plan)
		if err != nil {
			t.Fatal(err)
		}
		ok := false
		for _, p := range plan {
			if strings.HasPrefix(p.Detail, "SEARCH") { // not "SCAN"
				ok = true
			}
		}
		if !ok {
			t.Errorf("%s: the id check scans the table: %+v", name, plan)
		}
	}
}
