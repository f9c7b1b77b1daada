package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/internal/strictjson"
	"github.com/picard-mcp/picard/plugins/memories"
	"github.com/picard-mcp/picard/plugins/oauth"
)

// Version is reported to MCP clients.
const Version = "0.1.0"

type callerKey struct{}

func withCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

func callerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// toolHandlers adapts every tool of the toolset (toolHandler), by name:
// what newMCPServer gives mcp-go and the fast path calls (fastcall.go).
func toolHandlers(ts *Toolset) map[string]server.ToolHandlerFunc {
	out := make(map[string]server.ToolHandlerFunc, len(ts.List()))
	for _, t := range ts.List() {
		out[t.Name] = toolHandler(t)
	}
	return out
}

// newMCPServer builds the MCP server: every tool of the toolset with its
// handler from handlers, the memory resources and the persona prompt.
func newMCPServer(cfg Config, handlers map[string]server.ToolHandlerFunc) *server.MCPServer {
	s := server.NewMCPServer("picard", Version,
		server.WithTitle("Picard memory server"),
		server.WithInstructions("Picard stores the user's memories. Use submit_memory to remember something, query_memory to recall by meaning, get_memories to list, and query_user to ask another user's persona (built from their public memories and those shared with you)."),
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(false, true),
		server.WithPromptCapabilities(true),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(&completer{cfg: cfg}),
		server.WithRecovery(),
	)
	for _, t := range cfg.Tools.List() {
		s.AddTool(mcpTool(t), handlers[t.Name])
	}
	addResources(s, cfg)
	addPrompts(s, cfg)
	return s
}

func mcpTool(t *Tool) mcp.Tool {
	in, out := Schemas(t.Name)
	opts := []mcp.ToolOption{
		mcp.WithTitleAnnotation(strings.ReplaceAll(t.Name, "_", " ")),
		mcp.WithReadOnlyHintAnnotation(t.ReadOnly),
		mcp.WithDestructiveHintAnnotation(t.Destructive),
		mcp.WithIdempotentHintAnnotation(t.Idempotent),
		mcp.WithOpenWorldHintAnnotation(false),
	}
	if out != nil {
		opts = append(opts, mcp.WithRawOutputSchema(out))
	}
	tool := mcp.NewToolWithRawSchema(t.Name, t.Description, in)
	for _, o := range opts {
		o(&tool)
	}
	return tool
}

// toolHandler adapts a Tool: bad arguments become tool errors (isError)
// naming the argument, never protocol errors; results carry both
// structured content and the same JSON as text.
func toolHandler(t *Tool) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		c, ok := callerFrom(ctx)
		if !ok {
			return mcp.NewToolResultError("not authenticated"), nil
		}
		if !c.Claims.HasScope(t.Scope) {
			return mcp.NewToolResultError("this tool needs the " + t.Scope + " scope"), nil
		}
		raw, err := json.Marshal(req.GetRawArguments())
		if err != nil {
			return mcp.NewToolResultError("arguments: must be a JSON object"), nil //nolint:nilerr // bad arguments are tool errors, not protocol errors
		}
		res, err := t.Call(ctx, c, raw)
		if err != nil {
			return toolError(err), nil
		}
		if sp := splicerFrom(ctx); sp != nil {
			// written into the response as it is (see splice.go)
			if pre, ok := res.(preEncoded); ok {
				if structured, quoted, ok := pre.Encoded(); ok {
					return sp.resultEncoded(structured, quoted), nil
				}
			}
			answer, err := encodeJSON(res)
			if err != nil {
				return nil, fmt.Errorf("encode %s result: %w", t.Name, err)
			}
			return sp.result(answer)
		}
		text, err := json.Marshal(res)
		if err != nil {
			return nil, fmt.Errorf("encode %s result: %w", t.Name, err)
		}
		// encoded once: the structured content is the same bytes as the text
		return mcp.NewToolResultStructured(json.RawMessage(text), string(text)), nil
	}
}

func toolError(err error) *mcp.CallToolResult {
	var fe *strictjson.FieldError
	if errors.As(err, &fe) {
		return mcp.NewToolResultError(fe.Error())
	}
	me := memories.AsError(err)
	if me.Code == memories.CodeStorage {
		slog.Error("tool failed: the data dir refuses writes", "error", me.Detail())
	}
	if me.Code == memories.CodeInternal {
		return mcp.NewToolResultError("internal error")
	}
	return mcp.NewToolResultError(me.Error())
}

// scopeForMethod is the scope a JSON-RPC call needs, "" for none; tool
// is the called tool's name (tools/call).
func (h *mcpHandler) scopeForMethod(method, tool string) string {
	switch method {
	case "tools/call":
		if t, ok := h.cfg.Tools.Get(tool); ok {
			return t.Scope
		}
	case "resources/read", "prompts/get", "completion/complete":
		return oauth.ScopeRead
	}
	return ""
}

