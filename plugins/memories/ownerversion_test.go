package memories_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/pocketbase/dbx"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
)

// TestIndexingKeepsTheOwnersPage: indexing a memory (the indexer or the
// reconciler marking it ready) changes nothing a get_memories page shows,
// so it leaves the owner's change counter and cached page alone; an
// update of any column the page shows (text, permission, sharing,
// expiry), made by another process on a connection of its own, still
// moves the counter and the next page is read again and shows it.
func TestIndexingKeepsTheOwnersPage(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	cl := s.RegisterClient(s.SuperuserToken())
	alice, bob := s.UserToken(cl, "alice"), s.UserToken(cl, "bob")
	r := s.Tool(alice, "submit_memory", map[string]any{"text": "a page that stays"})
	if r.Status != http.StatusOK {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	id := r.Map(t)["id"].(string)
	ctx := context.Background()
	s.C.Memories.FlushIndex(ctx)

	other := s.OtherConnection(t)
	counter := func() int64 {
		t.Helper()
		var v int64
		if err := s.App.DB().NewQuery("SELECT version FROM " + pb_migrations.OwnerVersions + " WHERE owner = {:o}").Bind(dbx.Params{"o": alice.ID}).Row(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	status := func() string {
		t.Helper()
		var st string
		if err := s.App.DB().NewQuery("SELECT index_status FROM memories WHERE id = {:id}").Bind(dbx.Params{"id": id}).Row(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	// page lists alice's memories and says whether it was a cache hit
	page := func(t *testing.T) (map[string]any, bool) {
		t.Helper()
		h0, _ := s.C.Memories.PageCacheStats()
		r := s.Tool(alice, "get_memories", map[string]any{"limit": 20})
		if r.Status != http.StatusOK {
			t.Fatalf("get_memories: %d %s", r.Status, r.Body)
		}
		mems, _ := r.Map(t)["memories"].([]any)
		if len(mems) != 1 {
			t.Fatalf("get_memories: %d memories, want 1: %s", len(mems), r.Body)
		}
		h1, _ := s.C.Memories.PageCacheStats()
		return mems[0].(map[string]any), h1 > h0
	}
	warm := func(t *testing.T) {
		t.Helper()
		for range 10 {
			if _, hit := page(t); hit {
				return
			}
		}
		t.Fatal("get_memories is never served from the page cache")
	}

	t.Run("indexing keeps the page", func(t *testing.T) {
		other.Exec(t, "UPDATE memories SET index_status = 'pending' WHERE id = ?", id) // back to the outbox
		warm(t)
		before := counter()
		if n, err := s.C.Memories.Reconcile(ctx); err != nil || n != 1 {
			t.Fatalf("reconcile indexed %d (%v), want 1", n, err)
		}
		if st := status(); st != "ready" {
			t.Fatalf("the reconciler left the memory %s", st)
		}
		if after := counter(); after != before {
			t.Fatalf("marking the memory ready moved its owner's counter from %d to %d", before, after)
		}
		if _, hit := page(t); !hit {
			t.Fatal("the page was read again after its memory was only marked ready")
		}
	})

	for _, tc := range []struct {
		what  string
		q     string
		args  []any
		field string
		want  any
	}{
		{"text", "UPDATE memories SET text = ? WHERE id = ?", nil, "text", "a page that changed"},
		{"permission", "UPDATE memories SET permission = 'public' WHERE id = ?", nil, "permission", "public"},
		{"sharing", "UPDATE memories SET shared_users = json_array(?) WHERE id = ?", []any{bob.ID}, "shared_with", bob.ID},
		{"expiry", "UPDATE memories SET expires_at = '2099-01-02 03:04:05.000Z' WHERE id = ?", nil, "expiration_date", "2099-01-02T03:04:05Z"},
	} {
		t.Run("a change of its "+tc.what+" refreshes it", func(t *testing.T) {
			warm(t)
			args := tc.args
			if tc.what == "text" {
				tok, err := s.C.Cipher.Encrypt("a page that changed")
				if err != nil {
					t.Fatal(err)
				}
				args = []any{tok}
			}
			other.Exec(t, tc.q, append(args, id)...)
			m, hit := page(t)
			got := m[tc.field]
			if l, ok := got.([]any); ok && len(l) == 1 {
				got = l[0]
			}
			if hit || got != tc.want {
				t.Fatalf("after a change of its %s: hit=%v, %s %v, want %v", tc.what, hit, tc.field, got, tc.want)
			}
		})
	}
}
