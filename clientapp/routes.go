package main

import (
	"io/fs"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
)

// Routes is every route of the web client, in one place.
func (a *App) Routes() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, a.secureHeaders)

	static, _ := fs.Sub(staticFS, "static")
	r.Handle("/static/*", http.StripPrefix("/static/", http.FileServerFS(static)))
	r.Get("/healthz", a.healthz)
	r.Get("/readyz", a.readyz)

	r.Group(func(r chi.Router) {
		r.Use(a.sessions.LoadAndSave, a.crossOrigin, a.loadUser)
		r.NotFound(a.notFound)

		r.Get("/signup", a.signupForm)
		r.Get("/register", http.RedirectHandler("/signup", http.StatusMovedPermanently).ServeHTTP) // the seed's path
		r.Post("/signup", a.signup)
		r.Get("/login", a.loginForm)
		r.Post("/login", a.login)
		r.Get("/logout", a.logoutForm)
		r.Post("/logout", a.logout)

		r.Group(func(r chi.Router) {
			r.Use(requireUser, mcpSessions)
			r.Get("/", a.dashboard)

			r.Get("/connect", a.connectPage)
			r.Post("/connect/direct", a.connectDirect)
			r.Post("/connect/oauth", a.connectOAuth)
			r.Get("/oauth/callback", a.oauthCallback)
			r.Post("/connect/disconnect", a.disconnect)

			r.Get("/memories", a.memoriesList)
			r.Post("/memories/bulk", a.memoriesBulk)
			r.Post("/memories/bulk/confirm", a.memoriesBulkConfirm)
			r.Get("/memories/new", a.memoryNewForm)
			r.Post("/memories/new", a.memoryCreate)
			r.Get("/memories/{id}", a.memoryShow)
			r.Get("/memories/{id}/edit", a.memoryEditForm)
			r.Post("/memories/{id}/edit", a.memoryUpdate)
			r.Get("/memories/{id}/delete", a.memoryDeleteConfirm)
			r.Post("/memories/{id}/delete", a.memoryDelete)

			r.Get("/search", a.search)
			r.Get("/personas", a.personasForm)
			r.Post("/personas", a.personasAsk)

			r.Get("/account", a.account)
			r.Post("/account/password", a.accountPassword)
			r.Get("/account/export", a.accountExport)
			r.Post("/account/import", a.accountImport)
			r.Post("/account/delete", a.accountDeleteConfirm)
			r.Post("/account/delete/confirm", a.accountDelete)
		})
	})
	return r
}
