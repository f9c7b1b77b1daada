package mcpserver

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/picard-mcp/picard/plugins/audit"
	"github.com/picard-mcp/picard/plugins/memories"
	"github.com/picard-mcp/picard/plugins/oauth"
)

// AccessRecorder records who touched which memory. audit.Log implements
// it; Record must not block.
type AccessRecorder interface {
	Record(entries ...audit.Entry)
	// RecordCall records call's access to each of memoryIDs (one owner's).
	RecordCall(call audit.Entry, memoryIDs []string)
}

var _ AccessRecorder = (*audit.Log)(nil)

// MemoryUser is a tool result naming memories it drew on (a persona
// answer): their owner and ids.
type MemoryUser interface {
	UsedMemories() (ownerID string, ids []string)
}

// actionOf is the access a tool's returned memories record.
var actionOf = map[string]string{
	"submit_memory":      audit.ActionCreate,
	"update_memory":      audit.ActionUpdate,
	"modify_permissions": audit.ActionShare,
	"delete_memory":      audit.ActionDelete,
	"get_memories":       audit.ActionRead,
	"get_memory":         audit.ActionRead,
	"query_memory":       audit.ActionSearchHit,
	"query_user":         audit.ActionPersonaUse,
}

// recordAccess wraps every tool of ts so that each successful call records
// the memories it returned, changed or drew on.
func recordAccess(ts *Toolset, rec AccessRecorder) {
	for _, t := range ts.List() {
		action, ok := actionOf[t.Name]
		if !ok {
			continue
		}
		call := t.Call
		t.Call = func(ctx context.Context, c Caller, raw json.RawMessage) (any, error) {
			res, err := call(ctx, c, raw)
			if err == nil {
				switch r := res.(type) {
				case *memories.ListResult:
					recordMemories(rec, c, action, r.Memories) // a page: no Entry per memory
				case map[string]any:
					if ms, ok := r["memories"].([]*memories.Memory); ok {
						recordMemories(rec, c, action, ms) // search hits: one row per owner
						break
					}
					rec.Record(accessEntries(c, action, res)...)
				default:
					rec.Record(accessEntries(c, action, res)...)
				}
			}
			return res, err
		}
	}
}

func entry(c Caller, action, memoryID, ownerID string) audit.Entry {
	e := audit.Entry{MemoryID: memoryID, OwnerID: ownerID, ActorID: c.UserID, Action: action}
	if c.Claims != nil {
		e.ClientID = c.Claims.ClientID
	}
	return e
}

func accessEntries(c Caller, action string, res any) []audit.Entry {
	var out []audit.Entry
	add := func(ms []*memories.Memory) {
		for _, m := range ms {
			out = append(out, entry(c, action, m.ID, m.OwnerID))
		}
	}
	switch r := res.(type) {
	case *memories.Memory:
		add([]*memories.Memory{r})
	case *memories.ListResult:
		add(r.Memories)
	case map[string]any:
		if ms, ok := r["memories"].([]*memories.Memory); ok {
			add(ms)
		}
		if id, ok := r["memory_id"].(string); ok && r["deleted"] == true {
			out = append(out, entry(c, action, id, c.UserID)) // only owners delete
		}
	case MemoryUser:
		owner, ids := r.UsedMemories()
		for _, id := range ids {
			out = append(out, entry(c, action, id, owner))
		}
	}
	return out
}

// recordMemories records action on ms: one RecordCall per owner, in the
// order owners first appear, each with that owner's memories in order.
func recordMemories(rec AccessRecorder, c Caller, action string, ms []*memories.Memory) {
	if len(ms) == 0 {
		return
	}
	owner := ms[0].OwnerID
	same := true
	for _, m := range ms[1:] {
		if m.OwnerID != owner {
			same = false
			break
		}
	}
	if same { // a get_memories page
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.ID
		}
		rec.RecordCall(entry(c, action, "", owner), ids)
		return
	}
	var owners []string
	byOwner := map[string][]string{}
	for _, m := range ms {
		if _, ok := byOwner[m.OwnerID]; !ok {
			owners = append(owners, m.OwnerID)
		}
		byOwner[m.OwnerID] = append(byOwner[m.OwnerID], m.ID)
	}
	for _, o := range owners {
		rec.RecordCall(entry(c, action, "", o), byOwner[o])
	}
}

