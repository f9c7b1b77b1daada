package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/picard-mcp/picard/plugins/audit"
	"github.com/picard-mcp/picard/plugins/memories"
	"github.com/picard-mcp/picard/plugins/oauth"
)

// Resource URIs.
const (
	MemoryURIPrefix = "memory://"
	ListURI         = "memories://mine"
)

func addResources(s *server.MCPServer, cfg Config) {
	s.AddResource(mcp.NewResource(ListURI, "My memories",
		mcp.WithResourceDescription("Your 100 newest memories as JSON (get_memories pages further)"),
		mcp.WithMIMEType("application/json"),
	), func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		c, err := readerFrom(ctx)
		if err != nil {
			return nil, err
		}
		page, err := cfg.Memories.List(c.UserID, memories.ListInput{Limit: memories.MaxListLimit})
		if err != nil {
			return nil, err
		}
		cfg.recordResource(c, audit.ActionRead, page.Memories...)
		b, err := json.Marshal(page)
		if err != nil {
			return nil, err
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: ListURI, MIMEType: "application/json", Text: string(b)}}, nil
	})
	s.AddResourceTemplate(mcp.NewResourceTemplate(MemoryURIPrefix+"{memory_id}", "Memory",
		mcp.WithTemplateDescription("One memory's text, if you may read it"),
		mcp.WithTemplateMIMEType("text/plain"),
	), func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		c, err := readerFrom(ctx)
		if err != nil {
			return nil, err
		}
		id := strings.TrimPrefix(req.Params.URI, MemoryURIPrefix)
		v, err := cfg.Memories.Viewer(c.UserID)
		if err != nil {
			return nil, err
		}
		m, err := cfg.Memories.Get(v, id)
		if err != nil {
			var me *memories.Error
			if errors.As(err, &me) && (me.Code == memories.CodeNotFound || me.Code == memories.CodeInvalid) {
				return nil, resourceNotFound(ctx, req.Params.URI)
			}
			return nil, err
		}
		cfg.recordResource(c, audit.ActionResourceRead, m)
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: m.Text}}, nil
	})
}

func readerFrom(ctx context.Context) (Caller, error) {
	c, ok := callerFrom(ctx)
	if !ok {
		return c, errors.New("not authenticated")
	}
	if !c.Claims.HasScope(oauth.ScopeRead) {
		return c, errors.New("reading resources needs the memories:read scope")
	}
	return c, nil
}

// PersonaPrompter is what the persona prompt needs.
type PersonaPrompter interface {
	Username(userID string) (string, bool)
}

func addPrompts(s *server.MCPServer, cfg Config) {
	s.AddPrompt(mcp.NewPrompt("persona",
		mcp.WithPromptDescription("Ask another user's persona a question: answers come from their memories that you may read (query_user)"),
		mcp.WithArgument("user_id", mcp.ArgumentDescription("the user whose persona should answer (UUID)"), mcp.RequiredArgument()),
		mcp.WithArgument("question", mcp.ArgumentDescription("what to ask"), mcp.RequiredArgument()),
	), func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		if _, err := readerFrom(ctx); err != nil {
			return nil, err
		}
		uid := req.Params.Arguments["user_id"]
		q := strings.TrimSpace(req.Params.Arguments["question"])
		if !memories.IsUUID(uid) {
			return nil, errors.New("user_id: must be a UUID")
		}
		if q == "" {
			return nil, errors.New("question: is required")
		}
		name := uid
		if cfg.Persona != nil {
			n, ok := cfg.Persona.Username(uid)
			if !ok {
				return nil, errors.New("user_id: user not found")
			}
			name = n
		}
		text := fmt.Sprintf("Ask the persona of %s (user id %s) this question by calling the query_user tool with user_id %q, then relay its answer, saying which memories it drew on:\n\n%s", name, uid, uid, q)
		return mcp.NewGetPromptResult("Ask "+name+"'s persona", []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(text)),
		}), nil
	})
}
