package main

import (
	"errors"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
)

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$`)

type signupForm struct {
	Username, Email string
}

func (a *App) signupForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "signup.html", &templateData{Title: "Sign up", Form: signupForm{}})
}

func (a *App) signup(w http.ResponseWriter, r *http.Request) {
	f := signupForm{Username: strings.TrimSpace(r.PostFormValue("username")), Email: strings.TrimSpace(r.PostFormValue("email"))}
	pw := r.PostFormValue("password")
	errs := map[string]string{}
	if !usernamePattern.MatchString(f.Username) {
		errs["username"] = "3 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit."
	}
	if _, err := mail.ParseAddress(f.Email); err != nil || !strings.Contains(f.Email, "@") || len(f.Email) > 254 {
		errs["email"] = "Enter an email address like name@example.com."
	}
	if len(pw) < 8 || len(pw) > 256 {
		errs["password"] = "Use 8 to 256 characters."
	}
	if len(errs) > 0 {
		a.render(w, r, http.StatusUnprocessableEntity, "signup.html", &templateData{Title: "Sign up", Form: f, Errors: errs})
		return
	}
	hash, err := HashPassword(pw)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	u, err := a.store.CreateUser(r.Context(), f.Username, f.Email, hash)
	if errors.Is(err, ErrDuplicate) {
		errs["username"] = "This username or email is already taken."
		a.render(w, r, http.StatusUnprocessableEntity, "signup.html", &templateData{Title: "Sign up", Form: f, Errors: errs})
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	if err := a.sessions.RenewToken(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.sessions.Put(r.Context(), "user_id", u.ID)
	a.flash(r, "Welcome, "+u.Username+". Connect to Picard to start.")
	http.Redirect(w, r, "/connect", http.StatusSeeOther)
}

type loginForm struct{ Username string }

func (a *App) loginForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "login.html", &templateData{Title: "Sign in", Form: loginForm{}})
}

func (a *App) login(w http.ResponseWriter, r *http.Request) {
	f := loginForm{Username: strings.TrimSpace(r.PostFormValue("username"))}
	account, addr := strings.ToLower(f.Username), clientAddr(r)
	if a.limiter.Blocked(account, addr) {
		a.render(w, r, http.StatusTooManyRequests, "login.html", &templateData{Title: "Sign in", Form: f,
			Errors: map[string]string{"password": "Too many failed attempts. Wait 15 minutes and try again."}})
		return
	}
	u, err := a.store.UserByUsername(r.Context(), f.Username)
	hash := ""
	if err == nil {
		hash = u.PasswordHash
	} else if !errors.Is(err, ErrNotFound) {
		a.serverError(w, r, err)
		return
	}
	if !CheckPassword(r.PostFormValue("password"), hash) {
		a.limiter.Fail(account, addr)
		a.render(w, r, http.StatusUnauthorized, "login.html", &templateData{Title: "Sign in", Form: f,
			Errors: map[string]string{"password": "Wrong username or password."}})
		return
	}
	a.limiter.Succeed(account)
	if err := a.sessions.RenewToken(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.sessions.Put(r.Context(), "user_id", u.ID)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *App) logoutForm(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "logout.html", &templateData{Title: "Sign out"})
}

func (a *App) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.sessions.Destroy(r.Context()); err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
