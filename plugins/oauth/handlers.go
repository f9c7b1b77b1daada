package oauth

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"

	"github.com/picard-mcp/picard/internal/strictjson"
	"github.com/picard-mcp/picard/pb_migrations"
)

const maxBody = 64 << 10

func (s *Server) routes(e *core.ServeEvent) {
	e.Router.GET("/.well-known/jwks.json", s.handleJWKS)
	e.Router.POST("/api/admin/clients/register", s.handleRegisterClient).Bind(apis.RequireSuperuserAuth())
	e.Router.POST("/api/user-tokens/user-token", s.handleUserToken)
	e.Router.POST("/token", s.handleToken)
	e.Router.GET("/.well-known/oauth-authorization-server", s.handleASMetadata)
	e.Router.GET("/.well-known/oauth-protected-resource", s.handlePRMetadata)
	e.Router.GET("/.well-known/oauth-protected-resource/mcp", s.handlePRMetadata)
	e.Router.GET("/authorize", s.handleAuthorizeGet)
	e.Router.POST("/authorize", s.handleAuthorizePost)
	e.Router.POST("/register", s.handleDynamicRegister)
	e.Router.POST("/revoke", s.handleRevoke)
	e.Router.POST("/introspect", s.handleIntrospect)
	apps := e.Router.Group("/api/oauth/apps")
	apps.Bind(&hook.Handler[*core.RequestEvent]{Func: s.RequireBearer()})
	apps.GET("", s.handleListApps)
	apps.DELETE("/{client_id}", s.handleRevokeApp)
}

func (s *Server) handleJWKS(e *core.RequestEvent) error {
	keys, err := s.JWKS()
	if err != nil {
		return e.InternalServerError("signing keys unavailable", err)
	}
	e.Response.Header().Set("Cache-Control", "public, max-age=300")
	return e.JSON(http.StatusOK, map[string]any{"keys": keys})
}

func readJSON(e *core.RequestEvent, v any) error {
	body, err := io.ReadAll(io.LimitReader(e.Request.Body, maxBody+1))
	if err != nil {
		return &strictjson.FieldError{Message: "cannot read the request body"}
	}
	if len(body) > maxBody {
		return &strictjson.FieldError{Message: "the request body is too large"}
	}
	return strictjson.Decode(body, v)
}

func badRequest(e *core.RequestEvent, err error) error {
	body := map[string]string{"error": "invalid_request", "error_description": err.Error()}
	var fe *strictjson.FieldError
	if errors.As(err, &fe) && fe.Field != "" {
		body["field"] = fe.Field
	}
	return e.JSON(http.StatusBadRequest, body)
}

func fieldErr(field, msg string) error { return &strictjson.FieldError{Field: field, Message: msg} }

type registerClientRequest struct {
	Name         string   `json:"name"`
	RedirectURIs []string `json:"redirect_uris"`
	Scopes       []string `json:"scopes"`
	Confidential bool     `json:"confidential"`
}

// ValidRedirectURI accepts https URIs and http on loopback hosts, with no
// fragment and no user info.
func ValidRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment")
	}
	if u.User != nil {
		return errors.New("must not contain user info")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if h == "localhost" || h == "127.0.0.1" || h == "::1" {
			return nil
		}
		return errors.New("http is allowed only for loopback hosts; use https")
	default:
		return errors.New("scheme must be https (or http on loopback)")
	}
}

