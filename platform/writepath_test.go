package platform_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/tools/archive"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/vectorstore"
)

// restartOn starts a second Picard on a backup of s's data dir.
func restartOn(t *testing.T, s *picardtest.Server, env map[string]string) *picardtest.Server {
	t.Helper()
	name := fmt.Sprintf("restart-%d.zip", time.Now().UnixNano())
	if err := s.App.CreateBackup(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	fresh := t.TempDir()
	if err := archive.Extract(filepath.Join(s.App.DataDir(), "backups", name), fresh); err != nil {
		t.Fatal(err)
	}
	return picardtest.Start(t, picardtest.Options{DataDir: fresh, Env: env})
}

func denseHits(hits []hit) map[string]bool {
	out := map[string]bool{}
	for _, h := range hits {
		if slices.Contains(h.Signals, "dense") {
			out[h.ID] = true
		}
	}
	return out
}

// waitReindexed waits until the start-up reindex has left nothing pending.
func waitReindexed(t *testing.T, s *picardtest.Server) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pending int
		if err := s.App.DB().NewQuery("SELECT count(*) FROM memories WHERE index_status = 'pending'").Row(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d memories still pending after a minute", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDenseSwitchedOnBuildsMissingVectors: with the default local embedder
// dense search is off, so writes are indexed for keyword search only and
// no vector is built; searching still finds a memory right after its
// write. When the data later runs with PICARD_SEARCH_DENSE=on, a memory
// changed while it was off gets a fresh vector at start, even though the
// store holds as many vectors as there are memories (its stale one), and
// dense search finds it by its new text.
func TestDenseSwitchedOnBuildsMissingVectors(t *testing.T) {
	ctx := context.Background()
	on := map[string]string{"PICARD_SEARCH_DENSE": "on"}
	// 1. dense on: a memory with its vector
	s1 := picardtest.Start(t, picardtest.Options{Env: on})
	cl := s1.RegisterClient(s1.SuperuserToken())
	alice := s1.UserToken(cl, "alice")
	old := submit(t, s1, alice, map[string]any{"text": "a recipe for plum cake"})
	s1.C.Memories.FlushIndex(ctx)
	space := s1.C.Embedder.Space()
	if n, err := s1.C.Vectors.Count(ctx, space); err != nil || n != 1 {
		t.Fatalf("dense on: the vector is built, store holds %d (%v)", n, err)
	}

	// 2. dense off (the default): writes build no vector
	s2 := restartOn(t, s1, nil)
	alice = s2.UserToken(cl, "alice")
	if r := s2.Tool(alice, "update_memory", map[string]any{"memory_id": old.ID, "text": "the lighthouse keeper's logbook"}); r.Status != 200 {
		t.Fatalf("update_memory: %d %s", r.Status, r.Body)
	}
	got := searchHits(t, s2, alice, "lighthouse") // read-your-writes: no reconcile, no sleep
	keyword := 0
	for _, h := range got {
		if slices.Contains(h.Signals, "keyword") {
			keyword++
		}
	}
	if keyword != 1 || len(denseHits(got)) != 0 {
		t.Fatalf("dense off: the changed memory is found by keyword right after its write, not by dense, got %+v", got)
	}
	s2.C.Memories.FlushIndex(ctx)
	if n, err := s2.C.Vectors.Count(ctx, space); err != nil || n != 1 {
		t.Fatalf("dense off: no vector is built (the stale one is left), store holds %d (%v)", n, err)
	}
	if _, err := os.Stat(filepath.Join(s2.App.DataDir(), "vectors.incomplete")); err != nil {
		t.Fatalf("indexing without vectors is remembered: %v", err)
	}

	// 3. dense on again: the store holds as many vectors as there are
	// memories, yet the changed memory gets a fresh one; a memory
	// written meanwhile gets its own
	s3 := restartOn(t, s2, on)
	alice = s3.UserToken(cl, "alice")
	waitReindexed(t, s3)
	added := submit(t, s3, alice, map[string]any{"text": "notes on lighthouse lenses"})
	dense := denseHits(searchHits(t, s3, alice, "lighthouse"))
	if !dense[old.ID] || !dense[added.ID] {
		t.Fatalf("dense search finds the memory changed while it was off and the new one, got %v", dense)
	}
	if n, err := s3.C.Vectors.Count(ctx, space); err != nil || n != 2 {
		t.Fatalf("dense on again: every memory has its vector, store holds %d (%v)", n, err)
	}
	// the changed memory's vector is its new text's, not the stale one
	vec, err := s3.C.Embedder.Embed(ctx, []string{"the lighthouse keeper's logbook"})
	if err != nil {
		t.Fatal(err)
	}
	hits, err := s3.C.Vectors.Search(ctx, vectorstore.Query{Space: space, Vector: vec[0], Limit: 1,
		Filter: vectorstore.Filter{Any: []vectorstore.Clause{{OwnerID: alice.ID}}, Now: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != 1 || hits[0].ID != old.ID || hits[0].Score < 0.99 {
		t.Fatalf("the memory changed while dense search was off has the vector of its new text, got %+v", hits)
	}
	if _, err := os.Stat(filepath.Join(s3.App.DataDir(), "vectors.incomplete")); !os.IsNotExist(err) {
		t.Fatalf("the marker of missing vectors is gone once they are queued (%v)", err)
	}
}

// TestUnreadableMemoryDoesNotBlockItsBatch: a memory that cannot be
// decrypted (a token under a key no longer configured) in the same indexer
// batch as good ones stays pending with its error noted, and the others are
// indexed and found.
func TestUnreadableMemoryDoesNotBlockItsBatch(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	bad := submit(t, s, alice, map[string]any{"text": "alpha lighthouse"})
	good := submit(t, s, alice, map[string]any{"text": "beta lighthouse"})
	ctx := context.Background()
	s.C.Memories.FlushIndex(ctx)
	if err := s.C.Vectors.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.DB().NewQuery("UPDATE memories SET text = {:t} WHERE id = {:id}").
		Bind(dbx.Params{"t": "gAAAAABnot-a-token-of-this-server", "id": bad.ID}).Execute(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.DB().NewQuery("UPDATE memories SET index_status = 'pending'").Execute(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.C.Memories.Reconcile(ctx); err != nil {
		t.Fatalf("one unreadable memory must not fail the pass: %v", err)
	}
	got := searchHits(t, s, alice, "lighthouse")
	if len(got) != 1 || got[0].ID != good.ID {
		t.Fatalf("the readable memory of the batch is indexed and found, got %+v", got)
	}
	var row struct {
		Status string `db:"index_status"`
		Error  string `db:"index_error"`
	}
	if err := s.App.DB().Select("index_status", "index_error").From("memories").Where(dbx.HashExp{"id": bad.ID}).One(&row); err != nil {
		t.Fatal(err)
	}
	if row.Status != "pending" || row.Error == "" {
		t.Fatalf("the unreadable memory stays pending with its error noted, got %+v", row)
	}
}
