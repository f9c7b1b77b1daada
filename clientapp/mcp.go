package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// ToolError is Picard refusing a tool call (bad argument, not found); its
// message names the argument, e.g. "text: must not be empty".
type ToolError struct{ Msg string }

func (e *ToolError) Error() string { return e.Msg }

// NotFound reports whether Picard said the memory does not exist (or is
// not the caller's to see: Picard answers both the same).
func (e *ToolError) NotFound() bool { return strings.Contains(e.Msg, "not found") }

// Field is the argument the message names ("" if none).
func (e *ToolError) Field() string {
	if i := strings.Index(e.Msg, ":"); i > 0 && !strings.Contains(e.Msg[:i], " ") {
		return e.Msg[:i]
	}
	return ""
}

// Tokens hands out a valid access token per person, refreshing at most
// once at a time per person: Picard rotates refresh tokens and treats a
// replayed one as theft, so two parallel refreshes would log the person out.
type Tokens struct {
	store  *Store
	picard *Picard
	mu     sync.Mutex
	locks  map[string]*sync.Mutex
}

func (t *Tokens) lock(userID string) func() {
	t.mu.Lock()
	if t.locks == nil {
		t.locks = map[string]*sync.Mutex{}
	}
	l, ok := t.locks[userID]
	if !ok {
		l = &sync.Mutex{}
		t.locks[userID] = l
	}
	t.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// Access returns a usable access token. If stale is the token that Picard
// just refused, it is refreshed even if not yet expired.
func (t *Tokens) Access(ctx context.Context, userID, stale string) (*Connection, error) {
	unlock := t.lock(userID)
	defer unlock()
	c, err := t.store.Connection(ctx, userID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotConnected
	}
	if err != nil {
		return nil, err
	}
	if c.NeedsReconnect {
		return nil, ErrReconnect
	}
	if c.AccessToken != stale && time.Until(c.Expiry) > 30*time.Second {
		return c, nil
	}
	tok, err := t.picard.Refresh(ctx, c.RefreshToken)
	if errors.Is(err, ErrReconnect) {
		if merr := t.store.MarkReconnect(ctx, userID); merr != nil {
			return nil, merr
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	c.AccessToken = tok.AccessToken
	if tok.RefreshToken != "" {
		c.RefreshToken = tok.RefreshToken
	}
	c.Expiry = tok.Expiry
	if c.Expiry.IsZero() {
		c.Expiry = time.Now().Add(time.Hour)
	}
	if err := t.store.SaveConnection(ctx, c); err != nil {
		return nil, err
	}
	return c, nil
}

// MCP calls Picard's tools over MCP streamable HTTP as one person.
type MCP struct {
	URL    string // Picard's /mcp endpoint
	Tokens *Tokens
}

// Call runs tool with args as userID and decodes its structured result
// into out. A 401 (token expired or revoked) triggers one refresh and
// one retry.
func (m *MCP) Call(ctx context.Context, userID, tool string, args map[string]any, out any) error {
	ctx, cancel := context.WithTimeout(ctx, PicardTimeout)
	defer cancel()
	conn, err := m.Tokens.Access(ctx, userID, "")
	if err != nil {
		return err
	}
	res, err := m.call(ctx, conn.AccessToken, tool, args)
	var authErr *transport.AuthorizationRequiredError
	if errors.As(err, &authErr) {
		if conn, err = m.Tokens.Access(ctx, userID, conn.AccessToken); err != nil {
			return err
		}
		res, err = m.call(ctx, conn.AccessToken, tool, args)
		if errors.As(err, &authErr) {
			return ErrReconnect
		}
	}
	if err != nil {
		return &UnreachableError{err}
	}
	if res.IsError {
		var b strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(mcp.TextContent); ok {
				b.WriteString(tc.Text)
			}
		}
		return &ToolError{Msg: b.String()}
	}
	if out == nil {
		return nil
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return fmt.Errorf("%s result: %w", tool, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &UnreachableError{fmt.Errorf("%s result: %w", tool, err)}
	}
	return nil
}

// call runs one tool on an MCP session opened with token. Within one page
// request the session is kept (see WithSessions) and reused by the next
// call, so a page that makes four calls initializes once.
func (m *MCP) call(ctx context.Context, token, tool string, args map[string]any) (*mcp.CallToolResult, error) {
	pool, _ := ctx.Value(sessionsKey{}).(*sessionPool)
	c := pool.get(token)
	if c == nil {
		var err error
		if c, err = m.open(ctx, token); err != nil {
			return nil, err
		}
		if !pool.put(token, c) {
			defer c.Close()
		}
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		pool.drop(token)
		return nil, fmt.Errorf("mcp %s: %w", tool, err)
	}
	return res, nil
}

func (m *MCP) open(ctx context.Context, token string) (*mcpclient.Client, error) {
	c, err := mcpclient.NewStreamableHttpClient(m.URL,
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}),
		transport.WithHTTPTimeout(PicardTimeout))
	if err != nil {
		return nil, fmt.Errorf("mcp client: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("mcp start: %w", err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "picard-clientapp", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		return nil, fmt.Errorf("mcp initialize: %w", err)
	}
	return c, nil
}

type sessionsKey struct{}

// sessionPool holds the MCP sessions opened during one page request, by
// access token; all are closed (DELETE at Picard) when the request ends.
type sessionPool struct {
	mu sync.Mutex
	m  map[string]*mcpclient.Client
}

// WithSessions lets calls made with the returned context share MCP
// sessions; done closes them.
func WithSessions(ctx context.Context) (context.Context, func()) {
	p := &sessionPool{m: map[string]*mcpclient.Client{}}
	return context.WithValue(ctx, sessionsKey{}, p), func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for k, c := range p.m {
			c.Close()
			delete(p.m, k)
		}
	}
}

func (p *sessionPool) get(token string) *mcpclient.Client {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m[token]
}

// put keeps c; false when there is no pool (the caller closes c).
func (p *sessionPool) put(token string, c *mcpclient.Client) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.m[token]; old != nil && old != c {
		old.Close()
	}
	p.m[token] = c
	return true
}

func (p *sessionPool) drop(token string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.m[token]; c != nil {
		c.Close()
		delete(p.m, token)
	}
}
