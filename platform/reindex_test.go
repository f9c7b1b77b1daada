package platform_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestReindexRebuildsTheStore: after the vector store loses everything
// (a new embedder space, a wiped database), `picard reindex` rebuilds it
// from the records, reporting progress.
func TestReindexRebuildsTheStore(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	for _, text := range []string{"the lighthouse keeper's logbook", "a recipe for plum cake", "notes on lighthouse lenses"} {
		submit(t, s, alice, map[string]any{"text": text})
	}
	ctx := context.Background()
	// let the background reconciler finish what the writes kicked off
	if _, err := s.C.Memories.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := s.C.Vectors.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got := search(t, s, alice, "lighthouse", nil); len(got) != 0 {
		t.Fatalf("after the reset nothing can be found, got %d", len(got))
	}
	var last, total int
	n, err := s.C.Memories.Reindex(ctx, func(done, all int) { last, total = done, all })
	if err != nil || n != 3 || last != 3 || total != 3 {
		t.Fatalf("reindex: n=%d progress %d/%d err %v", n, last, total, err)
	}
	got := search(t, s, alice, "lighthouse", map[string]any{"limit": 2})
	if len(got) != 2 || !strings.Contains(got[0].Text, "lighthouse") || !strings.Contains(got[1].Text, "lighthouse") {
		t.Fatalf("after reindex both lighthouse memories rank first again, got %+v", got)
	}
}
