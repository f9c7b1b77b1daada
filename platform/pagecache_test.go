package platform_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/plugins/audit"
)

// TestGetMemoriesPageCacheNeverStale: get_memories pages are served from
// a cache (each case first checks that the page really came from it), yet
// every change of the owner's memories shows on the next call, whatever
// path made it: a new memory, an update, a permission change (also on a
// page filtered by permission), a delete, an import, a dashboard edit
// (PocketBase's records API), a row rewritten with no hook at all (as
// `keys rotate` or another process does), and a memory expiring with no
// write. Each read served from the cache is in the owner's access log.
func TestGetMemoriesPageCacheNeverStale(t *testing.T) {
	clk := &clock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	su := s.SuperuserToken()
	cl := s.RegisterClient(su)
	alice, bob := s.UserToken(cl, "alice"), s.UserToken(cl, "bob")
	first := submit(t, s, alice, map[string]any{"text": "page cache first", "permission": "public"})

	texts := func(args map[string]any) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, m := range list(t, s, alice, args) {
			out[m.ID] = m.Text + "|" + m.Permission
		}
		return out
	}
	// cached lists args until a call is answered from the page cache
	cached := func(t *testing.T, args map[string]any) map[string]string {
		t.Helper()
		for range 10 {
			h0, _ := s.C.Memories.PageCacheStats()
			got := texts(args)
			if h1, _ := s.C.Memories.PageCacheStats(); h1 > h0 {
				return got
			}
		}
		t.Fatal("get_memories is never served from the page cache")
		return nil
	}
	all := map[string]any{"limit": 20}
	public := map[string]any{"limit": 20, "permission": "public"}

	t.Run("new memory", func(t *testing.T) {
		cached(t, all)
		m := submit(t, s, alice, map[string]any{"text": "page cache second"})
		if got := texts(all); got[m.ID] != "page cache second|private" || len(got) != 2 {
			t.Fatalf("after submit_memory: %v", got)
		}
	})
	t.Run("update", func(t *testing.T) {
		cached(t, all)
		if r := s.Tool(alice, "update_memory", map[string]any{"memory_id": first.ID, "text": "page cache first, updated"}); r.Status != http.StatusOK {
			t.Fatalf("update_memory: %d %s", r.Status, r.Body)
		}
		if got := texts(all)[first.ID]; got != "page cache first, updated|public" {
			t.Fatalf("after update_memory: %q", got)
		}
	})
	t.Run("permission change", func(t *testing.T) {
		cached(t, all)
		if got := cached(t, public); len(got) != 1 {
			t.Fatalf("one public memory: %v", got)
		}
		if r := s.Tool(alice, "modify_permissions", map[string]any{"memory_id": first.ID, "permission": "shared", "shared_with": []string{bob.ID}}); r.Status != http.StatusOK {
			t.Fatalf("modify_permissions: %d %s", r.Status, r.Body)
		}
		if got := texts(all)[first.ID]; got != "page cache first, updated|shared" {
			t.Fatalf("after modify_permissions: %q", got)
		}
		if got := texts(public); len(got) != 0 {
			t.Fatalf("the public page still lists it: %v", got)
		}
	})
	t.Run("delete", func(t *testing.T) {
		m := submit(t, s, alice, map[string]any{"text": "page cache doomed"})
		cached(t, all)
		if r := s.Tool(alice, "delete_memory", map[string]any{"memory_id": m.ID}); r.Status != http.StatusOK {
			t.Fatalf("delete_memory: %d %s", r.Status, r.Body)
		}
		if _, ok := texts(all)[m.ID]; ok {
			t.Fatal("a deleted memory is still listed")
		}
	})
	t.Run("import", func(t *testing.T) {
		cached(t, all)
		exp := s.Do("GET", "/api/memories/export", map[string]string{"Authorization": "Bearer " + alice.Access}, nil)
		cached(t, all)
		edited := strings.Replace(string(exp.Body), "page cache first, updated", "page cache first, imported", 1)
		if r := importOwner(s, alice, []byte(edited)); r.Status != http.StatusOK {
			t.Fatalf("import: %d %s", r.Status, r.Body)
		}
		if got := texts(all)[first.ID]; got != "page cache first, imported|shared" {
			t.Fatalf("after import: %q", got)
		}
	})
	t.Run("dashboard edit", func(t *testing.T) {
		cached(t, all)
		r := s.Do("PATCH", "/api/collections/"+pb_migrations.Memories+"/records/"+first.ID, map[string]string{"Authorization": su}, map[string]any{"text": "page cache first, edited in the dashboard"})
		if r.Status != http.StatusOK {
			t.Fatalf("dashboard edit: %d %s", r.Status, r.Body)
		}
		if got := texts(all)[first.ID]; got != "page cache first, edited in the dashboard|shared" {
			t.Fatalf("after a dashboard edit: %q", got)
		}
	})
	t.Run("row rewritten with no hook", func(t *testing.T) {
		cached(t, all)
		tok, err := s.C.Cipher.Encrypt("page cache first, rewritten elsewhere")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.App.NonconcurrentDB().Update(pb_migrations.Memories, dbx.Params{"text": tok}, dbx.HashExp{"id": first.ID}).Execute(); err != nil {
			t.Fatal(err)
		}
		if got := texts(all)[first.ID]; got != "page cache first, rewritten elsewhere|shared" {
			t.Fatalf("after a rewrite behind the server's back: %q", got)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		m := submit(t, s, alice, map[string]any{"text": "page cache short-lived", "expiration_date": clk.Now().Add(2 * time.Minute).UTC().Format(time.RFC3339)})
		if got := cached(t, all); got[m.ID] == "" {
			t.Fatalf("the expiring memory is listed before it expires: %v", got)
		}
		clk.Advance(3 * time.Minute)
		if _, ok := texts(all)[m.ID]; ok {
			t.Fatal("an expired memory is still listed")
		}
		if got := texts(map[string]any{"limit": 20, "include_expired": true}); got[m.ID] == "" {
			t.Fatalf("include_expired lists it: %v", got)
		}
	})
	t.Run("cached reads are logged", func(t *testing.T) {
		cached(t, all)
		before := accessLog(t, s, alice, map[string]any{"memory_id": first.ID, "limit": 100})
		const n = 5
		for range n {
			cached(t, all)
		}
		// cached calls n more times; count every read of first.ID after before's newest
		after := accessLog(t, s, alice, map[string]any{"memory_id": first.ID, "limit": 100})
		reads := 0
		for _, e := range after.Entries[:len(after.Entries)-len(before.Entries)] {
			if e.Action == audit.ActionRead && e.ActorID == alice.ID {
				reads++
			}
		}
		if reads < n {
			t.Fatalf("%d cached reads, %d read entries", n, reads)
		}
	})
	t.Run("same answer over MCP", func(t *testing.T) {
		c := connect(t, s, alice)
		var fresh, again map[string]any
		structured(t, callTool(t, c, "get_memories", all), &fresh)
		cached(t, all)
		structured(t, callTool(t, c, "get_memories", all), &again)
		var rest map[string]any
		if r := s.Tool(alice, "get_memories", all); r.Status != http.StatusOK || json.Unmarshal(r.Body, &rest) != nil {
			t.Fatalf("get_memories: %d %s", r.Status, r.Body)
		}
		if !reflect.DeepEqual(fresh, again) || !reflect.DeepEqual(fresh, rest) {
			t.Fatalf("cached page differs:\n%v\n%v\n%v", fresh, again, rest)
		}
		_ = c.Close()
	})
}
