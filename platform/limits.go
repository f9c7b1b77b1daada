package platform

import (
	"strings"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
)

// MaxRequestBody bounds the body of every request to Picard's own routes
// (tools, MCP, OAuth, direct connect). The largest legitimate one, a
// memory of 10,000 characters in a JSON-RPC envelope, is far below it. A
// declared larger body is refused with 413 before any of it is read; an
// undeclared (chunked) one stops being read at the limit. PocketBase's own
// /api routes keep PocketBase's limits.
const MaxRequestBody = 1 << 20

// picardPath reports whether path is one of Picard's routes rather than
// PocketBase's own API.
func picardPath(path string) bool {
	if !strings.HasPrefix(path, "/api/") {
		return true
	}
	for _, p := range []string{"/api/tools", "/api/user-tokens/", "/api/admin/clients/", "/api/oauth/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func bodyLimit() *hook.Handler[*core.RequestEvent] {
	limit := apis.BodyLimit(MaxRequestBody)
	return &hook.Handler[*core.RequestEvent]{
		Id:       "picardBodyLimit",
		Priority: apis.DefaultBodyLimitMiddlewarePriority + 1,
		Func: func(e *core.RequestEvent) error {
			if picardPath(e.Request.URL.Path) {
				return limit.Func(e)
			}
			return e.Next()
		},
	}
}
