package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
)

type userKey struct{}

func userFrom(r *http.Request) *User {
	u, _ := r.Context().Value(userKey{}).(*User)
	return u
}

// secureHeaders sets the headers every page carries. form-action allows
// Picard's origin: "Sign in with Picard" redirects there.
func (a *App) secureHeaders(next http.Handler) http.Handler {
	picard := a.cfg.PicardPublicURL
	if u, err := url.Parse(picard); err == nil {
		picard = u.Scheme + "://" + u.Host
	}
	csp := "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self' " + picard + "; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "deny")
		next.ServeHTTP(w, r)
	})
}

// crossOrigin refuses cross-origin unsafe requests (403) with the standard
// library's Fetch-metadata based protection.
func (a *App) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	if u, err := url.Parse(a.cfg.PublicURL); err == nil {
		_ = cop.AddTrustedOrigin(u.Scheme + "://" + u.Host)
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.render(w, r, http.StatusForbidden, "error.html", &templateData{Title: "Refused", Message: "This form was sent from another site, so it was refused."})
	}))
	return cop.Handler(next)
}

// loadUser puts the signed-in person (if any) into the request context.
func (a *App) loadUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := a.sessions.GetString(r.Context(), "user_id")
		if id == "" {
			next.ServeHTTP(w, r)
			return
		}
		u, err := a.store.UserByID(r.Context(), id)
		if err != nil {
			_ = a.sessions.Destroy(r.Context())
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	})
}

// mcpSessions lets the Picard calls of one request share an MCP session.
func mcpSessions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, done := WithSessions(r.Context())
		defer done()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requireUser sends anonymous visitors to /login.
func requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if userFrom(r) == nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// clientAddr is the peer address (no proxy headers trusted).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
