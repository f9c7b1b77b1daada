package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The tools/call fast path. Most requests an MCP host sends after the
// handshake are plain tool calls on a session it opened: one JSON-RPC
// request, a known tool, no _meta (no progress token, no trace context,
// not the 2026-07-28 era), no task. For those mcp-go decodes the body four
// times, sets up a per-request session, a notification forwarder goroutine
// and its channels, and composes the tool's middleware chain — about a
// quarter of a get_memories call's CPU, three times the tool itself
// (docs/performance.md, hot path round 7). serve answers such a call here
// instead, with one decode and the same answer mcp-go would write (the
// same types, encoded the same way); anything else, and anything the fast
// path is unsure of, goes to mcp-go unchanged. TestFastCallAnswersAsMCPGo
// compares the two answer by answer.
//
// What mcp-go would have done that the fast path need not:
//   - per-request session state: Picard's tools send no notifications and
//     make no server-to-client requests, so nothing would use it;
//   - in-flight cancellation (notifications/cancelled): a fast call runs to
//     its end like one whose cancellation arrived late;
//   - the idle sweeper's clock: a session is sent through mcp-go at least
//     every fastCallTouch, so mcp-go sees it active long before its 12-hour
//     idle limit (sessionIdleTTL).

// fastCallTouch is how long a session may be served by the fast path
// alone before one of its requests goes through mcp-go again.
const fastCallTouch = time.Hour

// fastCalls counts the calls the fast path answered (tests read it).
var fastCalls atomic.Int64

// toolCall is the part of a JSON-RPC message the fast path reads.
type toolCall struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      any             `json:"id"`
	Method  string          `json:"method"`
	Result  json.RawMessage `json:"result"`
	Error   json.RawMessage `json:"error"`
	Params  *struct {
		Name      string          `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
		Meta      json.RawMessage `json:"_meta"`
		Task      json.RawMessage `json:"task"`
	} `json:"params"`
}

// parseToolCall decodes body when it is a single request of the shape the
// fast path answers; ok is false for anything else (a batch, a
// notification, another method, _meta or a task, an id that is neither a
// string nor a number).
func parseToolCall(body []byte) (c toolCall, ok bool) {
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return c, false
	}
	if json.Unmarshal(body, &c) != nil {
		return c, false
	}
	if c.JSONRPC != mcp.JSONRPC_VERSION || c.Method != string(mcp.MethodToolsCall) || c.Params == nil ||
		c.Result != nil || c.Error != nil || len(c.Params.Meta) > 0 || len(c.Params.Task) > 0 {
		return c, false
	}
	switch c.ID.(type) {
	case string, float64:
	default:
		return c, false
	}
	return c, true
}

// fastSession reports whether r's session may take the fast path: the
// transport mode's requirements on the session id hold and, when stateful,
// the session is fresh (serve found it opened by the caller in this
// process and seen by mcp-go within fastCallTouch) and not terminated.
func (h *mcpHandler) fastSession(r *http.Request, fresh bool) bool {
	if r.Header.Get("Content-Type") != "application/json" {
		return false // mcp-go parses the media type and answers what is odd
	}
	// no header: mcp-go serves the call as the negotiated (legacy) version
	if v := r.Header.Get(mcp.HeaderProtocolVersion); v != "" && (!mcp.IsValidProtocolVersion(v) || mcp.IsModernProtocol(v)) {
		return false
	}
	sid := r.Header.Get(sessionHeader)
	if h.cfg.Stateless {
		return sid == ""
	}
	if sid == "" || h.ids == nil || !fresh {
		return false
	}
	ended, err := h.ids.Validate(sid)
	return err == nil && !ended
}

// fastCall runs the call's tool with the handler mcp-go was given and
// writes the answer mcp-go would write. ctx carries the caller and the
// result splicer; w is the request's sessionRecorder.
func (h *mcpHandler) fastCall(ctx context.Context, w http.ResponseWriter, c *toolCall, handler server.ToolHandlerFunc) {
	req := mcp.CallToolRequest{}
	req.Method = c.Method
	req.Params.Name = c.Params.Name
	if len(c.Params.Arguments) > 0 {
		req.Params.RawArguments = c.Params.Arguments
	}
	fastCalls.Add(1)
	res, err := callRecovered(ctx, handler, req)
	if err == nil && res == nil {
		err = fmt.Errorf("tool '%s' handler returned no result", c.Params.Name)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if err == nil {
		buf := buffers.Get().(*bytes.Buffer)
		defer putBuffer(buf)
		if writeResultAnswer(buf, c.ID, res) {
			_, _ = w.Write(buf.Bytes()) // a failed write: the client went away
			return
		}
	}
	var answer any = mcp.NewJSONRPCResultResponse(mcp.NewRequestId(c.ID), res)
	if err != nil { // as mcp-go's handlerError: an internal error
		answer = mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(c.ID),
			Error: mcp.NewJSONRPCErrorDetails(mcp.INTERNAL_ERROR, err.Error(), nil)}
	}
	_ = json.NewEncoder(w).Encode(answer) // a failed write: the client went away
}

// writeResultAnswer writes into buf (reset first) the JSON-RPC answer
// carrying res, byte for byte as encoding/json writes
// mcp.NewJSONRPCResultResponse(id, res) with its newline, for the results
// Picard's tools return: content, optionally structured content and
// isError, nothing else. encoding/json takes a CallToolResult through its
// MarshalJSON (a map, its keys sorted) and then re-scans that output to
// compact it, ~17 µs a call; here only the content items and the
// structured content go through encoding/json, as values of their own
// types. It is false for any other result (buf then holds nothing of
// use): the caller encodes it the general way.
func writeResultAnswer(buf *bytes.Buffer, id any, res *mcp.CallToolResult) bool {
	buf.Reset()
	if res.Meta != nil || res.ResultType != "" || len(res.InputRequests) > 0 || res.RequestState != "" ||
		len(res.RawStructuredContent) > 0 {
		return false
	}
	enc := json.NewEncoder(buf) // HTML-escaping, as json.Marshal and the encoder of the answer
	value := func(v any) bool {
		if err := enc.Encode(v); err != nil {
			return false
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		return true
	}
	buf.WriteString(`{"jsonrpc":"2.0","id":`)
	if !value(id) {
		return false
	}
	// the map's keys in order: content, isError, structuredContent
	buf.WriteString(`,"result":{"content":[`)
	for i, item := range res.Content {
		if i > 0 {
			buf.WriteByte(',')
		}
		if !value(item) {
			return false
		}
	}
	buf.WriteByte(']')
	if res.IsError {
		buf.WriteString(`,"isError":true`)
	}
	if res.StructuredContent != nil {
		buf.WriteString(`,"structuredContent":`)
		if !value(res.StructuredContent) {
			return false
		}
	}
	buf.WriteString("}}\n")
	return true
}

// callRecovered is mcp-go's WithRecovery around handler: a panic becomes
// the error mcp-go would report.
func callRecovered(ctx context.Context, handler server.ToolHandlerFunc, req mcp.CallToolRequest) (res *mcp.CallToolResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = nil, fmt.Errorf("panic recovered in %s tool handler: %v", req.Params.Name, p)
		}
	}()
	return handler(ctx, req)
}
