package memories_test

import (
	"context"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestReconcileLeavesNewerWritesToTheIndexer: a reconciler pass indexes
// the memories pending when it started and leaves those written after
// (the indexer has them), so a steady write rate does not get every
// memory indexed twice; a pending memory stamped implausibly far in the
// future is indexed anyway, never stranded.
func TestReconcileLeavesNewerWritesToTheIndexer(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	r := s.Tool(alice, "submit_memory", map[string]any{"text": "alpha lighthouse"})
	if r.Status != 200 {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	id := r.Map(t)["id"].(string)
	ctx := context.Background()
	s.C.Memories.FlushIndex(ctx)
	status := func() string {
		var st string
		if err := s.App.DB().NewQuery("SELECT index_status FROM memories WHERE id = {:id}").Bind(dbx.Params{"id": id}).Row(&st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	if _, err := s.App.DB().NewQuery("UPDATE memories SET index_status = 'pending' WHERE id = {:id}").Bind(dbx.Params{"id": id}).Execute(); err != nil {
		t.Fatal(err)
	}
	var updated string
	if err := s.App.DB().NewQuery("SELECT updated FROM memories WHERE id = {:id}").Bind(dbx.Params{"id": id}).Row(&updated); err != nil {
		t.Fatal(err)
	}
	written, err := time.Parse("2006-01-02 15:04:05.000Z", updated)
	if err != nil {
		t.Fatal(err)
	}
	passStart := written.Add(-time.Second) // the memory was written a second after this pass started
	if n, err := s.C.Memories.IndexPendingBefore(ctx, passStart); err != nil || n != 0 || status() != "pending" {
		t.Fatalf("a memory written after the pass started is the indexer's: indexed %d (%v), status %s", n, err, status())
	}
	if n, err := s.C.Memories.IndexPendingBefore(ctx, time.Now()); err != nil || n != 1 || status() != "ready" {
		t.Fatalf("a memory written before the pass started is indexed: indexed %d (%v), status %s", n, err, status())
	}
	future := time.Now().Add(2 * time.Hour).UTC().Format("2006-01-02 15:04:05.000Z")
	if _, err := s.App.DB().NewQuery("UPDATE memories SET index_status = 'pending', updated = {:u} WHERE id = {:id}").Bind(dbx.Params{"id": id, "u": future}).Execute(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.C.Memories.IndexPendingBefore(ctx, time.Now()); err != nil || n != 1 || status() != "ready" {
		t.Fatalf("a pending memory stamped hours ahead is indexed, not stranded: indexed %d (%v), status %s", n, err, status())
	}
}
