package mcpserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

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
	parts map[string]*bytes.Buffer // quoted placeholder -> JSON it stands for
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
	spliceSeq    atomic.Uint64
	spliceMarker = []byte("picard-result-" + spliceNonce)
	buffers      = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// encodeJSON encodes v as encoding/json.Marshal does, into a pooled buffer.
func encodeJSON(v any) (*bytes.Buffer, error) {
	buf := buffers.Get().(*bytes.Buffer)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		putBuffer(buf)
		return nil, err
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	return buf, nil
}

func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 {
		buffers.Put(b)
	}
}

// result returns a CallToolResult standing for the tool answer, JSON in
// answer (the splicer owns it from now on): its text is answer as a JSON
// string, its structured content answer itself.
func (sp *resultSplicer) result(answer *bytes.Buffer) (*mcp.CallToolResult, error) {
	// quoted from a view of the buffer, not a copy (answer.String() was
	// 2.5 % of a mixed load's allocated bytes): nothing writes to answer
	// while it is encoded, and the view is dropped with the call
	var view string
	if b := answer.Bytes(); len(b) > 0 {
		view = unsafe.String(&b[0], len(b)) //nolint:gosec // see above
	}
	text, err := encodeJSON(view)
	if err != nil {
		putBuffer(answer)
		return nil, err
	}
	return sp.add(answer, text), nil
}

// add registers answer and its text under fresh placeholders.
func (sp *resultSplicer) add(answer, text *bytes.Buffer) *mcp.CallToolResult {
	base := "picard-result-" + spliceNonce + "-" + strconv.FormatUint(spliceSeq.Add(1), 10)
	textMark, structMark := base+"-t", base+"-s"
	sp.mu.Lock()
	if sp.parts == nil {
		sp.parts = map[string]*bytes.Buffer{}
	}
	sp.parts[`"`+textMark+`"`] = text
	sp.parts[`"`+structMark+`"`] = answer
	sp.mu.Unlock()
	return &mcp.CallToolResult{
		Content:           []mcp.Content{mcp.NewTextContent(textMark)},
		StructuredContent: structMark,
	}
}

// preEncoded is a result that carries its own encoding (a cached
// get_memories page: memories.ListResult.Encoded).
type preEncoded interface {
	Encoded() (structured, quoted []byte, ok bool)
}

// resultEncoded is result for an answer already encoded: structured is
// its JSON, quoted that JSON as a JSON string. Both are copied (they are
// shared with other calls; the splicer's buffers go back to a pool).
func (sp *resultSplicer) resultEncoded(structured, quoted []byte) *mcp.CallToolResult {
	answer, text := buffers.Get().(*bytes.Buffer), buffers.Get().(*bytes.Buffer)
	answer.Reset()
	text.Reset()
	answer.Write(structured)
	text.Write(quoted)
	return sp.add(answer, text)
}

// write writes b (one write of a response or of an SSE event) to w with
// the placeholders it holds replaced, and forgets those; handled is false
// when b holds none (the caller writes b itself).
func (sp *resultSplicer) write(w io.Writer, b []byte) (handled bool, err error) {
	if !bytes.Contains(b, spliceMarker) {
		return false, nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	type cut struct {
		at, n int
		repl  *bytes.Buffer
		mark  string
	}
	var cuts []cut
	for mark, repl := range sp.parts {
		if i := bytes.Index(b, []byte(mark)); i >= 0 {
			cuts = append(cuts, cut{at: i, n: len(mark), repl: repl, mark: mark})
		}
	}
	if len(cuts) == 0 {
		return false, nil
	}
	slices.SortFunc(cuts, func(a, b cut) int { return a.at - b.at })
	from := 0
	for _, c := range cuts {
		if _, err := w.Write(b[from:c.at]); err != nil {
			return true, err
		}
		if _, err := w.Write(c.repl.Bytes()); err != nil {
			return true, err
		}
		from = c.at + c.n
		delete(sp.parts, c.mark)
		putBuffer(c.repl)
	}
	_, err = w.Write(b[from:])
	return true, err
}
