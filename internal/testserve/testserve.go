// Package testserve serves a PocketBase test app on a real listener: it
// fires the app's serve hooks (so plugins add their routes) and starts an
// httptest server on ln. Both the full-Picard harness (internal/picardtest)
// and plugin tests use it.
package testserve

import (
	"net"
	"net/http/httptest"
	"testing"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
)

// Serve starts app on ln until the test ends, then cleans the app up.
func Serve(t testing.TB, app *tests.TestApp, ln net.Listener) *httptest.Server {
	t.Helper()
	router, err := apis.NewRouter(app)
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	err = app.OnServe().Trigger(&core.ServeEvent{App: app, Router: router}, func(e *core.ServeEvent) error {
		mux, err := e.Router.BuildMux()
		if err != nil {
			return err
		}
		srv = httptest.NewUnstartedServer(mux)
		srv.Listener.Close()
		srv.Listener = ln
		srv.Start()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		app.Cleanup()
	})
	return srv
}