type mcpHandler struct {
	cfg      Config
	http     *server.StreamableHTTPServer
	ids      *terminatedSessions               // stateful mode's session ids (nil when stateless)
	tools    map[string]server.ToolHandlerFunc // what mcp-go was given, for the fast path (fastcall.go)
	mu       sync.Mutex
	sessions map[string]*sessionOwner // session id -> who opened it
	pruned   time.Time
}

type sessionOwner struct {
	user    string
	seen    time.Time
	touched time.Time // the last request of the session that went through mcp-go
}

// sessionIdleTTL is how long an unused session is remembered (mcp-go's
// per-session state goes after the same time).
const sessionIdleTTL = 12 * time.Hour

// pruneLocked forgets idle sessions, at most once a minute; h.mu held.
func (h *mcpHandler) pruneLocked(now time.Time) {
	if now.Sub(h.pruned) < time.Minute {
		return
	}
	h.pruned = now
	for sid, o := range h.sessions {
		if now.Sub(o.seen) > sessionIdleTTL {
			delete(h.sessions, sid)
		}
	}
}

const sessionHeader = "Mcp-Session-Id"

// serve runs after the Origin/Host check and the bearer middleware.
func (h *mcpHandler) serve(e *core.RequestEvent) error {
	claims := oauth.ClaimsFrom(e)
	r := e.Request
	fresh := false // a session the fast path may serve (fastSession)
	if sid := r.Header.Get(sessionHeader); sid != "" {
		h.mu.Lock()
		owner, known := h.sessions[sid]
		if known && owner.user == claims.Subject {
			now := time.Now()
			owner.seen = now
			fresh = now.Sub(owner.touched) < fastCallTouch
		}
		h.mu.Unlock()
		if known && owner.user != claims.Subject {
			return e.JSON(http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": "this MCP session belongs to another user"})
		}
	}
	var fix *wireFix
	var fast *toolCall
	var fastHandler server.ToolHandlerFunc
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
		if err != nil {
			return e.BadRequestError("cannot read the request body", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if c, ok := parseToolCall(body); ok {
			// the scope check of the one call the body holds
			if scope := h.scopeForMethod(c.Method, c.Params.Name); scope != "" && !claims.HasScope(scope) {
				return h.cfg.OAuth.WriteInsufficientScope(e, scope)
			}
			if handler, known := h.tools[c.Params.Name]; known && h.fastSession(r, fresh) {
				fast, fastHandler = &c, handler
			}
		} else if scope := h.missingScope(body, claims); scope != "" {
			return h.cfg.OAuth.WriteInsufficientScope(e, scope)
		}
		if fast == nil {
			fix = wireFixFor(body, r.Header.Get("Accept"))
		}
	}
	ctx, sp := withSplicer(withCaller(r.Context(), Caller{UserID: claims.Subject, Claims: claims}))
	rw := e.Response
	if fix != nil {
		fix.w, rw, ctx = e.Response, fix, withWireFix(ctx, fix)
	}
	w := &sessionRecorder{ResponseWriter: rw, h: h, user: claims.Subject, method: r.Method, sid: r.Header.Get(sessionHeader), splicer: sp,
		holdJSON: fix == nil}
	if fast != nil {
		h.fastCall(ctx, w, fast, fastHandler)
	} else {
		h.touched(r.Header.Get(sessionHeader), claims.Subject)
		h.http.ServeHTTP(w, r.WithContext(ctx))
	}
	if err := w.release(true); err != nil {
		slog.Debug("mcp: writing the answer", "error", err)
	}
	if fix != nil {
		if err := fix.finish(); err != nil {
			slog.Debug("mcp: writing the mended answer", "method", fix.req.Method, "error", err)
		}
	}
	return nil
}

// touched notes that a request of session sid (opened by subject) went
// through mcp-go, which counts it as activity of the session.
func (h *mcpHandler) touched(sid, subject string) {
	if sid == "" {
		return
	}
	h.mu.Lock()
	if o, ok := h.sessions[sid]; ok && o.user == subject {
		o.touched = time.Now()
	}
	h.mu.Unlock()
}

// missingScope returns a scope some call in body needs and claims lack.
func (h *mcpHandler) missingScope(body []byte, claims *oauth.Claims) string {
	// The usual call is decoded in one pass: the method and, for
	// tools/call, the tool's name.
	type call struct {
		Method string `json:"method"`
		Params struct {
			Name string `json:"name"`
		} `json:"params"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] != '[' {
		var c call
		if json.Unmarshal(trimmed, &c) == nil {
			if s := h.scopeForMethod(c.Method, c.Params.Name); s != "" && !claims.HasScope(s) {
				return s
			}
			return ""
		}
	}
	// A batch, or params of another shape: each message on its own, so
	// one odd message cannot hide the others from the check.
	type msg struct {
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	var msgs []msg
	if len(trimmed) > 0 && trimmed[0] == '[' {
		_ = json.Unmarshal(trimmed, &msgs)
	} else {
		var m msg
		if json.Unmarshal(trimmed, &m) == nil {
			msgs = append(msgs, m)
		}
	}
	for _, m := range msgs {
		var c call
		if m.Method == "tools/call" && json.Unmarshal(m.Params, &c.Params) != nil {
			continue // not a tool call mcp-go can run
		}
		if s := h.scopeForMethod(m.Method, c.Params.Name); s != "" && !claims.HasScope(s) {
			return s
		}
	}
	return ""
}

// sessionRecorder binds a new session id to the user who opened it and
// forgets it when the session is deleted. It also holds a JSON answer
// (not an SSE stream) whole until mcp-go is done with it and then sends it
// with its Content-Length in one write: mcp-go sends the header first and
// the answer after, so with the answer's spliced parts net/http would
// send it chunked, in several writes to the socket (about a fifth of a
// get_memories call's CPU was in those write system calls).
type sessionRecorder struct {
	http.ResponseWriter
	h           *mcpHandler
	user        string
	method, sid string
	wrote       bool
	splicer     *resultSplicer // tool answers to write in place of their placeholders

	holdJSON bool          // hold a JSON answer until release (false: a wireFix mends it)
	held     *bytes.Buffer // the answer held so far, nil when none is
	status   int           // its status code
}

func (w *sessionRecorder) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if sid := w.Header().Get(sessionHeader); sid != "" && code < 300 {
			w.h.mu.Lock()
			if _, ok := w.h.sessions[sid]; !ok {
				now := time.Now()
				w.h.pruneLocked(now)
				w.h.sessions[sid] = &sessionOwner{user: w.user, seen: now, touched: now}
			}
			w.h.mu.Unlock()
		}
		if w.method == http.MethodDelete && w.sid != "" && code < 300 {
			w.h.mu.Lock()
			delete(w.h.sessions, w.sid)
			w.h.mu.Unlock()
		}
		if w.holdJSON && code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified &&
			w.Header().Get("Content-Type") == "application/json" {
			w.held, w.status = buffers.Get().(*bytes.Buffer), code
			w.held.Reset()
			return
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *sessionRecorder) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	var out io.Writer = w.ResponseWriter
	if w.held != nil {
		out = w.held
	}
	if w.splicer != nil {
		if handled, err := w.splicer.write(out, b); handled {
			if err != nil {
				return 0, err
			}
			return len(b), nil
		}
	}
	return out.Write(b)
}

// release sends a held answer: its header (with the answer's length when
// whole is true, i.e. mcp-go is done) and the answer in one write. Later
// writes go straight on.
func (w *sessionRecorder) release(whole bool) error {
	if w.held == nil {
		return nil
	}
	body := w.held
	w.held = nil
	defer putBuffer(body)
	if whole {
		w.Header().Set("Content-Length", strconv.Itoa(body.Len()))
	}
	w.ResponseWriter.WriteHeader(w.status)
	_, err := w.ResponseWriter.Write(body.Bytes())
	return err
}

// Flush keeps SSE streaming working through the wrapper.
func (w *sessionRecorder) Flush() {
	if err := w.release(false); err != nil {
		return
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *sessionRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// checkOrigin guards against DNS rebinding before any authentication: the
// Host must be the public URL's host (or a loopback name when the request
// came in on loopback), and a browser Origin must be the public origin or
// a loopback origin.
func (h *mcpHandler) checkOrigin(e *core.RequestEvent) error {
	if !h.hostAllowed(e.Request) {
		return e.JSON(http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": "Host header not allowed"})
	}
	if o := e.Request.Header.Get("Origin"); o != "" && !h.originAllowed(o) {
		return e.JSON(http.StatusForbidden, map[string]string{"error": "forbidden", "error_description": "Origin not allowed"})
	}
	return e.Next()
}

func (h *mcpHandler) publicHost() string {
	u, err := url.Parse(h.cfg.PublicURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

func isLoopbackName(hostport string) bool {
	host := hostport
	if hh, _, err := net.SplitHostPort(hostport); err == nil {
		host = hh
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (h *mcpHandler) hostAllowed(r *http.Request) bool {
	host := strings.ToLower(r.Host)
	if host == h.publicHost() {
		return true
	}
	for _, a := range h.cfg.AllowedHosts {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	// a loopback Host is fine when the server itself is reached on loopback
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && isLoopbackName(la.String()) {
		return isLoopbackName(host)
	}
	return false
}

func (h *mcpHandler) originAllowed(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	pub, _ := url.Parse(h.cfg.PublicURL)
	if pub != nil && strings.EqualFold(u.Scheme, pub.Scheme) && strings.EqualFold(u.Host, pub.Host) {
		return true
	}
	for _, a := range h.cfg.AllowedOrigins {
		if strings.EqualFold(strings.TrimRight(a, "/"), strings.TrimRight(origin, "/")) {
			return true
		}
	}
	return isLoopbackName(u.Host) && isLoopbackName(h.publicHost())
}
