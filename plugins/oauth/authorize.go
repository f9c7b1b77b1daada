package oauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/pb_migrations"
)

// codeTTL is how long an authorization code lives.
const codeTTL = 5 * time.Minute

// authzParams are the request parameters carried from page to page.
var authzParams = []string{
	"client_id", "redirect_uri", "response_type", "scope", "state",
	"code_challenge", "code_challenge_method", "resource", "prompt",
}

var challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

// authzRequest is a validated authorization request.
type authzRequest struct {
	vals        url.Values
	client      *core.Record
	redirectURI string
	state       string
	scopes      []string
	challenge   string
	resource    string
	prompt      string
}

// authzError is a refused request: with page set, an error page is shown
// (the redirect URI is not trusted); otherwise the error is sent back to
// the client's redirect URI.
type authzError struct {
	page       string
	code, desc string
}

// parseAuthz validates an authorization request. Until client_id and
// redirect_uri are proven, failures are pages; after, redirects.
func (s *Server) parseAuthz(ctx context.Context, vals url.Values) (*authzRequest, *authzError) {
	req := &authzRequest{vals: url.Values{}}
	for _, k := range authzParams {
		if v, ok := vals[k]; ok {
			req.vals[k] = v
		}
	}
	if len(vals["client_id"]) != 1 || vals.Get("client_id") == "" {
		return nil, &authzError{page: "The request does not name an app (client_id is missing or repeated)."}
	}
	client, err := s.findClient(ctx, vals.Get("client_id"), true)
	if err != nil {
		msg := "The app that sent you here is not registered with Picard, or it was disabled."
		var ce *cimdError
		if errors.As(err, &ce) {
			msg = "The app's client metadata document could not be used: " + ce.Error() + "."
		}
		return nil, &authzError{page: msg}
	}
	req.client = client
	if len(vals["redirect_uri"]) != 1 || vals.Get("redirect_uri") == "" {
		return nil, &authzError{page: "The request has no redirect_uri (or more than one)."}
	}
	req.redirectURI = vals.Get("redirect_uri")
	if !matchRedirect(client, req.redirectURI) {
		return nil, &authzError{page: "The address this request wants to send you back to is not registered for this app."}
	}
	// from here on the redirect URI is trusted: errors go back to it
	req.state = vals.Get("state")
	for _, k := range authzParams {
		if len(vals[k]) > 1 {
			return req, &authzError{code: "invalid_request", desc: k + " must not be repeated"}
		}
	}
	if rt := vals.Get("response_type"); rt != "code" {
		if rt == "" {
			return req, &authzError{code: "invalid_request", desc: "response_type is required"}
		}
		return req, &authzError{code: "unsupported_response_type", desc: "only response_type=code is supported"}
	}
	req.challenge = vals.Get("code_challenge")
	switch m := vals.Get("code_challenge_method"); {
	case req.challenge == "":
		return req, &authzError{code: "invalid_request", desc: "PKCE is required: send code_challenge with code_challenge_method=S256"}
	case m != "S256":
		return req, &authzError{code: "invalid_request", desc: "code_challenge_method must be S256 (plain is not accepted)"}
	case !challengeRE.MatchString(req.challenge):
		return req, &authzError{code: "invalid_request", desc: "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)"}
	}
	req.resource = s.cfg.Resource
	if r, ok := vals["resource"]; ok {
		if r[0] != s.cfg.Resource {
			return req, &authzError{code: "invalid_target", desc: "the only resource served here is " + s.cfg.Resource}
		}
	}
	scopes, terr := s.requestedScopes(client, vals.Get("scope"))
	if terr != nil {
		return req, &authzError{code: terr.Code, desc: terr.Description}
	}
	req.scopes = scopes
	req.prompt = vals.Get("prompt")
	for _, p := range strings.Fields(req.prompt) {
		if p != "none" && p != "login" && p != "consent" {
			return req, &authzError{code: "invalid_request", desc: "prompt " + p + " is not supported"}
		}
	}
	return req, nil
}

