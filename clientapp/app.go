package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/v2"
)

// App is the web client: configuration, database, Picard and sessions.
type App struct {
	cfg      Config
	db       *DB
	store    *Store
	sessions *scs.SessionManager
	picard   *Picard
	tokens   *Tokens
	mcp      *MCP
	pages    *Pages
	limiter  *LoginLimiter
	log      *slog.Logger
}

// NewApp opens the database and wires everything.
func NewApp(ctx context.Context, cfg Config) (*App, error) {
	seal, err := LoadSealer(cfg)
	if err != nil {
		return nil, err
	}
	db, err := OpenDB(ctx, cfg)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, db: db, store: &Store{db: db, seal: seal}, limiter: NewLoginLimiter(), log: slog.Default()}
	a.picard = &Picard{URL: cfg.PicardURL, AuthURL: cfg.PicardPublicURL + "/authorize", Callback: cfg.CallbackURL(), Creds: a.credentials}
	a.tokens = &Tokens{store: a.store, picard: a.picard}
	a.mcp = &MCP{URL: cfg.PicardURL + "/mcp", Tokens: a.tokens}
	if a.pages, err = LoadPages(); err != nil {
		db.Close()
		return nil, err
	}
	a.sessions = scs.New()
	a.sessions.Store = db.SessionStore()
	a.sessions.Lifetime = 14 * 24 * time.Hour
	a.sessions.IdleTimeout = 3 * 24 * time.Hour
	a.sessions.Cookie.Name = "clientapp_session"
	a.sessions.Cookie.HttpOnly = true
	a.sessions.Cookie.SameSite = http.SameSiteLaxMode
	a.sessions.Cookie.Secure = cfg.Secure()
	return a, nil
}

// Close releases the database.
func (a *App) Close() error { return a.db.Close() }

// credentials are the env override or what `register` stored.
func (a *App) credentials(ctx context.Context) (Credentials, error) {
	if a.cfg.ClientID != "" {
		return Credentials{ID: a.cfg.ClientID, Secret: a.cfg.ClientSecret}, nil
	}
	id, err := a.store.Setting(ctx, "client_id", false)
	if err != nil {
		return Credentials{}, err
	}
	if id == "" {
		return Credentials{}, ErrNoClient
	}
	secret, err := a.store.Setting(ctx, "client_secret", true)
	if err != nil {
		return Credentials{}, fmt.Errorf("client secret: %w", err)
	}
	return Credentials{ID: id, Secret: secret}, nil
}

// picardError renders the page for a failed Picard call: reconnect,
// not connected, unreachable (503) or not found (404).
func (a *App) picardError(w http.ResponseWriter, r *http.Request, err error) {
	var te *ToolError
	var ue *UnreachableError
	switch {
	case errors.Is(err, ErrNotConnected), errors.Is(err, ErrReconnect):
		http.Redirect(w, r, "/connect", http.StatusSeeOther)
	case errors.As(err, &te) && te.NotFound():
		a.notFound(w, r)
	case errors.As(err, &te):
		a.render(w, r, http.StatusBadRequest, "error.html", &templateData{Title: "Picard refused", Message: te.Msg})
	case errors.As(err, &ue), errors.Is(err, context.DeadlineExceeded):
		a.log.Warn("picard unreachable", "path", r.URL.Path, "error", err)
		a.render(w, r, http.StatusServiceUnavailable, "error.html", &templateData{Title: "Picard is unreachable",
			Message: "Picard is unreachable right now. Your data is safe; try again in a moment."})
	case errors.Is(err, ErrNoClient):
		a.render(w, r, http.StatusServiceUnavailable, "error.html", &templateData{Title: "Not set up", Message: err.Error()})
	default:
		a.serverError(w, r, err)
	}
}

func (a *App) notFound(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusNotFound, "error.html", &templateData{Title: "Not found", Message: "There is nothing here, or it is not yours."})
}

func (a *App) serverError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	a.render(w, r, http.StatusInternalServerError, "error.html", &templateData{Title: "Something went wrong", Message: "Something went wrong on our side. It has been logged."})
}
