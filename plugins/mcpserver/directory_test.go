package mcpserver_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/internal/picardtest"
)

func TestDirectoryTools(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	c := s.RegisterClient(s.SuperuserToken())
	alice := s.UserToken(c, "alice")
	bob := s.UserToken(c, "Bob")

	t.Run("lookup_users resolves usernames case-insensitively and back", func(t *testing.T) {
		r := s.Tool(alice, "lookup_users", map[string]any{"usernames": []string{"bob", "nobody"}})
		if r.Status != http.StatusOK {
			t.Fatalf("lookup_users: %d %s", r.Status, r.Body)
		}
		var out struct {
			Users   []struct{ ID, Name string } `json:"users"`
			Unknown []string                    `json:"unknown"`
		}
		r.JSON(t, &out)
		if len(out.Users) != 1 || out.Users[0].ID != bob.ID || out.Users[0].Name != "Bob" {
			t.Fatalf("want Bob's id %s, got %+v", bob.ID, out.Users)
		}
		if !slices.Equal(out.Unknown, []string{"nobody"}) {
			t.Fatalf("unknown: %v", out.Unknown)
		}
		r = s.Tool(alice, "lookup_users", map[string]any{"user_ids": []string{bob.ID}})
		r.JSON(t, &out)
		if len(out.Users) != 1 || out.Users[0].Name != "Bob" {
			t.Fatalf("by id: %+v", out.Users)
		}
	})

	t.Run("lookup_groups resolves names and reports unknown ones", func(t *testing.T) {
		col, err := s.App.FindCollectionByNameOrId("groups")
		if err != nil {
			t.Fatal(err)
		}
		g := core.NewRecord(col)
		g.Set("name", "Book Club")
		if err := s.App.Save(g); err != nil {
			t.Fatal(err)
		}
		r := s.Tool(alice, "lookup_groups", map[string]any{"names": []string{"book club", "chess"}})
		var out struct {
			Groups  []struct{ ID, Name string } `json:"groups"`
			Unknown []string                    `json:"unknown"`
		}
		r.JSON(t, &out)
		if len(out.Groups) != 1 || out.Groups[0].ID != g.Id || out.Groups[0].Name != "Book Club" || !slices.Equal(out.Unknown, []string{"chess"}) {
			t.Fatalf("lookup_groups: %s", r.Body)
		}
		r = s.Tool(alice, "lookup_groups", map[string]any{"names": make([]string, 101)})
		if r.Status != http.StatusBadRequest {
			t.Fatalf("101 names: %d %s", r.Status, r.Body)
		}
	})

	t.Run("list_permissions includes plugin types", func(t *testing.T) {
		r := s.Tool(alice, "list_permissions", map[string]any{})
		var out struct {
			Permissions []struct{ Name, Description string } `json:"permissions"`
		}
		r.JSON(t, &out)
		var names []string
		for _, p := range out.Permissions {
			names = append(names, p.Name)
			if p.Description == "" {
				t.Errorf("%s has no description", p.Name)
			}
		}
		for _, want := range []string{"private", "public", "shared", "statistical"} {
			if !slices.Contains(names, want) {
				t.Errorf("missing %s in %v", want, names)
			}
		}
	})

	t.Run("get_memory: own memory with sharing, another's private one not found", func(t *testing.T) {
		r := s.Tool(alice, "submit_memory", map[string]any{"text": "alice secret", "permission": "shared", "shared_with": []string{bob.ID}})
		var m struct {
			ID         string   `json:"id"`
			SharedWith []string `json:"shared_with"`
		}
		r.JSON(t, &m)
		r = s.Tool(alice, "get_memory", map[string]any{"memory_id": m.ID})
		var got struct {
			Text       string   `json:"text"`
			SharedWith []string `json:"shared_with"`
		}
		r.JSON(t, &got)
		if got.Text != "alice secret" || !slices.Equal(got.SharedWith, []string{bob.ID}) {
			t.Fatalf("owner's view: %s", r.Body)
		}
		r = s.Tool(alice, "submit_memory", map[string]any{"text": "alice private", "permission": "private"})
		r.JSON(t, &m)
		r = s.Tool(bob, "get_memory", map[string]any{"memory_id": m.ID})
		if r.Status != http.StatusNotFound {
			t.Fatalf("bob reading alice's private memory: %d %s", r.Status, r.Body)
		}
	})
}
