package memories_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/plugins/memories"
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

// TestSearchWaitsOnlyForWritesItsCallerCouldSee: with the indexer holding
// its pass, another user's search does not wait for a private write it
// could never see (it answers while the pass is still held), while the
// writer's own search and, for a public write, everyone's search wait for
// the pass and find the write. The search's wait bound is an hour here, so
// a search waiting for the held pass would not answer before the flush.
func TestSearchWaitsOnlyForWritesItsCallerCouldSee(t *testing.T) {
	prev := memories.SetSearchWaitMax(time.Hour)
	t.Cleanup(func() { memories.SetSearchWaitMax(prev) })
	s := picardtest.Start(t, picardtest.Options{})
	client := s.RegisterClient(s.SuperuserToken())
	alice, bob := s.UserToken(client, "alice"), s.UserToken(client, "bob")
	mem := s.C.Memories
	submit := func(text, permission string) string {
		t.Helper()
		r := s.Tool(alice, "submit_memory", map[string]any{"text": text, "permission": permission})
		if r.Status != http.StatusOK {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
		return r.Map(t)["id"].(string)
	}
	search := func(u picardtest.User, word string) []string {
		r := s.Tool(u, "query_memory", map[string]any{"query": word, "limit": 5})
		if r.Status != http.StatusOK {
			t.Errorf("query: %d %s", r.Status, r.Body)
			return nil
		}
		var ids []string
		mems, _ := r.Map(t)["memories"].([]any)
		for _, m := range mems {
			ids = append(ids, m.(map[string]any)["id"].(string))
		}
		return ids
	}
	// flushes the held pass once the search under test had time to start
	// waiting; a search that does not wait has answered by then
	flushSoon := func() chan struct{} {
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(300 * time.Millisecond)
			mem.FlushIndex(context.Background())
		}()
		return done
	}

	submit("kiwi warm-up", "private")
	mem.FlushIndex(context.Background()) // a pass just ended: the next one is held
	mem.SetIndexLinger(time.Hour)

	private := submit("kiwi held private note", "private")
	passes := mem.IndexPasses()
	answered := make(chan []string, 1)
	go func() { answered <- search(bob, "kiwi") }()
	select {
	case got := <-answered:
		if slices.Contains(got, private) {
			t.Fatalf("bob found alice's private memory: %v", got)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("bob's search waited for the pass of alice's private write")
	}
	if mem.IndexPasses() != passes {
		t.Fatal("the pass ran before bob's search answered: the test proved nothing")
	}
	done := flushSoon()
	if got := search(alice, "kiwi"); !slices.Contains(got, private) {
		t.Fatalf("alice's search right after her write does not find it: %v", got)
	}
	<-done

	public := submit("kiwi held public note", "public")
	done = flushSoon()
	if got := search(bob, "kiwi"); !slices.Contains(got, public) {
		t.Fatalf("bob's search after alice's public write does not find it: %v", got)
	}
	<-done
}
