package memories_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestBusyIndexerGathersWrites: an indexer that has not just run a pass
// indexes a write at once (a search right after it finds it), and one
// that has holds its next pass for the linger, so that writes arriving
// in that time go in one pass; FlushIndex ends the wait. The linger is
// set far above the search's wait here so that a pass held for it could
// not go unnoticed.
func TestBusyIndexerGathersWrites(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	mem := s.C.Memories
	mem.FlushIndex(context.Background())
	mem.SetIndexLinger(time.Hour)
	submit := func(text string) string {
		t.Helper()
		r := s.Tool(alice, "submit_memory", map[string]any{"text": text})
		if r.Status != http.StatusOK {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
		return r.Map(t)["id"].(string)
	}
	found := func(word, id string) bool {
		t.Helper()
		r := s.Tool(alice, "query_memory", map[string]any{"query": word, "limit": 1})
		if r.Status != http.StatusOK {
			t.Fatalf("query: %d %s", r.Status, r.Body)
		}
		mems, _ := r.Map(t)["memories"].([]any)
		return len(mems) == 1 && mems[0].(map[string]any)["id"] == id
	}

	before := mem.IndexPasses()
	first := submit("quokka sunrise")
	if !found("quokka", first) {
		t.Fatal("a write to an idle indexer is not found by the search right after it")
	}
	if got := mem.IndexPasses() - before; got != 1 {
		t.Fatalf("the idle write took %d passes, want 1", got)
	}

	ids := map[string]string{"wombat": "", "platypus": "", "echidna": ""}
	for w := range ids {
		ids[w] = submit(w + " at dusk")
	}
	mem.FlushIndex(context.Background())
	if got := mem.IndexPasses() - before; got != 2 {
		t.Fatalf("three writes right after a pass were indexed in %d passes, want 1 (2 in all)", got-1)
	}
	for w, id := range ids {
		if !found(w, id) {
			t.Fatalf("%q is not found after the flush", w)
		}
	}

	// shutting down ends the linger; the held write stays pending for the
	// reconciler of the next start
	last := submit("numbat at noon")
	closed := make(chan struct{})
	go func() {
		mem.CloseIndexer()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(time.Minute):
		t.Fatal("the indexer's shutdown waits for its linger")
	}
	rec, err := s.App.FindRecordById("memories", last)
	if err != nil {
		t.Fatal(err)
	}
	if st := rec.GetString("index_status"); st != "pending" {
		t.Fatalf("a write held by the linger at shutdown is %q, want pending", st)
	}
}
