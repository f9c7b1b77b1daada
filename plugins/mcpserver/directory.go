package mcpserver

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/platform/policy"
	"github.com/picard-mcp/picard/plugins/memories"
	"github.com/picard-mcp/picard/plugins/oauth"
)

// Directory tools let a client show people names instead of UUIDs: resolve
// usernames and group names to ids and back, list the permission types the
// server knows (plugins' included) and read one memory with its sharing.
// Lookups are exact (no listing, no prefix search), so they do not hand out
// the user directory.

// maxLookup bounds one lookup call.
const maxLookup = 100

// Principal is a user or group as the directory tools return it.
type Principal struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// PermissionType is one registered permission policy.
type PermissionType struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

func init() {
	principals := func(what string) obj {
		return obj{
			"type": "object",
			"properties": obj{
				what: obj{"type": "array", "items": obj{
					"type":       "object",
					"properties": obj{"id": uuidProp(""), "name": str("")},
					"required":   []string{"id", "name"},
				}},
				"unknown": obj{"type": "array", "items": obj{"type": "string"}, "description": "names or ids that matched nothing"},
			},
			"required": []string{what, "unknown"},
		}
	}
	names := func(desc string) obj {
		return obj{"type": "array", "items": obj{"type": "string"}, "maxItems": maxLookup, "description": desc}
	}
	schemas["lookup_users"] = [2]obj{
		object(obj{
			"usernames": names("exact usernames (case-insensitive) to resolve to user ids"),
			"user_ids":  names("user ids to resolve to usernames"),
		}),
		principals("users"),
	}
	schemas["lookup_groups"] = [2]obj{
		object(obj{
			"names":     names("exact group names (case-insensitive) to resolve to group ids"),
			"group_ids": names("group ids to resolve to names"),
		}),
		principals("groups"),
	}
	schemas["list_permissions"] = [2]obj{
		object(obj{}),
		{
			"type": "object",
			"properties": obj{"permissions": obj{"type": "array", "items": obj{
				"type":       "object",
				"properties": obj{"name": str("value for the permission argument"), "description": str("")},
				"required":   []string{"name", "description"},
			}}},
			"required": []string{"permissions"},
		},
	}
	schemas["get_memory"] = [2]obj{
		object(obj{"memory_id": uuidProp("the memory to read")}, "memory_id"),
		MemorySchema,
	}
}