// requestedScopes checks a scope parameter against the client's scopes; an
// absent scope means every scope the client was registered with.
func (s *Server) requestedScopes(client *core.Record, scope string) ([]string, *TokenError) {
	allowed := clientScopes(client)
	if len(allowed) == 0 {
		allowed = SupportedScopes
	}
	req := strings.Fields(scope)
	if len(req) == 0 {
		req = allowed
	}
	out := []string{}
	for _, sc := range req {
		if !slices.Contains(SupportedScopes, sc) {
			return nil, tokenErr(400, "invalid_scope", "unknown scope "+sc+"; supported: "+strings.Join(SupportedScopes, " "))
		}
		if !slices.Contains(allowed, sc) {
			return nil, tokenErr(400, "invalid_scope", "scope "+sc+" is not allowed for this client")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	sort.Strings(out)
	return out, nil
}

func hasPrompt(req *authzRequest, p string) bool {
	return slices.Contains(strings.Fields(req.prompt), p)
}

// fail answers a refused request: an error page, or a redirect back.
func (s *Server) fail(e *core.RequestEvent, req *authzRequest, ae *authzError) error {
	if ae.page != "" || req == nil {
		return s.errorPage(e, http.StatusBadRequest, ae.page)
	}
	return s.redirectBack(e, req, url.Values{"error": {ae.code}, "error_description": {ae.desc}})
}

// redirectBack sends the browser to the client's redirect URI with params,
// state and iss (RFC 9207).
func (s *Server) redirectBack(e *core.RequestEvent, req *authzRequest, params url.Values) error {
	u, err := url.Parse(req.redirectURI)
	if err != nil {
		return s.errorPage(e, http.StatusBadRequest, "The redirect address is malformed.")
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if req.state != "" {
		q.Set("state", req.state)
	}
	q.Set("iss", s.cfg.Issuer)
	u.RawQuery = q.Encode()
	e.Response.Header().Set("Cache-Control", "no-store")
	e.Response.Header().Set("Referrer-Policy", "no-referrer")
	status := http.StatusFound
	if e.Request.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	return e.Redirect(status, u.String())
}

// continueURL is the GET /authorize that carries on after a form post,
// relative so that it works behind a proxy with a path prefix.
func continueURL(req *authzRequest, screen string) string {
	q := url.Values{}
	for k, v := range req.vals {
		if k == "prompt" {
			if !slices.Contains(strings.Fields(v[0]), "consent") {
				continue // login is satisfied once signed in
			}
			v = []string{"consent"}
		}
		q[k] = v
	}
	if screen != "" {
		q.Set("screen", screen)
	}
	return "authorize?" + q.Encode()
}

func (s *Server) basePage(e *core.RequestEvent, req *authzRequest, screen, title string) page {
	p := page{
		Screen: screen, Title: title, Action: "authorize",
		CSRF:       s.csrfToken(s.browserID(e)),
		ClientName: req.client.GetString("name"),
		Unverified: req.client.GetString("source") != sourceAdmin && req.client.GetString("source") != "",
	}
	if u, err := url.Parse(req.redirectURI); err == nil {
		p.RedirectHost = u.Host
	}
	keys := make([]string, 0, len(req.vals))
	for k := range req.vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.Hidden = append(p.Hidden, hiddenField{k, req.vals.Get(k)})
	}
	return p
}

func (s *Server) showSignIn(e *core.RequestEvent, req *authzRequest, status int, msg, identifier string) error {
	p := s.basePage(e, req, "signin", "Sign in to Picard")
	p.Error, p.Identifier, p.SwitchURL = msg, identifier, continueURL(req, "signup")
	return s.render(e, status, p)
}

func (s *Server) showSignUp(e *core.RequestEvent, req *authzRequest, status int, msg, email, username string) error {
	p := s.basePage(e, req, "signup", "Create your Picard account")
	p.Error, p.Email, p.Username, p.SwitchURL = msg, email, username, continueURL(req, "")
	return s.render(e, status, p)
}

func (s *Server) showConsent(e *core.RequestEvent, req *authzRequest, user *core.Record) error {
	p := s.basePage(e, req, "consent", "Allow access to your memories?")
	p.UserName = user.GetString("username")
	for _, sc := range req.scopes {
		p.Scopes = append(p.Scopes, scopeInfo{sc, scopeDoc[sc]})
	}
	return s.render(e, http.StatusOK, p)
}

func (s *Server) handleAuthorizeGet(e *core.RequestEvent) error {
	req, ae := s.parseAuthz(withRequester(e.Request.Context(), e.RealIP()), e.Request.URL.Query())
	if ae != nil {
		return s.fail(e, req, ae)
	}
	s.browserID(e)
	user := s.sessionUser(e)
	if user != nil && hasPrompt(req, "login") {
		user = nil
	}
	if user == nil {
		if hasPrompt(req, "none") {
			return s.redirectBack(e, req, url.Values{"error": {"login_required"}, "error_description": {"the user is not signed in"}})
		}
		if e.Request.URL.Query().Get("screen") == "signup" {
			return s.showSignUp(e, req, http.StatusOK, "", "", "")
		}
		return s.showSignIn(e, req, http.StatusOK, "", "")
	}
	return s.afterSignIn(e, req, user)
}

// afterSignIn issues a code at once when the user already agreed to these
// scopes for this client, and asks otherwise.
func (s *Server) afterSignIn(e *core.RequestEvent, req *authzRequest, user *core.Record) error {
	if !hasPrompt(req, "consent") && s.hasConsent(user.Id, req.client.Id, req.scopes) {
		return s.issueCode(e, req, user)
	}
	if hasPrompt(req, "none") {
		return s.redirectBack(e, req, url.Values{"error": {"consent_required"}, "error_description": {"the user has not agreed to these scopes"}})
	}
	return s.showConsent(e, req, user)
}

func (s *Server) handleAuthorizePost(e *core.RequestEvent) error {
	e.Request.Body = http.MaxBytesReader(e.Response, e.Request.Body, maxBody)
	if err := e.Request.ParseForm(); err != nil {
		return s.errorPage(e, http.StatusBadRequest, "The form could not be read.")
	}
	form := e.Request.PostForm
	if !s.checkCSRF(e, form.Get("csrf_token")) {
		return s.errorPage(e, http.StatusForbidden, "This form has expired or was not sent from Picard's own page.")
	}
	req, ae := s.parseAuthz(withRequester(e.Request.Context(), e.RealIP()), form)
	if ae != nil {
		return s.fail(e, req, ae)
	}
	switch form.Get("action") {
	case "signin":
		return s.postSignIn(e, req, form)
	case "signup":
		return s.postSignUp(e, req, form)
	case "consent":
		user := s.sessionUser(e)
		if user == nil {
			return s.showSignIn(e, req, http.StatusUnauthorized, "Your sign-in has expired. Please sign in again.", "")
		}
		if form.Get("decision") != "allow" {
			return s.redirectBack(e, req, url.Values{"error": {"access_denied"}, "error_description": {"the user denied the request"}})
		}
		if err := s.saveConsent(user.Id, req.client.Id, req.scopes); err != nil {
			slog.Error("oauth: save consent", "error", err)
			return s.errorPage(e, http.StatusInternalServerError, "Something went wrong on our side.")
		}
		return s.issueCode(e, req, user)
	case "signout":
		if tok := s.cookie(e, "picard_session"); tok != "" {
			s.endSession(tok)
		}
		s.setCookie(e, "picard_session", "", -1)
		return e.Redirect(http.StatusSeeOther, continueURL(req, ""))
	default:
		return s.errorPage(e, http.StatusBadRequest, "Unknown form action.")
	}
}

// dummyPassword makes a failed lookup cost as much as a wrong password.
var dummyPassword = sync.OnceValue(func() *core.Record {
	r := core.NewRecord(core.NewAuthCollection("dummy"))
	r.SetPassword("not a real password, only for timing")
	return r
})

func (s *Server) findUser(identifier string) *core.Record {
	if identifier == "" || len(identifier) > 254 {
		return nil
	}
	field := "username"
	if strings.Contains(identifier, "@") {
		field = "email"
	}
	// both are unique without regard to case
	u := &core.Record{}
	err := s.app.RecordQuery(pb_migrations.Users).
		AndWhere(dbx.NewExp("[["+field+"]] = {:v} COLLATE NOCASE", dbx.Params{"v": identifier})).
		Limit(1).One(u)
	if err != nil {
		return nil
	}
	return u
}

const (
	msgWrongCredentials = "Wrong email/username or password."
	msgThrottled        = "Too many failed sign-ins. Wait 15 minutes, then try again."
)

func (s *Server) postSignIn(e *core.RequestEvent, req *authzRequest, form url.Values) error {
	ident := strings.TrimSpace(form.Get("identifier"))
	pw := form.Get("password")
	now, ip := s.now(), e.RealIP()
	user := s.findUser(ident)
	acct := "name:" + strings.ToLower(ident)
	if user != nil {
		acct = "user:" + user.Id
	}
	// One client guessing at one account is stopped after a few tries; the
	// account-wide bucket is much larger, so nobody can lock a user out
	// with a handful of wrong passwords, yet distributed guessing stays
	// bounded.
	acctIP := acct + "|" + ip
	if s.signInFailsByIP.Blocked(ip, now) || s.signInFailsByAccountIP.Blocked(acctIP, now) || s.signInFailsByAccount.Blocked(acct, now) {
		return s.showSignIn(e, req, http.StatusTooManyRequests, msgThrottled, ident)
	}
	ok := false
	if user != nil {
		ok = user.ValidatePassword(pw)
	} else {
		dummyPassword().ValidatePassword(pw)
	}
	if !ok {
		s.signInFailsByIP.Add(ip, now)
		s.signInFailsByAccountIP.Add(acctIP, now)
		s.signInFailsByAccount.Add(acct, now)
		slog.Info("oauth: failed sign-in", "ip", ip)
		return s.showSignIn(e, req, http.StatusUnauthorized, msgWrongCredentials, ident)
	}
	s.signInFailsByAccountIP.Reset(acctIP)
	if userDisabled(user) {
		return s.showSignIn(e, req, http.StatusForbidden, "This account is deactivated. Ask an administrator.", ident)
	}
	if err := s.startSession(e, user); err != nil {
		slog.Error("oauth: start session", "error", err)
		return s.errorPage(e, http.StatusInternalServerError, "Something went wrong on our side.")
	}
	return e.Redirect(http.StatusSeeOther, continueURL(req, ""))
}

func (s *Server) postSignUp(e *core.RequestEvent, req *authzRequest, form url.Values) error {
	email := strings.TrimSpace(form.Get("email"))
	username := strings.TrimSpace(form.Get("username"))
	pw := form.Get("password")
	again := func(status int, msg string) error { return s.showSignUp(e, req, status, msg, email, username) }
	if addr, err := mail.ParseAddress(email); err != nil || addr.Address != email || len(email) > 254 {
		return again(http.StatusBadRequest, "Enter a valid email address.")
	}
	if !usernameRE.MatchString(username) {
		return again(http.StatusBadRequest, "The username must be 3 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit.")
	}
	if utf8.RuneCountInString(pw) < 10 || len(pw) > 71 {
		return again(http.StatusBadRequest, "The password must be at least 10 characters (and at most 71 bytes).")
	}
	if !s.signUps.Take(e.RealIP(), s.now()) {
		return again(http.StatusTooManyRequests, "Too many accounts were created from your network. Try again later.")
	}
	if s.findUser(email) != nil || s.findUser(username) != nil {
		return again(http.StatusConflict, "That email or username is already in use. Sign in instead, or choose another.")
	}
	col, err := s.app.FindCachedCollectionByNameOrId(pb_migrations.Users)
	if err != nil {
		return s.errorPage(e, http.StatusInternalServerError, "Something went wrong on our side.")
	}
	user := core.NewRecord(col)
	user.SetEmail(email)
	user.Set("username", username)
	user.SetPassword(pw)
	if err := s.app.Save(user); err != nil {
		slog.Info("oauth: sign-up refused", "error", err)
		return again(http.StatusConflict, "That email or username is already in use. Sign in instead, or choose another.")
	}
	if err := s.startSession(e, user); err != nil {
		slog.Error("oauth: start session", "error", err)
		return s.errorPage(e, http.StatusInternalServerError, "Something went wrong on our side.")
	}
	return e.Redirect(http.StatusSeeOther, continueURL(req, ""))
}

// hasConsent reports whether the user already agreed to every scope for
// this client.
func (s *Server) hasConsent(userID, clientID string, scopes []string) bool {
	rec, err := s.app.FindFirstRecordByFilter(pb_migrations.OAuthConsents, "user = {:u} && client = {:c}",
		dbx.Params{"u": userID, "c": clientID})
	if err != nil {
		return false
	}
	have := strings.Fields(rec.GetString("scope"))
	for _, sc := range scopes {
		if !slices.Contains(have, sc) {
			return false
		}
	}
	return true
}

// saveConsent remembers the scopes (added to any agreed before).
func (s *Server) saveConsent(userID, clientID string, scopes []string) error {
	rec, err := s.app.FindFirstRecordByFilter(pb_migrations.OAuthConsents, "user = {:u} && client = {:c}",
		dbx.Params{"u": userID, "c": clientID})
	if err != nil {
		col, cerr := s.app.FindCachedCollectionByNameOrId(pb_migrations.OAuthConsents)
		if cerr != nil {
			return fmt.Errorf("oauth: consents collection: %w", cerr)
		}
		rec = core.NewRecord(col)
		rec.Set("user", userID)
		rec.Set("client", clientID)
	}
	all := strings.Fields(rec.GetString("scope"))
	for _, sc := range scopes {
		if !slices.Contains(all, sc) {
			all = append(all, sc)
		}
	}
	sort.Strings(all)
	rec.Set("scope", strings.Join(all, " "))
	if err := s.app.Save(rec); err != nil {
		return fmt.Errorf("oauth: save consent: %w", err)
	}
	return nil
}

// issueCode stores a single-use code bound to the client, redirect URI,
// PKCE challenge, resource and scopes, and sends it back.
func (s *Server) issueCode(e *core.RequestEvent, req *authzRequest, user *core.Record) error {
	code, err := randomToken()
	if err != nil {
		return s.errorPage(e, http.StatusInternalServerError, "Something went wrong on our side.")
	}
	col, err := s.app.FindCachedCollectionByNameOrId(pb_migrations.OAuthCodes)
	if err != nil {
		return s.errorPage(e, http.StatusInternalServerError, "Something went wrong on our side.")
	}
	rec := core.NewRecord(col)
	rec.Set("code_hash", hashToken(code))
	rec.Set("client", req.client.Id)
	rec.Set("user", user.Id)
	rec.Set("redirect_uri", req.redirectURI)
	rec.Set("scope", strings.Join(req.scopes, " "))
	rec.Set("code_challenge", req.challenge)
	rec.Set("resource", req.resource)
	rec.Set("expires", s.now().Add(codeTTL))
	if err := s.app.Save(rec); err != nil {
		slog.Error("oauth: save code", "error", err)
		return s.errorPage(e, http.StatusInternalServerError, "Something went wrong on our side.")
	}
	return s.redirectBack(e, req, url.Values{"code": {code}})
}
