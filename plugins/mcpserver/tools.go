// Package mcpserver exposes Picard's tools: over MCP streamable HTTP at
// /mcp and as JSON at POST /api/tools. Both transports call the same Tool
// values, so a tool behaves identically whichever way it is reached.
package mcpserver

import (
	"context"
	"encoding/json"

	"github.com/picard-mcp/picard/internal/strictjson"
	"github.com/picard-mcp/picard/plugins/memories"
	"github.com/picard-mcp/picard/plugins/oauth"
)

// Caller is the authenticated user calling a tool.
type Caller struct {
	UserID string
	Claims *oauth.Claims
}

// Tool is one operation offered to clients.
type Tool struct {
	Name        string
	Description string
	Scope       string // scope the access token must carry
	ReadOnly    bool
	Destructive bool
	Idempotent  bool
	Call        func(ctx context.Context, c Caller, args json.RawMessage) (any, error)
}

// Toolset is the ordered list of tools with lookup by name.
type Toolset struct {
	tools  []*Tool
	byName map[string]*Tool
}

// Add registers tools; aliases share the Tool value.
func (ts *Toolset) Add(t *Tool, aliases ...string) {
	if ts.byName == nil {
		ts.byName = map[string]*Tool{}
	}
	ts.tools = append(ts.tools, t)
	ts.byName[t.Name] = t
	for _, a := range aliases {
		ts.byName[a] = t
	}
}

// Get finds a tool by name or alias.
func (ts *Toolset) Get(name string) (*Tool, bool) {
	t, ok := ts.byName[name]
	return t, ok
}

// List returns the tools in registration order (no aliases).
func (ts *Toolset) List() []*Tool { return ts.tools }

func decode[T any](raw json.RawMessage) (T, error) {
	var v T
	err := strictjson.Decode(raw, &v)
	return v, err
}

func requireID(id string) error {
	if id == "" {
		return &memories.Error{Code: memories.CodeInvalid, Field: "memory_id", Message: "is required"}
	}
	return nil
}