func (s *Server) handleRegisterClient(e *core.RequestEvent) error {
	var req registerClientRequest
	if err := readJSON(e, &req); err != nil {
		return badRequest(e, err)
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 200 {
		return badRequest(e, fieldErr("name", "is required (at most 200 characters)"))
	}
	if len(req.RedirectURIs) > 20 {
		return badRequest(e, fieldErr("redirect_uris", "at most 20"))
	}
	for _, u := range req.RedirectURIs {
		if err := ValidRedirectURI(u); err != nil {
			return badRequest(e, fieldErr("redirect_uris", u+": "+err.Error()))
		}
	}
	if len(req.Scopes) == 0 {
		req.Scopes = SupportedScopes
	}
	for _, sc := range req.Scopes {
		if !slices.Contains(SupportedScopes, sc) {
			return badRequest(e, fieldErr("scopes", "unknown scope "+sc+"; supported: "+strings.Join(SupportedScopes, " ")))
		}
	}
	if !req.Confidential && len(req.RedirectURIs) == 0 {
		return badRequest(e, fieldErr("redirect_uris", "a public client needs at least one redirect URI"))
	}
	col, err := e.App.FindCachedCollectionByNameOrId(pb_migrations.OAuthClients)
	if err != nil {
		return e.InternalServerError("", err)
	}
	rec := core.NewRecord(col)
	rec.Set("name", req.Name)
	rec.Set("redirect_uris", nonNil(req.RedirectURIs))
	rec.Set("scopes", req.Scopes)
	rec.Set("confidential", req.Confidential)
	rec.Set("source", sourceAdmin)
	if req.Confidential {
		rec.Set("token_endpoint_auth_method", "client_secret_basic")
	} else {
		rec.Set("token_endpoint_auth_method", "none")
	}
	var secret string
	if req.Confidential {
		if secret, err = randomToken(); err != nil {
			return e.InternalServerError("", err)
		}
		rec.Set("secret_hash", hashToken(secret))
	}
	if err := e.App.Save(rec); err != nil {
		return e.InternalServerError("could not save the client", err)
	}
	resp := map[string]any{
		"client_id": rec.Id, "name": req.Name, "redirect_uris": nonNil(req.RedirectURIs),
		"scopes": req.Scopes, "confidential": req.Confidential,
	}
	if secret != "" {
		resp["client_secret"] = secret // shown once; only its hash is kept
	}
	return e.JSON(http.StatusCreated, resp)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// clientScopes returns the scopes a client was registered with.
func clientScopes(c *core.Record) []string {
	var scopes []string
	_ = c.UnmarshalJSONField("scopes", &scopes)
	return scopes
}

// checkClient finds an enabled client and checks its secret. Confidential
// clients must present the secret; public clients must not have one.
func (s *Server) checkClient(clientID, secret string) (*core.Record, *TokenError) {
	fail := tokenErr(http.StatusUnauthorized, "invalid_client", "client authentication failed")
	c, err := s.findClient(context.Background(), clientID, false)
	if err != nil {
		return nil, fail
	}
	if c.GetBool("confidential") {
		want := c.GetString("secret_hash")
		if secret == "" || subtle.ConstantTimeCompare([]byte(want), []byte(hashToken(secret))) != 1 {
			return nil, fail
		}
	}
	return c, nil
}

var (
	uuidRE     = regexp.MustCompile(pb_migrations.UUIDPattern)
	usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{2,63}$`)
)

type userTokenRequest struct {
	ClientID          string `json:"client_id"`
	ClientSecret      string `json:"client_secret"`
	Username          string `json:"username"`
	Email             string `json:"email"`
	CreateIfNotExists bool   `json:"create_if_not_exists"`
}

// handleUserToken is the direct-connect flow: a confidential client that
// already authenticated its user asks for tokens on the user's behalf.
func (s *Server) handleUserToken(e *core.RequestEvent) error {
	var req userTokenRequest
	if err := readJSON(e, &req); err != nil {
		return badRequest(e, err)
	}
	if req.ClientID == "" {
		return badRequest(e, fieldErr("client_id", "is required"))
	}
	if !uuidRE.MatchString(req.ClientID) {
		return badRequest(e, fieldErr("client_id", "must be a UUID"))
	}
	if req.ClientSecret == "" {
		return badRequest(e, fieldErr("client_secret", "is required"))
	}
	addr, err := mail.ParseAddress(req.Email)
	if err != nil || addr.Address != req.Email {
		return badRequest(e, fieldErr("email", "must be an email address"))
	}
	if req.Username != "" && !usernameRE.MatchString(req.Username) {
		return badRequest(e, fieldErr("username", "3-64 characters: letters, digits, _ . -; starting with a letter or digit"))
	}
	client, terr := s.checkClient(req.ClientID, req.ClientSecret)
	if terr != nil {
		return e.JSON(terr.Status, terr)
	}
	// Direct connect lets the client act for any user it names, with no
	// consent: only a confidential client an admin registered may use it,
	// never one that registered itself through /register or CIMD.
	if src := client.GetString("source"); !client.GetBool("confidential") || (src != sourceAdmin && src != "") {
		terr := tokenErr(http.StatusUnauthorized, "unauthorized_client", "only confidential clients registered by an admin may use direct connect")
		return e.JSON(terr.Status, terr)
	}
	user, err := e.App.FindAuthRecordByEmail(pb_migrations.Users, req.Email)
	if err == nil && userDisabled(user) {
		return e.JSON(http.StatusForbidden, map[string]string{"error": "account_disabled", "error_description": "this Picard account is deactivated", "field": "email"})
	}
	if err == nil && !user.Verified() {
		// an account someone signed up for on Picard's own pages, whose
		// email nobody verified: binding it would hand the app's data for
		// this email to whoever created that account
		return e.JSON(http.StatusConflict, map[string]string{"error": "unverified_account", "error_description": "an unverified Picard account uses this email; it must be verified (by an admin in the dashboard) before an app can connect it", "field": "email"})
	}
	if err != nil {
		if !req.CreateIfNotExists {
			return e.JSON(http.StatusNotFound, map[string]string{"error": "user_not_found", "error_description": "no user with that email; set create_if_not_exists to create one", "field": "email"})
		}
		if req.Username == "" {
			return badRequest(e, fieldErr("username", "is required to create a user"))
		}
		if taken, _ := e.App.FindFirstRecordByData(pb_migrations.Users, "username", req.Username); taken != nil {
			return e.JSON(http.StatusConflict, map[string]string{"error": "username_taken", "error_description": "that username belongs to another user", "field": "username"})
		}
		col, err := e.App.FindCachedCollectionByNameOrId(pb_migrations.Users)
		if err != nil {
			return e.InternalServerError("", err)
		}
		user = core.NewRecord(col)
		user.SetEmail(req.Email)
		user.Set("username", req.Username)
		user.SetVerified(true)
		user.SetRandomPassword()
		if err := e.App.Save(user); err != nil {
			return e.JSON(http.StatusConflict, map[string]string{"error": "user_conflict", "error_description": "could not create the user: " + err.Error()})
		}
	}
	scope := strings.Join(clientScopes(client), " ")
	var resp *TokenResponse
	err = e.App.RunInTransaction(func(tx core.App) error {
		grant, err := s.NewGrant(tx, user.Id, client.Id, scope)
		if err != nil {
			return err
		}
		resp, err = s.IssueTokens(tx, grant, true)
		return err
	})
	if err != nil {
		return e.InternalServerError("could not issue tokens", err)
	}
	resp.UserID = user.Id
	e.Response.Header().Set("Cache-Control", "no-store")
	return e.JSON(http.StatusOK, resp)
}

// clientCredentials reads client_secret_basic or client_secret_post.
func clientCredentials(r *http.Request) (id, secret string) {
	if u, p, ok := r.BasicAuth(); ok {
		id, _ = url.QueryUnescape(u)
		secret, _ = url.QueryUnescape(p)
		return id, secret
	}
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
}

func (s *Server) handleToken(e *core.RequestEvent) error {
	e.Response.Header().Set("Cache-Control", "no-store")
	writeErr := func(t *TokenError) error { return writeTokenErr(e, t) }
	e.Request.Body = http.MaxBytesReader(e.Response, e.Request.Body, maxBody)
	if err := e.Request.ParseForm(); err != nil {
		return writeErr(tokenErr(400, "invalid_request", "the body must be application/x-www-form-urlencoded"))
	}
	if e.Request.URL.Query().Get("refresh_token") != "" || e.Request.URL.Query().Get("code") != "" {
		return writeErr(tokenErr(400, "invalid_request", "credentials belong in the body, not the URL"))
	}
	id, secret := clientCredentials(e.Request)
	client, terr := s.checkClient(id, secret)
	if terr != nil {
		return writeErr(terr)
	}
	form := e.Request.PostForm
	var (
		resp *TokenResponse
		err  error
	)
	switch gt := form.Get("grant_type"); gt {
	case "authorization_code":
		resp, err = s.ExchangeCode(client, form)
	case "refresh_token":
		if terr := s.checkResource(form); terr != nil {
			return writeErr(terr)
		}
		resp, err = s.Refresh(client, form.Get("refresh_token"), form.Get("scope"))
	case "":
		return writeErr(tokenErr(400, "invalid_request", "grant_type is required"))
	default:
		return writeErr(tokenErr(400, "unsupported_grant_type", "grant_type "+gt+" is not supported"))
	}
	if err != nil {
		var t *TokenError
		if errors.As(err, &t) {
			return writeErr(t)
		}
		return e.InternalServerError("", err)
	}
	e.Response.Header().Set("Pragma", "no-cache")
	return e.JSON(http.StatusOK, resp)
}
