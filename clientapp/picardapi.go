package main

import (
	"context"
	"strings"
)

// Memory is a memory as Picard's tools return it.
type Memory struct {
	ID               string   `json:"id"`
	Text             string   `json:"text"`
	Permission       string   `json:"permission"`
	SharedWith       []string `json:"shared_with"`
	SharedWithGroups []string `json:"shared_with_groups"`
	OwnerID          string   `json:"owner_id"`
	ExpirationDate   *string  `json:"expiration_date"`
	Created          string   `json:"created"`
	Updated          string   `json:"updated"`
	Score            *float64 `json:"score,omitempty"`

	// Filled in by this app for display.
	SharedNames      []string `json:"-"`
	SharedGroupNames []string `json:"-"`
	OwnerName        string   `json:"-"`
}

// Expires is the expiry as YYYY-MM-DD ("" when none).
func (m *Memory) Expires() string {
	if m.ExpirationDate == nil || len(*m.ExpirationDate) < 10 {
		return ""
	}
	return (*m.ExpirationDate)[:10]
}

// Permission is one permission type Picard accepts.
type Permission struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

type principal struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type lookupResult struct {
	Users   []principal `json:"users"`
	Groups  []principal `json:"groups"`
	Unknown []string    `json:"unknown"`
}

func (a *App) call(ctx context.Context, u *User, tool string, args map[string]any, out any) error {
	if args == nil {
		args = map[string]any{}
	}
	return a.mcp.Call(ctx, u.ID, tool, args, out)
}

// memoryPage reads one page of the person's memories (get_memories with
// args, continuing at cursor when set) and the cursor of the next page.
func (a *App) memoryPage(ctx context.Context, u *User, args map[string]any, cursor string) ([]*Memory, string, error) {
	if cursor != "" {
		args["cursor"] = cursor
	}
	var page struct {
		Memories   []*Memory `json:"memories"`
		NextCursor string    `json:"next_cursor"`
	}
	err := a.call(ctx, u, "get_memories", args, &page)
	return page.Memories, page.NextCursor, err
}

func (a *App) permissions(ctx context.Context, u *User) ([]Permission, error) {
	var out struct {
		Permissions []Permission `json:"permissions"`
	}
	err := a.call(ctx, u, "list_permissions", nil, &out)
	return out.Permissions, err
}

// resolve turns names into ids (kind "users" or "groups"); unknown names
// come back separately.
func (a *App) resolve(ctx context.Context, u *User, kind string, names []string) (ids, unknown []string, err error) {
	if len(names) == 0 {
		return []string{}, nil, nil
	}
	tool, arg := "lookup_users", "usernames"
	if kind == "groups" {
		tool, arg = "lookup_groups", "names"
	}
	var out lookupResult
	if err := a.call(ctx, u, tool, map[string]any{arg: names}, &out); err != nil {
		return nil, nil, err
	}
	ids = []string{}
	for _, p := range append(out.Users, out.Groups...) {
		ids = append(ids, p.ID)
	}
	return ids, out.Unknown, nil
}

// names maps ids to names (kind "users" or "groups").
func (a *App) names(ctx context.Context, u *User, kind string, ids []string) (map[string]string, error) {
	m := map[string]string{}
	if len(ids) == 0 {
		return m, nil
	}
	tool, arg := "lookup_users", "user_ids"
	if kind == "groups" {
		tool, arg = "lookup_groups", "group_ids"
	}
	var out lookupResult
	if err := a.call(ctx, u, tool, map[string]any{arg: ids}, &out); err != nil {
		return nil, err
	}
	for _, p := range append(out.Users, out.Groups...) {
		m[p.ID] = p.Name
	}
	return m, nil
}

// fillNames sets the display names of sharing lists and owners.
func (a *App) fillNames(ctx context.Context, u *User, ms []*Memory) error {
	var uids, gids []string
	for _, m := range ms {
		uids = append(uids, m.SharedWith...)
		uids = append(uids, m.OwnerID)
		gids = append(gids, m.SharedWithGroups...)
	}
	un, err := a.names(ctx, u, "users", dedupe(uids))
	if err != nil {
		return err
	}
	gn, err := a.names(ctx, u, "groups", dedupe(gids))
	if err != nil {
		return err
	}
	for _, m := range ms {
		m.OwnerName = un[m.OwnerID]
		m.SharedNames, m.SharedGroupNames = nil, nil
		for _, id := range m.SharedWith {
			m.SharedNames = append(m.SharedNames, orID(un[id], id))
		}
		for _, id := range m.SharedWithGroups {
			m.SharedGroupNames = append(m.SharedGroupNames, orID(gn[id], id))
		}
	}
	return nil
}

func orID(name, id string) string {
	if name == "" {
		return id
	}
	return name
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// splitNames splits a comma-separated list of names.
func splitNames(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return dedupe(out)
}

// ownMemory loads a memory of u's; another person's memory is ErrNotFound
// just like a missing one.
func (a *App) ownMemory(ctx context.Context, u *User, id string) (*Memory, error) {
	var m Memory
	if err := a.call(ctx, u, "get_memory", map[string]any{"memory_id": id}, &m); err != nil {
		return nil, err
	}
	c, err := a.store.Connection(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if m.OwnerID != c.PicardUserID {
		return nil, &ToolError{Msg: "memory_id: memory not found"}
	}
	return &m, nil
}
