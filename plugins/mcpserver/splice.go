package mcpserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
)

// Result splicing: a tool's answer is encoded once, by Picard, and written
// into mcp-go's response in place of two placeholders.
//
// mcp-go encodes a CallToolResult through its own MarshalJSON (a map),
// which encoding/json then re-parses and compacts, as it does the
// structured content inside it: for a get_memories page (~8 KB answered
// twice, as structured content and as text) that was ~25 KB of JSON
// scanned byte by byte per call, the largest single cost of the call. So
// the tool handler hands mcp-go a result whose text and structured content
// are unique placeholder strings, and the response writer of /mcp
// (sessionRecorder) swaps each placeholder, a JSON string token, for the
// JSON it stands for. What the client receives is the same result:
// structured content and the same JSON as text.
//
// Placeholders are "picard-result-<random per process>-<sequence>-t|s";
// nothing a client sends can predict them. A placeholder that never
// reaches the writer (an error path) is dropped with the request.

type splicerKey struct{}

// resultSplicer holds the encoded answers of one HTTP request's tool calls
// (a JSON-RPC batch may hold several, run concurrently).
type resultSplicer struct {
	mu    sync.Mutex
	parts map[string][]byte // quoted placeholder -> JSON it stands for
}

func withSplicer(ctx context.Context) (context.Context, *resultSplicer) {
	sp := &resultSplicer{}
	return context.WithValue(ctx, splicerKey{}, sp), sp
}

func splicerFrom(ctx context.Context) *resultSplicer {
	sp, _ := ctx.Value(splicerKey{}).(*resultSplicer)
	return sp
}

var (
	spliceNonce = func() string {
		b := make([]byte, 16)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		return hex.EncodeToString(b)
	}()
	spliceSeq atomic.Uint64
)

// result returns a CallToolResult standing for the tool answer encoded as
// JSON in answer: its text is answer as a JSON string, its structured
// content answer itself.
func (sp *resultSplicer) result(answer []byte) (*mcp.CallToolResult, error) {
	text, err := json.Marshal(string(answer))
	if err != nil {
		return nil, err
	}
	base := "picard-result-" + spliceNonce + "-" + strconv.FormatUint(spliceSeq.Add(1), 10)
	textMark, structMark := base+"-t", base+"-s"
	sp.mu.Lock()
	if sp.parts == nil {
		sp.parts = map[string][]byte{}
	}
	sp.parts[`"`+textMark+`"`] = text
	sp.parts[`"`+structMark+`"`] = answer
	sp.mu.Unlock()
	return &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(textMark)},
		StructuredContent: structMark,
	}, nil
}

// splice replaces the placeholders found in b (one write of a response
// or of an SSE event) and forgets them; ok says whether it replaced any.
func (sp *resultSplicer) splice(b []byte) (out []byte, ok bool) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if len(sp.parts) == 0 || !bytes.Contains(b, []byte("picard-result-"+spliceNonce)) {
		return b, false
	}
	for mark, repl := range sp.parts {
		i := bytes.Index(b, []byte(mark))
		if i < 0 {
			continue
		}
		next := make([]byte, 0, len(b)-len(mark)+len(repl))
		next = append(next, b[:i]...)
		next = append(next, repl...)
		next = append(next, b[i+len(mark):]...)
		b, ok = next, true
		delete(sp.parts, mark)
	}
	return b, ok
}
