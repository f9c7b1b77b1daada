package mcpserver

import (
	"io"
	"net/http"

	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/plugins/audit"
	"github.com/picard-mcp/picard/plugins/oauth"
)

// MaxImportBody bounds POST /api/memories/import.
const MaxImportBody = 32 << 20

// routeTransfer adds the owner's export and import:
//
//	GET  /api/memories/export  (memories:read)  -> application/x-ndjson
//	POST /api/memories/import  (memories:write) <- application/x-ndjson
//
// They are REST endpoints rather than tools because a whole account does
// not fit a tool call's result or body; the line format is documented in
// plugins/memories/transfer.go and README "Export and import".
func routeTransfer(e *core.ServeEvent, cfg Config) {
	e.Router.GET("/api/memories/export", func(re *core.RequestEvent) error {
		claims := oauth.ClaimsFrom(re)
		if !claims.HasScope(oauth.ScopeRead) {
			return cfg.OAuth.WriteInsufficientScope(re, oauth.ScopeRead)
		}
		h := re.Response.Header()
		h.Set("Content-Type", "application/x-ndjson; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="picard-memories.jsonl"`)
		h.Set("Cache-Control", "no-store")
		re.Response.WriteHeader(http.StatusOK)
		// once streaming has begun a failure can only cut the stream short;
		// the trailer-less cut shows as a truncated last line
		var exported func(ids []string)
		if cfg.Access != nil {
			c := Caller{UserID: claims.Subject, Claims: claims}
			exported = func(ids []string) {
				entries := make([]audit.Entry, len(ids))
				for i, id := range ids {
					entries[i] = entry(c, audit.ActionExport, id, claims.Subject)
				}
				cfg.Access.Record(entries...)
			}
		}
		_, err := cfg.Memories.ExportOwnerReporting(re.Request.Context(), claims.Subject, re.Response, exported)
		return err
	}).BindFunc(cfg.OAuth.RequireBearer())
	e.Router.POST("/api/memories/import", func(re *core.RequestEvent) error {
		claims := oauth.ClaimsFrom(re)
		if !claims.HasScope(oauth.ScopeWrite) {
			return cfg.OAuth.WriteInsufficientScope(re, oauth.ScopeWrite)
		}
		if re.Request.ContentLength > MaxImportBody {
			return re.JSON(http.StatusRequestEntityTooLarge, ErrorBody{Error: "invalid_argument", Message: "the import is larger than 32 MB; split it"})
		}
		body := http.MaxBytesReader(re.Response, re.Request.Body, MaxImportBody)
		res, err := cfg.Memories.ImportOwner(re.Request.Context(), claims.Subject, io.Reader(body))
		if err != nil {
			return writeError(re, err)
		}
		if cfg.Access != nil && len(res.Written) > 0 {
			c := Caller{UserID: claims.Subject, Claims: claims}
			entries := make([]audit.Entry, len(res.Written))
			for i, w := range res.Written {
				entries[i] = entry(c, audit.ActionImport, w.ID, w.OwnerID)
			}
			cfg.Access.Record(entries...)
		}
		return re.JSON(http.StatusOK, res)
	}).BindFunc(cfg.OAuth.RequireBearer())
}

// transferPaths documents routeTransfer in the OpenAPI document.
func transferPaths() obj {
	sec := func(scope string) []any { return []any{obj{"bearer": []string{}}, obj{"oauth2": []string{scope}}} }
	errResp := func(desc string) obj {
		return obj{"description": desc, "content": obj{"application/json": obj{"schema": obj{"$ref": "#/components/schemas/Error"}}}}
	}
	line := obj{"type": "object", "description": "one memory: {kind: \"memory\"} plus the Memory fields"}
	return obj{
		"/api/memories/export": obj{"get": obj{
			"summary":     "Export your memories (JSON Lines)",
			"description": "Every unexpired memory you own, decrypted, oldest first, one JSON object a line: kind \"memory\", id, text, permission, shared_with, shared_with_groups, owner_id, expiration_date, created, updated.",
			"operationId": "exportMemories", "security": sec(oauth.ScopeRead),
			"responses": obj{
				"200": obj{"description": "the memories", "content": obj{"application/x-ndjson": obj{"schema": line}}},
				"401": errResp("missing or invalid token"),
				"403": errResp("the token lacks memories:read"),
			},
		}},
		"/api/memories/import": obj{"post": obj{
			"summary":     "Import memories (JSON Lines, as exported)",
			"description": "All or nothing: a bad line fails the whole import with an error naming the line. Idempotent by id: identical memories are left alone, changed ones updated, an id owned by another user is refused. owner_id in the file is ignored: the memories become yours. Imported memories are re-encrypted and indexed for search in the background. At most 32 MB and 100,000 lines.",
			"operationId": "importMemories", "security": sec(oauth.ScopeWrite),
			"requestBody": obj{"required": true, "content": obj{"application/x-ndjson": obj{"schema": line}}},
			"responses": obj{
				"200": obj{"description": "what changed", "content": obj{"application/json": obj{"schema": obj{"type": "object", "properties": obj{
					"created": obj{"type": "integer"}, "updated": obj{"type": "integer"}, "unchanged": obj{"type": "integer"}, "skipped_expired": obj{"type": "integer"},
				}}}}},
				"400": errResp("a bad line (field \"line N\"); nothing was imported"),
				"401": errResp("missing or invalid token"),
				"403": errResp("the token lacks memories:write"),
				"413": errResp("larger than 32 MB"),
			},
		}},
	}
}
