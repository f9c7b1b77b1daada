package platform_test

import (
	"fmt"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestSearchLoadsEveryHit: query_memory returns every matching memory up
// to its limit, with its own text, when the hits are more than one
// record lookup reads at a time (a statement reads at most 32 ids, the indexer's loader 64).
func TestSearchLoadsEveryHit(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	cl := s.RegisterClient(s.SuperuserToken())
	alice := s.UserToken(cl, "alice")
	want := map[string]string{}
	for i := range 45 {
		text := fmt.Sprintf("quokka sighting number %d on the island", i)
		m := submit(t, s, alice, map[string]any{"text": text})
		want[m.ID] = text
	}
	got := search(t, s, alice, "quokka", map[string]any{"limit": 50})
	if len(got) != len(want) {
		t.Fatalf("query_memory returned %d of the %d matching memories", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, m := range got {
		if seen[m.ID] {
			t.Fatalf("%s returned twice", m.ID)
		}
		seen[m.ID] = true
		if want[m.ID] != m.Text {
			t.Fatalf("%s: text %q, want %q", m.ID, m.Text, want[m.ID])
		}
	}
}
