package platform

import (
	"context"
	"errors"
	"strings"

	"github.com/picard-mcp/picard/vectorstore"
)

// subcommand is the first positional argument of args (the command name),
// skipping PocketBase's global flags and their values.
func subcommand(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return a
		}
		switch a {
		case "--dev", "-h", "--help":
		default:
			if !strings.Contains(a, "=") {
				i++ // the flag's value
			}
		}
	}
	return ""
}

// errNoVectorStore is what the vector store answers in `picard keys`
// commands, which never need it.
var errNoVectorStore = errors.New("the vector store is not opened by this command")

// noVectorStore stands in for the vector store in `picard keys` commands:
// key rotation rewrites the memories table only, and opening the embedded
// store would take its lock, which the running server holds. So `picard
// keys rotate` can run next to a live server (see fernet.Rotate for why
// that is safe).
type noVectorStore struct{}

func (noVectorStore) Upsert(context.Context, vectorstore.Space, ...vectorstore.Item) error {
	return errNoVectorStore
}
func (noVectorStore) SetMeta(context.Context, string, vectorstore.Meta) error {
	return errNoVectorStore
}
func (noVectorStore) Delete(context.Context, ...string) error { return errNoVectorStore }
func (noVectorStore) Search(context.Context, vectorstore.Query) ([]vectorstore.Hit, error) {
	return nil, errNoVectorStore
}
func (noVectorStore) Count(context.Context, vectorstore.Space) (int, error) {
	return 0, errNoVectorStore
}
func (noVectorStore) Reset(context.Context) error { return errNoVectorStore }
func (noVectorStore) Ping(context.Context) error  { return errNoVectorStore }
func (noVectorStore) Close() error                { return nil }
