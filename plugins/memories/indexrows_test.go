package memories_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestIndexerLoadsEveryMemoryOfItsBatch: the indexer reads each memory of
// a batch once, whatever the batch's size (the reads go in padded chunks),
// and skips ids with no memory (deleted since they were queued); a
// batch of many memories is indexed whole: every one is found by search.
func TestIndexerLoadsEveryMemoryOfItsBatch(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	var ids []string
	for i := range 150 {
		r := s.Tool(alice, "submit_memory", map[string]any{"text": fmt.Sprintf("batchword%d lighthouse", i)})
		if r.Status != http.StatusOK {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
		ids = append(ids, r.Map(t)["id"].(string))
	}
	gone := "0190a0b0-c0d0-7e0f-8000-000000000000"
	for _, n := range []int{1, 2, 3, 63, 64, 65, 129, 150} {
		want := ids[:n]
		got, err := s.C.Memories.LoadForIndex(append(slices.Clone(want), gone))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Fatalf("batch of %d ids and a deleted one: loaded %d memories, not exactly the batch", n, len(got))
		}
	}
	s.C.Memories.FlushIndex(context.Background())
	for _, i := range []int{0, 64, 128, 149} {
		r := s.Tool(alice, "query_memory", map[string]any{"query": fmt.Sprintf("batchword%d", i), "limit": 1})
		if r.Status != http.StatusOK {
			t.Fatalf("query: %d %s", r.Status, r.Body)
		}
		mems, _ := r.Map(t)["memories"].([]any)
		if len(mems) != 1 || mems[0].(map[string]any)["id"] != ids[i] {
			t.Fatalf("memory %d is not found by its word after indexing: %s", i, r.Body)
		}
	}
}
