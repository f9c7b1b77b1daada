package platform_test

import (
	"net/http"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
)

// TestGetMemoriesPageSurvivesOtherOwners: an owner's get_memories page
// stays in the cache (same page, served as a hit) while other owners'
// memories change (through the tools, the dashboard, SQL on a connection
// of its own as another process would write) and while the access log is
// flushed; it is read again as soon as one of the owner's own memories
// changes, whatever wrote it: the tools, the dashboard, SQL on another
// connection (an update, a delete, a memory moved to another owner), also
// after the counter's triggers were dropped behind the server's back.
func TestGetMemoriesPageSurvivesOtherOwners(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	su := s.SuperuserToken()
	cl := s.RegisterClient(su)
	alice, bob := s.UserToken(cl, "alice"), s.UserToken(cl, "bob")
	first := submit(t, s, alice, map[string]any{"text": "owner page first"})
	second := submit(t, s, alice, map[string]any{"text": "owner page second"})
	bobs := submit(t, s, bob, map[string]any{"text": "owner page bob's"})
	search(t, s, alice, "owner page", nil) // the indexer has marked alice's memories (a write of hers)
	search(t, s, bob, "owner page", nil)

	other := s.OtherConnection(t) // another process: its own connection to data.db
	encrypt := func(t *testing.T, text string) string {
		t.Helper()
		tok, err := s.C.Cipher.Encrypt(text)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	all := map[string]any{"limit": 20}
	page := func() (map[string]string, bool) {
		t.Helper()
		h0, _ := s.C.Memories.PageCacheStats()
		out := map[string]string{}
		for _, m := range list(t, s, alice, all) {
			out[m.ID] = m.Text
		}
		h1, _ := s.C.Memories.PageCacheStats()
		return out, h1 > h0
	}
	// warm lists until a call is a hit and returns that page
	warm := func(t *testing.T) map[string]string {
		t.Helper()
		for range 10 {
			if got, hit := page(); hit {
				return got
			}
		}
		t.Fatal("get_memories is never served from the page cache")
		return nil
	}
	same := func(a, b map[string]string) bool {
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if b[k] != v {
				return false
			}
		}
		return true
	}
	stillCached := func(t *testing.T, what string, write func(t *testing.T)) {
		t.Helper()
		before := warm(t)
		write(t)
		got, hit := page()
		if !hit || !same(got, before) {
			t.Fatalf("after %s: hit=%v page %v, before %v", what, hit, got, before)
		}
	}

	t.Run("other owners' writes keep the page", func(t *testing.T) {
		stillCached(t, "bob's submit_memory", func(t *testing.T) {
			submit(t, s, bob, map[string]any{"text": "owner page bob's second"})
			search(t, s, bob, "owner page", nil)
		})
		stillCached(t, "bob's update_memory", func(t *testing.T) {
			if r := s.Tool(bob, "update_memory", map[string]any{"memory_id": bobs.ID, "text": "owner page bob's, updated"}); r.Status != http.StatusOK {
				t.Fatalf("update_memory: %d %s", r.Status, r.Body)
			}
		})
		stillCached(t, "a dashboard edit of bob's memory", func(t *testing.T) {
			r := s.Do("PATCH", "/api/collections/"+pb_migrations.Memories+"/records/"+bobs.ID, map[string]string{"Authorization": su}, map[string]any{"text": "owner page bob's, edited"})
			if r.Status != http.StatusOK {
				t.Fatalf("dashboard edit: %d %s", r.Status, r.Body)
			}
		})
		stillCached(t, "another process rewriting bob's memory", func(t *testing.T) {
			other.Exec(t, "UPDATE memories SET text = ? WHERE id = ?", encrypt(t, "owner page bob's, rewritten"), bobs.ID)
		})
		stillCached(t, "an access log flush", func(t *testing.T) {
			list(t, s, bob, all)
			if err := s.C.Audit.Flush(); err != nil {
				t.Fatal(err)
			}
		})
	})

	// changed: the owner's page is read again and shows the change
	changed := func(t *testing.T, what string, write func(t *testing.T), check func(map[string]string) bool) {
		t.Helper()
		warm(t)
		write(t)
		if got, hit := page(); hit || !check(got) {
			t.Fatalf("after %s: hit=%v page %v", what, hit, got)
		}
	}
	t.Run("the owner's writes refresh it", func(t *testing.T) {
		changed(t, "update_memory", func(t *testing.T) {
			if r := s.Tool(alice, "update_memory", map[string]any{"memory_id": first.ID, "text": "owner page first, updated"}); r.Status != http.StatusOK {
				t.Fatalf("update_memory: %d %s", r.Status, r.Body)
			}
		}, func(p map[string]string) bool { return p[first.ID] == "owner page first, updated" })
		changed(t, "a dashboard edit", func(t *testing.T) {
			r := s.Do("PATCH", "/api/collections/"+pb_migrations.Memories+"/records/"+first.ID, map[string]string{"Authorization": su}, map[string]any{"text": "owner page first, edited"})
			if r.Status != http.StatusOK {
				t.Fatalf("dashboard edit: %d %s", r.Status, r.Body)
			}
		}, func(p map[string]string) bool { return p[first.ID] == "owner page first, edited" })
		changed(t, "another process's update", func(t *testing.T) {
			other.Exec(t, "UPDATE memories SET text = ? WHERE id = ?", encrypt(t, "owner page first, rewritten"), first.ID)
		}, func(p map[string]string) bool { return p[first.ID] == "owner page first, rewritten" })
		changed(t, "another process's delete", func(t *testing.T) {
			other.Exec(t, "DELETE FROM memories WHERE id = ?", second.ID)
		}, func(p map[string]string) bool { _, ok := p[second.ID]; return !ok && len(p) == 1 })
		changed(t, "bob's memory moved to alice", func(t *testing.T) {
			other.Exec(t, "UPDATE memories SET owner = ? WHERE id = ?", alice.ID, bobs.ID)
		}, func(p map[string]string) bool { return p[bobs.ID] == "owner page bob's, rewritten" && len(p) == 2 })
		changed(t, "alice's memory moved to bob", func(t *testing.T) {
			other.Exec(t, "UPDATE memories SET owner = ? WHERE id = ?", bob.ID, first.ID)
		}, func(p map[string]string) bool { _, ok := p[first.ID]; return !ok && len(p) == 1 })
		changed(t, "a write after the counter's triggers were dropped", func(t *testing.T) {
			for _, name := range pb_migrations.OwnerVersionTriggers {
				other.Exec(t, "DROP TRIGGER "+name)
			}
			other.Exec(t, "UPDATE memories SET text = ? WHERE id = ?", encrypt(t, "owner page moved, rewritten untracked"), bobs.ID)
		}, func(p map[string]string) bool { return p[bobs.ID] == "owner page moved, rewritten untracked" })
		// untracked: the data version alone decides, so pages still refresh
		changed(t, "another owner's write while untracked", func(t *testing.T) {
			other.Exec(t, "UPDATE memories SET text = ? WHERE id = ?", encrypt(t, "owner page first, bob's now"), first.ID)
		}, func(p map[string]string) bool { return len(p) == 1 })
	})
}
