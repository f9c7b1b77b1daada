package platform_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/internal/testpg"
	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/plugins/oauth"
	"github.com/picard-mcp/picard/vectorstore"
)

// clock is a test clock that can jump forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }
func pgStore(t *testing.T) vectorstore.Store {
	dsn := testpg.DSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := vectorstore.OpenPG(ctx, vectorstore.PGConfig{DSN: dsn, Schema: testpg.Schema(t, dsn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// backends runs fn against the embedded store and against pgvector.
func backends(t *testing.T, fn func(t *testing.T, store func(t *testing.T) vectorstore.Store)) {
	t.Run("embedded", func(t *testing.T) { fn(t, func(*testing.T) vectorstore.Store { return nil }) })
	t.Run("pgvector", func(t *testing.T) { fn(t, pgStore) })
}

type memory struct {
	ID             string   `json:"id"`
	Text           string   `json:"text"`
	Permission     string   `json:"permission"`
	SharedWith     []string `json:"shared_with"`
	SharedGroups   []string `json:"shared_with_groups"`
	OwnerID        string   `json:"owner_id"`
	ExpirationDate *string  `json:"expiration_date"`
	Score          *float64 `json:"score"`
}

func submit(t *testing.T, s *picardtest.Server, u picardtest.User, data map[string]any) memory {
	t.Helper()
	r := s.Tool(u, "submit_memory", data)
	if r.Status != http.StatusOK {
		t.Fatalf("submit_memory %v: %d %s", data, r.Status, r.Body)
	}
	var m memory
	r.JSON(t, &m)
	return m
}

func search(t *testing.T, s *picardtest.Server, u picardtest.User, query string, extra map[string]any) []memory {
	t.Helper()
	data := map[string]any{"query": query, "limit": 50}
	for k, v := range extra {
		data[k] = v
	}
	r := s.Tool(u, "query_memory", data)
	if r.Status != http.StatusOK {
		t.Fatalf("query_memory %q: %d %s", query, r.Status, r.Body)
	}
	var res struct {
		Memories []memory `json:"memories"`
	}
	r.JSON(t, &res)
	return res.Memories
}

func list(t *testing.T, s *picardtest.Server, u picardtest.User, data map[string]any) []memory {
	t.Helper()
	r := s.Tool(u, "get_memories", data)
	if r.Status != http.StatusOK {
		t.Fatalf("get_memories: %d %s", r.Status, r.Body)
	}
	var res struct {
		Memories []memory `json:"memories"`
	}
	r.JSON(t, &res)
	return res.Memories
}

func ids(ms []memory) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[m.ID] = true
	}
	return out
}

func TestEndToEnd(t *testing.T) {
	backends(t, func(t *testing.T, store func(*testing.T) vectorstore.Store) {
		clk := &clock{}
		s := picardtest.Start(t, picardtest.Options{Vectors: store(t), Now: clk.Now})
		su := s.SuperuserToken()
		client := s.RegisterClient(su)
		alice, bob, carol := s.UserToken(client, "alice"), s.UserToken(client, "bob"), s.UserToken(client, "carol")
		if alice.ID == bob.ID || !strings.Contains(alice.ID, "-") {
			t.Fatalf("user ids must be distinct UUIDs: %q %q", alice.ID, bob.ID)
		}

		// an admin makes a group with carol in it (dashboard equivalent)
		gcol, _ := s.App.FindCollectionByNameOrId(pb_migrations.Groups)
		group := core.NewRecord(gcol)
		group.Set("name", "book club")
		group.Set("members", []string{carol.ID})
		if err := s.App.Save(group); err != nil {
			t.Fatal(err)
		}

		priv := submit(t, s, alice, map[string]any{"text": "My locker combination is hidden under the blue heron painting"})
		pub := submit(t, s, alice, map[string]any{"text": "I play jazz piano every weekend in a small trio", "permission": "public"})
		forBob := submit(t, s, alice, map[string]any{"text": "Our sailing trip to the Greek islands is planned for June", "permission": "shared", "shared_with": []string{bob.ID}})
		forGroup := submit(t, s, alice, map[string]any{"text": "The book club reads a detective novel about a lighthouse keeper", "permission": "shared", "shared_with_groups": []string{group.Id}})
		expiring := submit(t, s, alice, map[string]any{"text": "Temporary door code for the garden shed is 4711", "expiration_date": clk.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)})
		if priv.Permission != "private" || priv.OwnerID != alice.ID || expiring.ExpirationDate == nil {
			t.Fatalf("submitted memory fields wrong: %+v %+v", priv, expiring)
		}

		// owner lists everything, newest first
		all := list(t, s, alice, nil)
		if len(all) != 5 || all[0].ID != expiring.ID || all[4].ID != priv.ID {
			t.Fatalf("get_memories: want 5 newest first, got %+v", all)
		}
		if got := list(t, s, alice, map[string]any{"permission": "shared"}); len(got) != 2 {
			t.Fatalf("permission filter: want 2 shared, got %d", len(got))
		}
		page1 := s.Tool(alice, "get_memories", map[string]any{"limit": 2}).Map(t)
		cursor, _ := page1["next_cursor"].(string)
		page2 := list(t, s, alice, map[string]any{"limit": 2, "cursor": cursor})
		if cursor == "" || len(page2) != 2 || page2[0].ID != all[2].ID {
			t.Fatalf("pagination: cursor %q page2 %+v", cursor, page2)
		}
		if got := list(t, s, bob, nil); len(got) != 0 {
			t.Fatalf("bob must not list alice's memories: %+v", got)
		}

		// search: the owner finds her private memory by meaning
		if got := search(t, s, alice, "where is the locker combination", map[string]any{"limit": 1}); len(got) != 1 || got[0].ID != priv.ID || got[0].Score == nil {
			t.Fatalf("alice search for own private memory: %+v", got)
		}
		// isolation per viewer
		cases := []struct {
			who        picardtest.User
			name       string
			see, never []string
		}{
			{bob, "bob", []string{pub.ID, forBob.ID}, []string{priv.ID, forGroup.ID, expiring.ID}},
			{carol, "carol", []string{pub.ID, forGroup.ID}, []string{priv.ID, forBob.ID, expiring.ID}},
		}
		for _, c := range cases {
			got := ids(search(t, s, c.who, "locker combination sailing jazz piano book club detective door code", nil))
			for _, id := range c.see {
				if !got[id] {
					t.Errorf("%s should find %s", c.name, id)
				}
			}
			for _, id := range c.never {
				if got[id] {
					t.Errorf("%s must not find %s", c.name, id)
				}
			}
		}
		for _, m := range search(t, s, carol, "book club detective lighthouse", nil) {
			if m.ID == forGroup.ID && len(m.SharedGroups) != 0 {
				t.Fatalf("a reader must not learn who else a memory is shared with: %+v", m)
			}
		}
		if got := search(t, s, bob, "jazz piano sailing", map[string]any{"scope": "own"}); len(got) != 0 {
			t.Fatalf("bob's own scope must be empty: %+v", got)
		}

		// another user's private memory looks exactly like a missing one
		missing := "6f1d6b7e-1b7a-4c1e-9d2a-3f4e5a6b7c8d"
		for _, tc := range []struct {
			tool string
			data func(id string) map[string]any
		}{
			{"update_memory", func(id string) map[string]any { return map[string]any{"memory_id": id, "text": "hacked"} }},
			{"delete_memory", func(id string) map[string]any { return map[string]any{"memory_id": id} }},
			{"modify_permissions", func(id string) map[string]any {
				return map[string]any{"memory_id": id, "permission": "public"}
			}},
		} {
			theirs := s.Tool(bob, tc.tool, tc.data(priv.ID))
			none := s.Tool(bob, tc.tool, tc.data(missing))
			if theirs.Status != http.StatusNotFound || theirs.Status != none.Status || string(theirs.Body) != string(none.Body) {
				t.Errorf("%s on alice's private memory must equal a missing one: %d %s vs %d %s", tc.tool, theirs.Status, theirs.Body, none.Status, none.Body)
			}
		}

		// permission changes are reflected in search at once
		r := s.Tool(alice, "modify_permissions", map[string]any{"memory_id": priv.ID, "permission": "public"})
		if r.Status != http.StatusOK {
			t.Fatalf("modify_permissions: %d %s", r.Status, r.Body)
		}
		if !ids(search(t, s, bob, "locker combination heron painting", nil))[priv.ID] {
			t.Fatal("bob should find the memory once it is public")
		}
		s.Tool(alice, "modify_permissions", map[string]any{"memory_id": priv.ID, "permission": "private"})
		if ids(search(t, s, bob, "locker combination heron painting", nil))[priv.ID] {
			t.Fatal("bob must not find the memory once it is private again")
		}

		// update is reflected in search
		r = s.Tool(alice, "update_memory", map[string]any{"memory_id": pub.ID, "text": "I now play the cello in a string quartet"})
		if r.Status != http.StatusOK {
			t.Fatalf("update_memory: %d %s", r.Status, r.Body)
		}
		got := search(t, s, bob, "cello string quartet", map[string]any{"limit": 1})
		if len(got) != 1 || got[0].ID != pub.ID || got[0].Text != "I now play the cello in a string quartet" {
			t.Fatalf("updated text should be found: %+v", got)
		}

		// delete is reflected in search
		r = s.Tool(alice, "delete_memory", map[string]any{"memory_id": forBob.ID})
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"deleted":true`) {
			t.Fatalf("delete_memory: %d %s", r.Status, r.Body)
		}
		if ids(search(t, s, bob, "sailing trip Greek islands", nil))[forBob.ID] {
			t.Fatal("deleted memory still found")
		}
		if r := s.Tool(alice, "delete_memory", map[string]any{"memory_id": forBob.ID}); r.Status != http.StatusNotFound {
			t.Fatalf("second delete: want 404, got %d", r.Status)
		}

		// expiry: gone from every path once its time has passed
		if !ids(search(t, s, alice, "garden shed door code", nil))[expiring.ID] {
			t.Fatal("expiring memory should be found before it expires")
		}
		clk.Advance(31 * time.Minute)
		if ids(search(t, s, alice, "garden shed door code", nil))[expiring.ID] {
			t.Fatal("expired memory found by search")
		}
		if ids(list(t, s, alice, nil))[expiring.ID] {
			t.Fatal("expired memory listed")
		}
		if r := s.Tool(alice, "update_memory", map[string]any{"memory_id": expiring.ID, "text": "x"}); r.Status != http.StatusNotFound {
			t.Fatalf("update of expired memory: want 404, got %d", r.Status)
		}
		n, err := s.C.Memories.PurgeExpired(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("purge: %d %v", n, err)
		}
		if !ids(list(t, s, alice, map[string]any{"include_expired": true}))[pub.ID] || ids(list(t, s, alice, map[string]any{"include_expired": true}))[expiring.ID] {
			t.Fatal("purged memory must be gone for good")
		}
	})
}

func TestTokensAndScopes(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	su := s.SuperuserToken()
	full := s.RegisterClient(su)
	readOnly := s.RegisterClient(su, "memories:read")
	alice := s.UserToken(full, "alice")
	reader := s.UserToken(readOnly, "alice")
	if reader.ID != alice.ID {
		t.Fatal("direct connect must find the existing user by email")
	}

	// no token, a bad token, a token in the query string: 401 with resource metadata
	for name, r := range map[string]*picardtest.Response{
		"none":  s.Do("POST", "/api/tools", nil, map[string]any{"tool": "get_memories"}),
		"bad":   s.Do("POST", "/api/tools", map[string]string{"Authorization": "Bearer not-a-jwt"}, map[string]any{"tool": "get_memories"}),
		"query": s.Do("POST", "/api/tools?access_token="+url.QueryEscape(alice.Access), nil, map[string]any{"tool": "get_memories"}),
	} {
		if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), `resource_metadata="`+s.URL+`/.well-known/oauth-protected-resource/mcp"`) {
			t.Errorf("%s: want 401 with resource_metadata, got %d %q", name, r.Status, r.Header.Get("WWW-Authenticate"))
		}
	}
	// a read-only token may read but not write
	if r := s.Tool(reader, "get_memories", nil); r.Status != http.StatusOK {
		t.Fatalf("read with read scope: %d %s", r.Status, r.Body)
	}
	r := s.Tool(reader, "submit_memory", map[string]any{"text": "x"})
	if r.Status != http.StatusForbidden || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope", scope="memories:write"`) {
		t.Fatalf("write with read scope: want 403 insufficient_scope, got %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	if got := list(t, s, alice, nil); len(got) != 0 {
		t.Fatalf("refused write stored something: %+v", got)
	}

	// refresh rotation; replaying the old refresh token revokes the family
	refresh := func(rt string) *picardtest.Response {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {full.ID}, "client_secret": {full.Secret}}
		return s.Do("POST", "/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, form.Encode())
	}
	r = refresh(alice.Refresh)
	if r.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	var next struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	r.JSON(t, &next)
	rotated := picardtest.User{ID: alice.ID, Access: next.AccessToken, Refresh: next.RefreshToken}
	if next.RefreshToken == alice.Refresh || s.Tool(rotated, "get_memories", nil).Status != http.StatusOK {
		t.Fatal("refresh must rotate and the new access token must work")
	}
	clk.Advance(oauth.DefaultRefreshGrace + time.Second) // past the concurrent-refresh grace window
	if r := refresh(alice.Refresh); r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "invalid_grant") {
		t.Fatalf("replayed refresh: want invalid_grant, got %d %s", r.Status, r.Body)
	}
	if r := s.Tool(rotated, "get_memories", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("after replay the whole family is revoked: got %d", r.Status)
	}
	if r := refresh(rotated.Refresh); r.Status != http.StatusBadRequest {
		t.Fatalf("after replay the newest refresh token is revoked too: got %d", r.Status)
	}
	// the other client's grant is untouched
	if r := s.Tool(reader, "get_memories", nil); r.Status != http.StatusOK {
		t.Fatalf("unrelated grant revoked: %d", r.Status)
	}

	// JWKS publishes the signing key
	jwks := s.Do("GET", "/.well-known/jwks.json", nil, nil).Map(t)
	if keys, _ := jwks["keys"].([]any); len(keys) != 1 {
		t.Fatalf("jwks: %v", jwks)
	}
}
