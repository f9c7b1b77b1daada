package mcpserver

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/mark3labs/mcp-go/server"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/internal/strictjson"
	"github.com/picard-mcp/picard/plugins/memories"
	"github.com/picard-mcp/picard/plugins/oauth"
)

// Config wires the tool endpoints.
type Config struct {
	OAuth    *oauth.Server
	Tools    *Toolset
	Memories *memories.Service
	Persona  PersonaPrompter // optional: names users in the persona prompt
	// PublicURL is PICARD_PUBLIC_URL; its host and origin are always allowed.
	PublicURL string
	// AllowedHosts and AllowedOrigins extend what /mcp accepts (e.g. a
	// reverse proxy's name); loopback is allowed when served on loopback.
	AllowedHosts, AllowedOrigins []string
	// Stateless serves /mcp without sessions, for several replicas.
	Stateless bool
	// Access, when set, records every memory the tools and resources touch.
	Access AccessRecorder
}

// MustRegister is Register that panics on error.
func MustRegister(app core.App, cfg Config) {
	if err := Register(app, cfg); err != nil {
		panic(err)
	}
}

// Register adds POST /api/tools.
func Register(app core.App, cfg Config) error {
	if cfg.OAuth == nil || cfg.Tools == nil || cfg.Memories == nil || cfg.PublicURL == "" {
		return errors.New("mcpserver: Config needs OAuth, Tools, Memories and PublicURL")
	}
	if cfg.Access != nil {
		recordAccess(cfg.Tools, cfg.Access)
	}
	h := &restHandler{cfg: cfg}
	m := &mcpHandler{cfg: cfg, sessions: map[string]*sessionOwner{}, tools: toolHandlers(cfg.Tools)}
	opts := []server.StreamableHTTPOption{
		server.WithEndpointPath("/mcp"),
		server.WithSessionIdleTTL(sessionIdleTTL),
		// Picard checks Host and Origin itself, before authentication
		server.WithDisableLocalhostProtection(true),
	}
	if cfg.Stateless {
		opts = append(opts, server.WithStateLess(true))
	} else {
		// a terminated session's id is answered 404 afterwards
		m.ids = newTerminatedSessions()
		opts = append(opts, server.WithSessionIdManager(m.ids))
	}
	m.http = server.NewStreamableHTTPServer(newMCPServer(cfg, m.tools), opts...)
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		// authenticated successes skip PocketBase's request log (one
		// logs.db write per call); refusals and failures are still logged.
		// They take OAuth access tokens only (RequireBearer), so
		// PocketBase's own token loader, which parsed every bearer token
		// as a PocketBase auth token in vain (~20% of a ping's CPU), is
		// left out: nothing on these routes reads e.Auth.
		e.Router.POST("/api/tools", h.serve).BindFunc(cfg.OAuth.RequireBearer()).Bind(apis.SkipSuccessActivityLog()).Unbind(apis.DefaultLoadAuthTokenMiddlewareId)
		e.Router.Any("/mcp", m.serve).BindFunc(m.checkOrigin, cfg.OAuth.RequireBearer()).Bind(apis.SkipSuccessActivityLog()).Unbind(apis.DefaultLoadAuthTokenMiddlewareId)
		routeDocs(e, cfg.PublicURL, cfg.Tools)
		routeTransfer(e, cfg)
		return e.Next()
	})
	return nil
}

type restHandler struct{ cfg Config }

const maxToolBody = 256 << 10

// ErrorBody is the JSON shape of every /api/tools error.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (h *restHandler) serve(e *core.RequestEvent) error {
	claims := oauth.ClaimsFrom(e)
	body, err := io.ReadAll(io.LimitReader(e.Request.Body, maxToolBody+1))
	if err != nil || len(body) > maxToolBody {
		return e.JSON(http.StatusRequestEntityTooLarge, ErrorBody{Error: "invalid_argument", Message: "the request body is too large"})
	}
	var req struct {
		Tool string          `json:"tool"`
		Data json.RawMessage `json:"data"`
	}
	if err := strictjson.Decode(body, &req); err != nil {
		return writeError(e, err)
	}
	if req.Tool == "" {
		return e.JSON(http.StatusBadRequest, ErrorBody{Error: "invalid_argument", Field: "tool", Message: "tool: is required"})
	}
	tool, ok := h.cfg.Tools.Get(req.Tool)
	if !ok {
		return e.JSON(http.StatusBadRequest, ErrorBody{Error: "invalid_argument", Field: "tool", Message: "tool: unknown tool " + req.Tool})
	}
	if !claims.HasScope(tool.Scope) {
		return h.cfg.OAuth.WriteInsufficientScope(e, tool.Scope)
	}
	res, err := tool.Call(e.Request.Context(), Caller{UserID: claims.Subject, Claims: claims}, req.Data)
	if err != nil {
		return writeError(e, err)
	}
	return e.JSON(http.StatusOK, res)
}

func writeError(e *core.RequestEvent, err error) error {
	var fe *strictjson.FieldError
	if errors.As(err, &fe) {
		return e.JSON(http.StatusBadRequest, ErrorBody{Error: "invalid_argument", Field: fe.Field, Message: fe.Error()})
	}
	me := memories.AsError(err)
	status := http.StatusInternalServerError
	switch me.Code {
	case memories.CodeInvalid:
		status = http.StatusBadRequest
	case memories.CodeNotFound:
		status = http.StatusNotFound
	case memories.CodeUnavailable:
		status = http.StatusServiceUnavailable
	case memories.CodeStorage:
		slog.Error("tool failed: the data dir refuses writes", "error", me.Detail())
		status = http.StatusInsufficientStorage
	}
	if status == http.StatusInternalServerError {
		slog.Error("tool failed", "error", err)
		return e.JSON(status, ErrorBody{Error: string(memories.CodeInternal), Message: "internal error"})
	}
	return e.JSON(status, ErrorBody{Error: string(me.Code), Field: me.Field, Message: me.Error()})
}
