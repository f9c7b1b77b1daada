package memories_test

import (
	"net/http"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
)

// TestGroupMembershipFollowsChanges: group memberships are kept in memory
// between tool calls; adding a user to a group, removing them and deleting
// the group change what they can find at once.
func TestGroupMembershipFollowsChanges(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	c := s.RegisterClient(s.SuperuserToken())
	alice, carol := s.UserToken(c, "alice"), s.UserToken(c, "carol")
	gcol, err := s.App.FindCollectionByNameOrId(pb_migrations.Groups)
	if err != nil {
		t.Fatal(err)
	}
	group := core.NewRecord(gcol)
	group.Set("name", "book club")
	group.Set("members", []string{alice.ID})
	if err := s.App.Save(group); err != nil {
		t.Fatal(err)
	}
	r := s.Tool(alice, "submit_memory", map[string]any{"text": "The book club reads a lighthouse mystery",
		"permission": "shared", "shared_with_groups": []string{group.Id}})
	if r.Status != http.StatusOK {
		t.Fatalf("submit_memory: %d %s", r.Status, r.Body)
	}
	finds := func() bool {
		t.Helper()
		r := s.Tool(carol, "query_memory", map[string]any{"query": "lighthouse mystery", "scope": "accessible"})
		if r.Status != http.StatusOK {
			t.Fatalf("query_memory: %d %s", r.Status, r.Body)
		}
		return len(r.Map(t)["memories"].([]any)) > 0
	}
	if finds() {
		t.Fatal("carol finds a memory shared with a group she is not in")
	}
	group.Set("members", []string{alice.ID, carol.ID})
	if err := s.App.Save(group); err != nil {
		t.Fatal(err)
	}
	if !finds() {
		t.Fatal("carol, added to the group, does not find its memory")
	}
	group.Set("members", []string{alice.ID})
	if err := s.App.Save(group); err != nil {
		t.Fatal(err)
	}
	if finds() {
		t.Fatal("carol, removed from the group, still finds its memory")
	}
	group.Set("members", []string{alice.ID, carol.ID})
	if err := s.App.Save(group); err != nil {
		t.Fatal(err)
	}
	if !finds() {
		t.Fatal("carol, added again, does not find the memory")
	}
	if err := s.App.Delete(group); err != nil {
		t.Fatal(err)
	}
	if finds() {
		t.Fatal("carol still finds the memory after the group was deleted")
	}
}
