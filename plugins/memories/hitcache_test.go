package memories_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
)

type testClock struct{ offset atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// TestSearchHitCacheSeesEveryChange: query_memory keeps the memories it
// loaded for its hits, so the same search again reads no rows; yet a
// change made behind the server's back (SQL on a connection of its own,
// as another process writes) shows in the next search: new text, a
// permission made private (gone for the other user, still there for the
// owner), a deletion; and a memory whose expiry passes is gone at once.
// A memory added by the owner changes none of the others: their rows are
// not read again.
// Both ways of reading the owners' counters: all of them once per data
// version, or those a query needs.
func TestSearchHitCacheSeesEveryChange(t *testing.T) {
	t.Run("owners scanned", func(t *testing.T) { testSearchHitCacheSeesEveryChange(t, true) })
	t.Run("owners read per query", func(t *testing.T) { testSearchHitCacheSeesEveryChange(t, false) })
}

func testSearchHitCacheSeesEveryChange(t *testing.T, scan bool) {
	clk := &testClock{}
	s := picardtest.Start(t, picardtest.Options{Now: clk.Now})
	if !scan {
		s.C.Memories.HitCacheNoOwnerScan()
	}
	cl := s.RegisterClient(s.SuperuserToken())
	alice, bob := s.UserToken(cl, "alice"), s.UserToken(cl, "bob")
	submit := func(data map[string]any) string {
		t.Helper()
		r := s.Tool(alice, "submit_memory", data)
		if r.Status != 200 {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
		return r.Map(t)["id"].(string)
	}
	edited := submit(map[string]any{"text": "hitcache walrus edited", "permission": "public"})
	hidden := submit(map[string]any{"text": "hitcache walrus hidden", "permission": "public"})
	deleted := submit(map[string]any{"text": "hitcache walrus deleted", "permission": "public"})
	expiring := submit(map[string]any{"text": "hitcache walrus expiring", "permission": "public",
		"expiration_date": clk.Now().Add(time.Minute).UTC().Format(time.RFC3339)})
	kept := submit(map[string]any{"text": "hitcache walrus kept", "permission": "public"})

	search := func(t *testing.T, u picardtest.User) (map[string]string, int64) {
		t.Helper()
		q0 := s.C.Memories.HitRowQueries()
		r := s.Tool(u, "query_memory", map[string]any{"query": "hitcache walrus", "limit": 20})
		if r.Status != 200 {
			t.Fatalf("query_memory: %d %s", r.Status, r.Body)
		}
		var res struct {
			Memories []struct {
				ID   string `json:"id"`
				Text string `json:"text"`
			} `json:"memories"`
		}
		r.JSON(t, &res)
		out := map[string]string{}
		for _, m := range res.Memories {
			out[m.ID] = m.Text
		}
		return out, s.C.Memories.HitRowQueries() - q0
	}
	// warm until a search reads no rows (the indexer's marks are writes
	// of alice's)
	warm := func(t *testing.T) map[string]string {
		t.Helper()
		for range 20 {
			if got, reads := search(t, bob); reads == 0 {
				return got
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("query_memory reads its hits' rows on every call: the hit cache is not used")
		return nil
	}
	got := warm(t)
	if len(got) != 5 {
		t.Fatalf("bob finds %d of alice's 5 public memories: %v", len(got), got)
	}
	for range 3 {
		if again, reads := search(t, bob); reads != 0 || len(again) != 5 {
			t.Fatalf("the same search again read rows %d times, found %d", reads, len(again))
		}
	}

	other := s.OtherConnection(t)

	t.Run("text updated by another connection", func(t *testing.T) {
		tok, err := s.C.Cipher.Encrypt("hitcache walrus edited again")
		if err != nil {
			t.Fatal(err)
		}
		other.Exec(t, "UPDATE memories SET text = ? WHERE id = ?", tok, edited)
		if got, _ := search(t, bob); got[edited] != "hitcache walrus edited again" {
			t.Fatalf("after the update the search shows %q", got[edited])
		}
	})
	t.Run("made private by another connection", func(t *testing.T) {
		warm(t)
		other.Exec(t, "UPDATE memories SET permission = 'private' WHERE id = ?", hidden)
		if got, _ := search(t, bob); got[hidden] != "" {
			t.Fatalf("bob still finds alice's memory made private: %v", got)
		}
		if got, _ := search(t, alice); got[hidden] == "" {
			t.Fatalf("alice no longer finds her own private memory: %v", got)
		}
	})
	t.Run("expired", func(t *testing.T) {
		if got := warm(t); got[expiring] == "" {
			t.Fatalf("the memory is gone before its expiry: %v", got)
		}
		clk.Advance(2 * time.Minute)
		got, _ := search(t, bob)
		if got[expiring] != "" {
			t.Fatalf("bob still finds the expired memory: %v", got)
		}
		if got[kept] == "" {
			t.Fatalf("the memory that does not expire is gone: %v", got)
		}
	})
	t.Run("a new memory of the owner keeps the others' rows", func(t *testing.T) {
		warm(t)
		added := submit(map[string]any{"text": "an unrelated note about otters", "permission": "public"})
		m0 := s.C.Memories.HitMisses()
		got, _ := search(t, bob)
		// the new memory itself may be a hit (it is the kept one's
		// neighbour in time); the others are served from the cache
		want := int64(0)
		if _, ok := got[added]; ok {
			want = 1
		}
		if misses := s.C.Memories.HitMisses() - m0; misses > want {
			t.Fatalf("after alice added a memory the search missed the hit cache %d times for %d hits", misses, len(got))
		}
		if got[kept] == "" {
			t.Fatalf("the kept memory is gone: %v", got)
		}
	})
	t.Run("deleted by another connection", func(t *testing.T) {
		warm(t) // last: the keyword index keeps the deleted id, a miss each time
		other.Exec(t, "DELETE FROM memories WHERE id = ?", deleted)
		if got, _ := search(t, bob); got[deleted] != "" {
			t.Fatalf("bob still finds the deleted memory: %v", got)
		}
	})
}

// TestNewMemoryFoundWithoutReadingItsRow: a memory written through the
// tools goes into the search-hit cache as it was stored, so the first
// search that finds it reads no row; what the search shows of it is what
// get_memory reads from data.db; and a change of it afterwards shows in
// the next search.
func TestNewMemoryFoundWithoutReadingItsRow(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	cl := s.RegisterClient(s.SuperuserToken())
	alice, bob := s.UserToken(cl, "alice"), s.UserToken(cl, "bob")
	r := s.Tool(alice, "submit_memory", map[string]any{"text": "seeded okapi lantern", "permission": "shared",
		"shared_with": []string{bob.ID}, "expiration_date": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	if r.Status != 200 {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	id := r.Map(t)["id"].(string)
	found := func(u picardtest.User) (map[string]any, int64) {
		t.Helper()
		q0 := s.C.Memories.HitRowQueries()
		r := s.Tool(u, "query_memory", map[string]any{"query": "okapi lantern", "limit": 5})
		if r.Status != 200 {
			t.Fatalf("query_memory: %d %s", r.Status, r.Body)
		}
		for _, m := range r.Map(t)["memories"].([]any) {
			if m := m.(map[string]any); m["id"] == id {
				return m, s.C.Memories.HitRowQueries() - q0
			}
		}
		t.Fatalf("the search does not find the memory: %s", r.Body)
		return nil, 0
	}
	got, reads := found(alice)
	if reads != 0 {
		t.Fatalf("the first search read %d rows for a memory written through the tools", reads)
	}
	stored := s.Tool(alice, "get_memory", map[string]any{"memory_id": id}).Map(t)
	for _, k := range []string{"text", "permission", "shared_with", "shared_with_groups", "owner_id", "expiration_date", "created", "updated"} {
		if fmt.Sprint(got[k]) != fmt.Sprint(stored[k]) {
			t.Errorf("%s: the search shows %v, data.db holds %v", k, got[k], stored[k])
		}
	}
	if m, _ := found(bob); m["shared_with"] == nil || len(m["shared_with"].([]any)) != 0 {
		t.Errorf("bob, who it is shared with, sees who else it is shared with: %v", m["shared_with"])
	}
	if r := s.Tool(alice, "update_memory", map[string]any{"memory_id": id, "text": "seeded okapi lantern, changed"}); r.Status != 200 {
		t.Fatalf("update_memory: %d %s", r.Status, r.Body)
	}
	if got, _ := found(alice); got["text"] != "seeded okapi lantern, changed" {
		t.Fatalf("after the update the search shows %q", got["text"])
	}
}
