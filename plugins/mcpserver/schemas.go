package mcpserver

import "encoding/json"

// JSON Schemas for the tools: one per tool, used by MCP (inputSchema,
// outputSchema) and by /openapi.json, so the two transports can't drift.

type obj = map[string]any

func str(desc string) obj { return obj{"type": "string", "description": desc} }

func uuidProp(desc string) obj {
	return obj{"type": "string", "format": "uuid", "description": desc}
}

func uuidList(desc string) obj {
	return obj{"type": "array", "items": obj{"type": "string", "format": "uuid"}, "maxItems": 100, "description": desc}
}

func intRange(desc string, lo, hi, def int) obj {
	return obj{"type": "integer", "minimum": lo, "maximum": hi, "default": def, "description": desc}
}

func object(props obj, required ...string) obj {
	o := obj{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// MemorySchema describes a memory as returned by every tool.
var MemorySchema = obj{
	"type": "object",
	"properties": obj{
		"id":                 uuidProp("memory id"),
		"text":               str("the memory's text"),
		"permission":         str("private, public, shared, or a plugin's type"),
		"shared_with":        obj{"type": "array", "items": obj{"type": "string"}},
		"shared_with_groups": obj{"type": "array", "items": obj{"type": "string"}},
		"owner_id":           uuidProp("the owner's user id"),
		"expiration_date":    obj{"type": []string{"string", "null"}, "format": "date-time"},
		"created":            obj{"type": "string", "format": "date-time"},
		"updated":            obj{"type": "string", "format": "date-time"},
		"score":              obj{"type": "number", "description": "relevance to the query, comparable within one result list; the best result scores 1 (search results only)"},
		"signals":            obj{"type": "array", "items": obj{"type": "string", "enum": []string{"keyword", "context", "dense"}}, "description": "why it matched (search results only): keyword (it holds query words), context (memories written just before or after it do), dense (embedding similarity)"},
	},
	"required": []string{"id", "text", "permission", "shared_with", "shared_with_groups", "owner_id", "expiration_date", "created", "updated"},
}

func memoriesResult(extra obj, required ...string) obj {
	props := obj{"memories": obj{"type": "array", "items": MemorySchema}}
	for k, v := range extra {
		props[k] = v
	}
	return obj{"type": "object", "properties": props, "required": append([]string{"memories"}, required...)}
}

var (
	permissionProp   = str("who may read it: private (only you), public (every user; feeds your persona), shared (the users in shared_with and the groups in shared_with_groups), statistical (only you; may count in aggregates)")
	sharedWithProp   = uuidList("user ids to share with (permission shared)")
	sharedGroupsProp = uuidList("group ids to share with (permission shared)")
	expirationProp   = obj{"type": "string", "format": "date-time", "description": "RFC 3339 time after which the memory disappears, e.g. 2030-01-02T15:04:05Z"}
)

var schemas = map[string][2]obj{
	"submit_memory": {
		object(obj{
			"text":               obj{"type": "string", "minLength": 1, "maxLength": 10000, "description": "what to remember"},
			"permission":         permissionProp,
			"shared_with":        sharedWithProp,
			"shared_with_groups": sharedGroupsProp,
			"expiration_date":    expirationProp,
		}, "text"),
		MemorySchema,
	},
	"update_memory": {
		object(obj{
			"memory_id":       uuidProp("the memory to change"),
			"text":            obj{"type": "string", "minLength": 1, "maxLength": 10000, "description": "new text"},
			"expiration_date": obj{"type": "string", "description": "new RFC 3339 expiry, or an empty string to remove it"},
		}, "memory_id"),
		MemorySchema,
	},
	"delete_memory": {
		object(obj{"memory_id": uuidProp("the memory to delete")}, "memory_id"),
		obj{"type": "object", "properties": obj{"deleted": obj{"type": "boolean"}, "memory_id": uuidProp("")}, "required": []string{"deleted"}},
	},
	"get_memories": {
		object(obj{
			"limit":           intRange("page size", 1, 100, 20),
			"cursor":          str("next_cursor from the previous page"),
			"permission":      str("only memories with this permission"),
			"sort":            obj{"type": "string", "enum": []string{"newest", "oldest"}, "default": "newest"},
			"include_expired": obj{"type": "boolean", "default": false, "description": "also list your expired memories not yet purged"},
		}),
		memoriesResult(obj{"next_cursor": str("pass as cursor for the next page; absent on the last page")}),
	},
	"query_memory": {
		object(obj{
			"query": obj{"type": "string", "minLength": 1, "maxLength": 2000, "description": "what to look for"},
			"limit": intRange("how many results", 1, 50, 5),
			"scope": obj{"type": "string", "enum": []string{"accessible", "own"}, "default": "accessible", "description": "accessible: yours, public and shared with you; own: yours only"},
		}, "query"),
		memoriesResult(obj{"count": obj{"type": "integer"}}, "count"),
	},
	"modify_permissions": {
		object(obj{
			"memory_id":          uuidProp("the memory to change"),
			"permission":         permissionProp,
			"shared_with":        sharedWithProp,
			"shared_with_groups": sharedGroupsProp,
		}, "memory_id", "permission"),
		MemorySchema,
	},
	"query_user": {
		object(obj{
			"user_id": uuidProp("the user whose persona answers"),
			"query":   obj{"type": "string", "minLength": 1, "maxLength": 2000, "description": "the question for the persona"},
		}, "user_id", "query"),
		obj{
			"type": "object",
			"properties": obj{
				"answer":        str("the persona's answer"),
				"user_id":       uuidProp("the persona's user"),
				"memory_ids":    obj{"type": "array", "items": obj{"type": "string"}, "description": "the memories the answer drew on"},
				"model":         str("the LLM that answered, or \"none\" for the composed fallback"),
				"llm_answered":  obj{"type": "boolean"},
				"fallback_note": str("present when no LLM answered"),
			},
			"required": []string{"answer", "user_id", "memory_ids", "model", "llm_answered"},
		},
	},
}

// Schemas returns a tool's input and output JSON Schemas.
func Schemas(tool string) (in, out json.RawMessage) {
	s, ok := schemas[tool]
	if !ok {
		return mustJSON(object(obj{})), nil
	}
	return mustJSON(s[0]), mustJSON(s[1])
}

// SchemaObjects returns the schemas as maps, for the OpenAPI document.
func SchemaObjects(tool string) (in, out map[string]any) {
	s := schemas[tool]
	return s[0], s[1]
}
