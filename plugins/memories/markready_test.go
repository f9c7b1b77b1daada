package memories_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/plugins/memories"
)

// TestMarkReadyOnlyUnchangedMemories: an indexer pass marks its memories
// ready in one statement, each only if it was not written again since the
// pass read it; a memory changed meanwhile stays pending for the next
// pass. The statement finds its rows through the id index, not a scan.
func TestMarkReadyOnlyUnchangedMemories(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	var ids []string
	for i := range 5 {
		r := s.Tool(alice, "submit_memory", map[string]any{"text": fmt.Sprintf("note %d", i)})
		if r.Status != 200 {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
		ids = append(ids, r.Map(t)["id"].(string))
	}
	s.C.Memories.FlushIndex(context.Background())
	if _, err := s.App.DB().NewQuery("UPDATE memories SET index_status = 'pending'").Execute(); err != nil {
		t.Fatal(err)
	}
	var loaded []string // each memory's updated time as the pass read it
	for _, id := range ids[:4] {
		var u string
		if err := s.App.DB().NewQuery("SELECT updated FROM memories WHERE id = {:id}").Bind(dbx.Params{"id": id}).Row(&u); err != nil {
			t.Fatal(err)
		}
		loaded = append(loaded, u)
	}
	// ids[1] is written again after the pass read it
	if _, err := s.App.DB().NewQuery("UPDATE memories SET updated = '2099-01-01 00:00:00.000Z' WHERE id = {:id}").Bind(dbx.Params{"id": ids[1]}).Execute(); err != nil {
		t.Fatal(err)
	}
	if err := s.C.Memories.MarkReady(ids[:4], loaded); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ids[0]: "ready", ids[1]: "pending", ids[2]: "ready", ids[3]: "ready", ids[4]: "pending"}
	for id, status := range want {
		var got string
		if err := s.App.DB().NewQuery("SELECT index_status FROM memories WHERE id = {:id}").Bind(dbx.Params{"id": id}).Row(&got); err != nil {
			t.Fatal(err)
		}
		if got != status {
			t.Errorf("memory %s: %s, want %s", id, got, status)
		}
	}
	var plan []struct {
		Detail string `db:"detail"`
	}
	if err := s.App.DB().NewQuery("EXPLAIN QUERY PLAN " + strings.ReplaceAll(memories.MarkReadySQL, "?1", "{:p}")).Bind(dbx.Params{"p": "[]"}).All(&plan); err != nil {
		t.Fatal(err)
	}
	for _, p := range plan {
		if strings.HasPrefix(p.Detail, "SCAN memories") {
			t.Fatalf("mark ready scans the table: %+v", plan)
		}
	}
}
