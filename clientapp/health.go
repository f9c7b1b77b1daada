package main

import (
	"context"
	"net/http"
	"time"
)

// healthz: the process answers.
func (a *App) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

// readyz: the database answers. Picard's state is reported but does not
// make the client unready (pages show "Picard is unreachable" instead).
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	if err := a.db.PingContext(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"unavailable","database":"down"}`))
		return
	}
	picard := "up"
	if err := a.picard.Ping(ctx); err != nil {
		picard = "unreachable"
	}
	_, _ = w.Write([]byte(`{"status":"ready","database":"up","picard":"` + picard + `"}`))
}
