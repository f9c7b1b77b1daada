package main

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"golang.org/x/oauth2"
)

type connectData struct {
	Connected, NeedsReconnect bool
	Method, PicardUserID      string
}

func (a *App) connectPage(w http.ResponseWriter, r *http.Request) {
	a.renderConnect(w, r, http.StatusOK, "")
}

func (a *App) renderConnect(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d := connectData{}
	c, err := a.store.Connection(r.Context(), userFrom(r).ID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		a.serverError(w, r, err)
		return
	default:
		d = connectData{Connected: !c.NeedsReconnect, NeedsReconnect: c.NeedsReconnect, Method: c.Method, PicardUserID: c.PicardUserID}
	}
	a.render(w, r, status, "connect.html", &templateData{Title: "Connect to Picard", Connected: d.Connected, Message: msg, Data: d})
}

// connectDirect is the direct connect flow: Picard issues tokens to this
// confidential client for the signed-in person.
func (a *App) connectDirect(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	ts, err := a.picard.DirectConnect(r.Context(), u.Username, directConnectEmail(u))
	if err != nil {
		var ue *UnreachableError
		if errors.As(err, &ue) || errors.Is(err, ErrNoClient) {
			a.picardError(w, r, err)
			return
		}
		a.log.Warn("direct connect refused", "error", err)
		a.renderConnect(w, r, http.StatusBadGateway, "Picard refused to connect this account: the username may already belong to a Picard account. If it is yours, use Sign in with Picard.")
		return
	}
	c := &Connection{UserID: u.ID, PicardUserID: ts.UserID, Method: "direct", AccessToken: ts.AccessToken, RefreshToken: ts.RefreshToken,
		Expiry: time.Now().Add(time.Duration(ts.ExpiresIn) * time.Second)}
	if c.PicardUserID == "" {
		c.PicardUserID = subject(ts.AccessToken)
	}
	if err := a.store.SaveConnection(r.Context(), c); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(r, "Connected to Picard.")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// directConnectEmail is the email this app gives Picard for a person.
// Picard binds direct connect to an existing verified account by email,
// and this app does not verify emails: sending the address typed at sign-up
// would let anyone who types a victim's email receive the victim's Picard
// account. An address unique to this app's person (never deliverable)
// makes Picard create, and later find, only the account this app made for
// them. People with an existing Picard account use Sign in with Picard.
func directConnectEmail(u *User) string {
	return u.ID + "@clientapp.invalid"
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// connectOAuth starts the authorization-code flow with PKCE (S256) and state.
func (a *App) connectOAuth(w http.ResponseWriter, r *http.Request) {
	conf, err := a.picard.OAuth(r.Context())
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	state, verifier := randomString(), oauth2.GenerateVerifier()
	a.sessions.Put(r.Context(), "oauth_state", state)
	a.sessions.Put(r.Context(), "oauth_verifier", verifier)
	http.Redirect(w, r, conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)), http.StatusSeeOther)
}

func (a *App) oauthCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := a.sessions.PopString(r.Context(), "oauth_state")
	verifier := a.sessions.PopString(r.Context(), "oauth_verifier")
	if e := q.Get("error"); e != "" {
		msg := "Picard did not connect your account (" + e + ")."
		if e == "access_denied" {
			msg = "You declined the connection at Picard. Nothing was connected."
		}
		a.renderConnect(w, r, http.StatusBadRequest, msg)
		return
	}
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(q.Get("state"))) != 1 {
		a.renderConnect(w, r, http.StatusBadRequest, "This sign-in answer does not match a sign-in started here (bad or stale state). Please start again.")
		return
	}
	tok, err := a.picard.Exchange(r.Context(), q.Get("code"), verifier)
	if errors.Is(err, ErrReconnect) {
		a.renderConnect(w, r, http.StatusBadRequest, "Picard refused the sign-in code. Please start again.")
		return
	}
	if err != nil {
		a.picardError(w, r, err)
		return
	}
	c := &Connection{UserID: userFrom(r).ID, PicardUserID: subject(tok.AccessToken), Method: "oauth",
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry}
	if c.Expiry.IsZero() {
		c.Expiry = time.Now().Add(time.Hour)
	}
	if err := a.store.SaveConnection(r.Context(), c); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(r, "Connected to Picard.")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// disconnect revokes the refresh token at Picard and forgets the tokens.
func (a *App) disconnect(w http.ResponseWriter, r *http.Request) {
	u := userFrom(r)
	c, err := a.store.Connection(r.Context(), u.ID)
	if err == nil && c.RefreshToken != "" {
		if rerr := a.picard.Revoke(r.Context(), c.RefreshToken); rerr != nil {
			a.log.Warn("revoke at Picard failed; forgetting the tokens anyway", "error", rerr)
		}
	} else if !errors.Is(err, ErrNotFound) {
		a.serverError(w, r, err)
		return
	}
	if err := a.store.DeleteConnection(r.Context(), u.ID); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.flash(r, "Disconnected from Picard.")
	http.Redirect(w, r, "/connect", http.StatusSeeOther)
}
