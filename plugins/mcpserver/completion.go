package mcpserver

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// maxCompletions is the most values MCP allows in one completion result.
const maxCompletions = 100

// completer offers values for the persona prompt's user_id argument: the
// ids of users who have public memories, matched by id or username prefix.
type completer struct{ cfg Config }

var _ server.PromptCompletionProvider = (*completer)(nil)

func (c *completer) CompletePromptArgument(ctx context.Context, prompt string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	if prompt != "persona" || arg.Name != "user_id" {
		return &mcp.Completion{Values: []string{}}, nil
	}
	if _, err := readerFrom(ctx); err != nil {
		return nil, err
	}
	users, more, err := c.cfg.Memories.PersonaCandidates(arg.Value, maxCompletions)
	if err != nil {
		return nil, err
	}
	values := make([]string, 0, len(users))
	for _, u := range users {
		values = append(values, u.ID)
	}
	return &mcp.Completion{Values: values, HasMore: more}, nil
}