// MemoryTools builds the memory tools on svc.
func MemoryTools(svc *memories.Service) *Toolset {
	ts := &Toolset{}
	ts.Add(&Tool{
		Name:        "submit_memory",
		Description: "Store a new memory for the signed-in user. permission is private (default), public or shared (then name users in shared_with or groups in shared_with_groups). expiration_date (RFC 3339) makes it disappear after that time.",
		Scope:       oauth.ScopeWrite,
		Call: func(ctx context.Context, c Caller, raw json.RawMessage) (any, error) {
			a, err := decode[struct {
				Text             string   `json:"text"`
				Permission       string   `json:"permission"`
				SharedWith       []string `json:"shared_with"`
				SharedWithGroups []string `json:"shared_with_groups"`
				ExpirationDate   string   `json:"expiration_date"`
			}](raw)
			if err != nil {
				return nil, err
			}
			return svc.Submit(ctx, c.UserID, memories.SubmitInput{
				Text: a.Text, Permission: a.Permission, SharedWith: a.SharedWith,
				SharedWithGroups: a.SharedWithGroups, ExpirationDate: a.ExpirationDate,
			})
		},
	})
	ts.Add(&Tool{
		Name:        "update_memory",
		Description: "Change the text or the expiration_date of one of your memories. An empty expiration_date removes the expiry.",
		Scope:       oauth.ScopeWrite,
		Idempotent:  true,
		Call: func(ctx context.Context, c Caller, raw json.RawMessage) (any, error) {
			a, err := decode[struct {
				MemoryID       string  `json:"memory_id"`
				Text           *string `json:"text"`
				ExpirationDate *string `json:"expiration_date"`
			}](raw)
			if err != nil {
				return nil, err
			}
			if err := requireID(a.MemoryID); err != nil {
				return nil, err
			}
			return svc.Update(ctx, c.UserID, a.MemoryID, memories.UpdateInput{Text: a.Text, ExpirationDate: a.ExpirationDate})
		},
	})
	ts.Add(&Tool{
		Name:        "delete_memory",
		Description: "Delete one of your memories for good.",
		Scope:       oauth.ScopeWrite,
		Destructive: true,
		Idempotent:  true,
		Call: func(ctx context.Context, c Caller, raw json.RawMessage) (any, error) {
			a, err := decode[struct {
				MemoryID string `json:"memory_id"`
			}](raw)
			if err != nil {
				return nil, err
			}
			if err := requireID(a.MemoryID); err != nil {
				return nil, err
			}
			if err := svc.Delete(ctx, c.UserID, a.MemoryID); err != nil {
				return nil, err
			}
			return map[string]any{"deleted": true, "memory_id": a.MemoryID}, nil
		},
	})
	ts.Add(&Tool{
		Name:        "get_memories",
		Description: "List your own memories, newest first (sort: newest or oldest). Filter by permission; page with limit (1-100) and the next_cursor of the previous page.",
		Scope:       oauth.ScopeRead,
		ReadOnly:    true,
		Idempotent:  true,
		Call: func(_ context.Context, c Caller, raw json.RawMessage) (any, error) {
			a, err := decode[struct {
				Limit          int    `json:"limit"`
				Cursor         string `json:"cursor"`
				Permission     string `json:"permission"`
				Sort           string `json:"sort"`
				IncludeExpired bool   `json:"include_expired"`
			}](raw)
			if err != nil {
				return nil, err
			}
			return svc.List(c.UserID, memories.ListInput{
				Limit: a.Limit, Cursor: a.Cursor, Permission: a.Permission, Sort: a.Sort, IncludeExpired: a.IncludeExpired,
			})
		},
	})
	ts.Add(&Tool{
		Name:        "query_memory",
		Description: "Search: the memories you may read (yours, public ones, and ones shared with you; scope own for yours only), most relevant first, with a score and the signals that matched (keyword, context: written next to a match, dense: by meaning when a semantic embedder is configured). limit 1-50, default 5.",
		Scope:       oauth.ScopeRead,
		ReadOnly:    true,
		Idempotent:  true,
		Call: func(ctx context.Context, c Caller, raw json.RawMessage) (any, error) {
			a, err := decode[struct {
				Query string `json:"query"`
				Limit int    `json:"limit"`
				Scope string `json:"scope"`
			}](raw)
			if err != nil {
				return nil, err
			}
			v, err := svc.Viewer(c.UserID)
			if err != nil {
				return nil, err
			}
			ms, err := svc.Search(ctx, v, memories.SearchInput{Query: a.Query, Limit: a.Limit, Scope: a.Scope})
			if err != nil {
				return nil, err
			}
			return map[string]any{"memories": ms, "count": len(ms)}, nil
		},
	}, "retrieve_memories")
	ts.Add(&Tool{
		Name:        "modify_permissions",
		Description: "Change who may read one of your memories: private, public, or shared with the users in shared_with and the groups in shared_with_groups.",
		Scope:       oauth.ScopeWrite,
		Idempotent:  true,
		Call: func(ctx context.Context, c Caller, raw json.RawMessage) (any, error) {
			a, err := decode[struct {
				MemoryID         string   `json:"memory_id"`
				Permission       string   `json:"permission"`
				SharedWith       []string `json:"shared_with"`
				SharedWithGroups []string `json:"shared_with_groups"`
			}](raw)
			if err != nil {
				return nil, err
			}
			if err := requireID(a.MemoryID); err != nil {
				return nil, err
			}
			return svc.ModifyPermissions(ctx, c.UserID, a.MemoryID, a.Permission, a.SharedWith, a.SharedWithGroups)
		},
	})
	return ts
}

// PersonaAsker answers as another user's persona.
type PersonaAsker func(ctx context.Context, callerID, targetID, question string) (any, error)

// PersonaTool is query_user.
func PersonaTool(ask PersonaAsker) *Tool {
	return &Tool{
		Name:        "query_user",
		Description: "Ask another user's persona a question. It answers from that user's memories you may read (public ones, and ones shared with you), through the configured language model, and says which memories it used and which model answered; without a model it lists the memories, clearly labelled.",
		Scope:       oauth.ScopeRead,
		ReadOnly:    true,
		Call: func(ctx context.Context, c Caller, raw json.RawMessage) (any, error) {
			a, err := decode[struct {
				UserID string `json:"user_id"`
				Query  string `json:"query"`
			}](raw)
			if err != nil {
				return nil, err
			}
			return ask(ctx, c.UserID, a.UserID, a.Query)
		},
	}
}