// DirectoryTools builds lookup_users, lookup_groups, list_permissions and
// get_memory.
func DirectoryTools(app core.App, policies *policy.Registry, svc *memories.Service) []*Tool {
	return []*Tool{
		{
			Name:        "lookup_users",
			Description: "Resolve exact usernames to user ids (for shared_with and query_user) and user ids back to usernames. Names that match nobody are listed in unknown.",
			Scope:       oauth.ScopeRead, ReadOnly: true, Idempotent: true,
			Call: func(_ context.Context, _ Caller, raw json.RawMessage) (any, error) {
				a, err := decode[struct {
					Usernames []string `json:"usernames"`
					UserIDs   []string `json:"user_ids"`
				}](raw)
				if err != nil {
					return nil, err
				}
				found, unknown, err := lookup(app, pb_migrations.Users, "username", a.Usernames, a.UserIDs, "usernames")
				if err != nil {
					return nil, err
				}
				return map[string]any{"users": found, "unknown": unknown}, nil
			},
		},
		{
			Name:        "lookup_groups",
			Description: "Resolve exact group names to group ids (for shared_with_groups) and group ids back to names. Names that match no group are listed in unknown.",
			Scope:       oauth.ScopeRead, ReadOnly: true, Idempotent: true,
			Call: func(_ context.Context, _ Caller, raw json.RawMessage) (any, error) {
				a, err := decode[struct {
					Names    []string `json:"names"`
					GroupIDs []string `json:"group_ids"`
				}](raw)
				if err != nil {
					return nil, err
				}
				found, unknown, err := lookup(app, pb_migrations.Groups, "name", a.Names, a.GroupIDs, "names")
				if err != nil {
					return nil, err
				}
				return map[string]any{"groups": found, "unknown": unknown}, nil
			},
		},
		{
			Name:        "list_permissions",
			Description: "List the permission types this server accepts (the built-in private, public, shared and any a plugin registered), with a description of each.",
			Scope:       oauth.ScopeRead, ReadOnly: true, Idempotent: true,
			Call: func(_ context.Context, _ Caller, raw json.RawMessage) (any, error) {
				if _, err := decode[struct{}](raw); err != nil {
					return nil, err
				}
				out := []PermissionType{}
				for _, n := range policies.Names() {
					p, _ := policies.Get(n)
					out = append(out, PermissionType{Name: n, Description: p.Describe()})
				}
				return map[string]any{"permissions": out}, nil
			},
		},
		{
			Name:        "get_memory",
			Description: "Read one memory you may see. Its sharing lists are shown to its owner only. Another user's private memory is \"not found\", like a missing one.",
			Scope:       oauth.ScopeRead, ReadOnly: true, Idempotent: true,
			Call: func(_ context.Context, c Caller, raw json.RawMessage) (any, error) {
				a, err := decode[struct {
					MemoryID string `json:"memory_id"`
				}](raw)
				if err != nil {
					return nil, err
				}
				if err := requireID(a.MemoryID); err != nil {
					return nil, err
				}
				v, err := svc.Viewer(c.UserID)
				if err != nil {
					return nil, err
				}
				return svc.Get(v, a.MemoryID)
			},
		},
	}
}

// lookup resolves names (matched case-insensitively on nameField) and ids
// to principals; what matched nothing is returned in unknown.
func lookup(app core.App, collection, nameField string, names, ids []string, argName string) ([]Principal, []string, error) {
	if len(names)+len(ids) > maxLookup {
		return nil, nil, &memories.Error{Code: memories.CodeInvalid, Field: argName, Message: "at most 100 names and ids together"}
	}
	found := []Principal{}
	unknown := []string{}
	seen := map[string]bool{}
	add := func(id, name string) {
		if !seen[id] {
			seen[id] = true
			found = append(found, Principal{ID: id, Name: name})
		}
	}
	var rows []struct {
		ID   string `db:"id"`
		Name string `db:"name"`
	}
	if len(names) > 0 {
		lower := make([]any, 0, len(names))
		for _, n := range names {
			lower = append(lower, strings.ToLower(strings.TrimSpace(n)))
		}
		err := app.DB().Select("id", nameField+" AS name").From(collection).
			Where(dbx.In("LOWER("+nameField+")", lower...)).All(&rows)
		if err != nil {
			return nil, nil, &memories.Error{Code: memories.CodeInternal, Message: "lookup " + collection, Err: err}
		}
		have := map[string]bool{}
		for _, r := range rows {
			add(r.ID, r.Name)
			have[strings.ToLower(r.Name)] = true
		}
		for _, n := range names {
			if !have[strings.ToLower(strings.TrimSpace(n))] {
				unknown = append(unknown, n)
			}
		}
	}
	if len(ids) > 0 {
		rows = rows[:0]
		anyIDs := make([]any, 0, len(ids))
		for _, id := range ids {
			anyIDs = append(anyIDs, id)
		}
		err := app.DB().Select("id", nameField+" AS name").From(collection).
			Where(dbx.In("id", anyIDs...)).All(&rows)
		if err != nil {
			return nil, nil, &memories.Error{Code: memories.CodeInternal, Message: "lookup " + collection, Err: err}
		}
		have := map[string]bool{}
		for _, r := range rows {
			add(r.ID, r.Name)
			have[r.ID] = true
		}
		for _, id := range ids {
			if !have[id] {
				unknown = append(unknown, id)
			}
		}
	}
	return found, unknown, nil
}
