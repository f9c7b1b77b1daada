package platform

import (
	"net/http/pprof"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
)

// routeDebug serves Go's pprof profiles under /api/debug/pprof/ to
// superusers only (PocketBase superuser auth token; anyone else gets 401 or
// 403). A CPU profile: GET /api/debug/pprof/profile?seconds=N; allocations
// over a window: GET /api/debug/pprof/allocs?seconds=N. See DEBUGGING.md.
func routeDebug(e *core.ServeEvent) {
	g := e.Router.Group("/api/debug/pprof")
	g.Bind(apis.RequireSuperuserAuth())
	g.GET("/{name...}", func(e *core.RequestEvent) error {
		w, r := e.Response, e.Request
		switch name := e.Request.PathValue("name"); name {
		case "":
			pprof.Index(w, r)
		case "profile":
			pprof.Profile(w, r)
		case "trace":
			pprof.Trace(w, r)
		case "symbol":
			pprof.Symbol(w, r)
		case "cmdline":
			pprof.Cmdline(w, r)
		default:
			pprof.Handler(name).ServeHTTP(w, r)
		}
		return nil
	})
}