// recordResource records a memory read through an MCP resource.
func (cfg Config) recordResource(c Caller, action string, ms ...*memories.Memory) {
	if cfg.Access == nil {
		return
	}
	out := make([]audit.Entry, 0, len(ms))
	for _, m := range ms {
		out = append(out, entry(c, action, m.ID, m.OwnerID))
	}
	cfg.Access.Record(out...)
}

// AccessLogReader lists an owner's access log.
type AccessLogReader interface {
	List(ownerID string, q audit.Query) (*audit.Page, error)
}

func init() {
	schemas["memory_access_log"] = [2]obj{
		object(obj{
			"memory_id": uuidProp("only this memory's entries"),
			"limit":     intRange("page size", 1, 100, 50),
			"cursor":    str("next_cursor from the previous page"),
		}),
		{"type": "object", "required": []string{"entries"}, "properties": obj{
			"entries": obj{"type": "array", "items": obj{"type": "object", "properties": obj{
				"memory_id":      uuidProp("the memory"),
				"owner_id":       uuidProp("you"),
				"actor_id":       uuidProp("who acted"),
				"actor_username": str("their username, if the account still exists"),
				"client_id":      str("the OAuth client they used"),
				"action":         obj{"type": "string", "enum": []string{audit.ActionRead, audit.ActionSearchHit, audit.ActionResourceRead, audit.ActionPersonaUse, audit.ActionCreate, audit.ActionUpdate, audit.ActionShare, audit.ActionDelete, audit.ActionImport, audit.ActionExport}},
				"at":             obj{"type": "string", "format": "date-time"},
			}}},
			"next_cursor": str("pass as cursor for the next page; absent on the last page"),
		}},
	}
}

// AccessLogTool is memory_access_log: the caller's own memories' log.
func AccessLogTool(log AccessLogReader) *Tool {
	return &Tool{
		Name:        "memory_access_log",
		Description: "Who read, changed or shared your memories, when, and through which client, newest first: reads (get_memories, memory:// resources), search hits returned to someone, persona answers that drew on them, creates, updates, permission changes, deletes, imports, exports. Optionally for one memory_id; page with limit (1-100, default 50) and next_cursor.",
		Scope:       oauth.ScopeRead,
		ReadOnly:    true,
		Call: func(_ context.Context, c Caller, raw json.RawMessage) (any, error) {
			a, err := decode[struct {
				MemoryID string `json:"memory_id"`
				Limit    int    `json:"limit"`
				Cursor   string `json:"cursor"`
			}](raw)
			if err != nil {
				return nil, err
			}
			if a.MemoryID != "" && !memories.IsUUID(a.MemoryID) {
				return nil, &memories.Error{Code: memories.CodeInvalid, Field: "memory_id", Message: "must be a UUID"}
			}
			if a.Limit == 0 {
				a.Limit = 50
			}
			if a.Limit < 1 || a.Limit > 100 {
				return nil, &memories.Error{Code: memories.CodeInvalid, Field: "limit", Message: "must be between 1 and 100"}
			}
			page, err := log.List(c.UserID, audit.Query{MemoryID: a.MemoryID, Limit: a.Limit, Cursor: a.Cursor})
			if errors.Is(err, audit.ErrBadCursor) {
				return nil, &memories.Error{Code: memories.CodeInvalid, Field: "cursor", Message: "is not a cursor returned by memory_access_log"}
			}
			return page, err
		},
	}
}
