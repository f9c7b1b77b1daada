// Package mcpload is a thin MCP streamable-HTTP client for load benches
// (cmd/loadbench, make bench): one keep-alive connection, JSON-RPC posted
// as bytes, answers decoded only as far as a bench needs. It is
// deliberately not the SDK client, so the client costs the same against
// Picard and the bare server and leaves the two cores to the server, as
// a load generator such as wrk does.
package mcpload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client speaks MCP streamable HTTP over one keep-alive connection.
// It is deliberately thin (no SDK) so the client costs the same against
// Picard and the bare server.
type Client struct {
	url, bearer string
	stateless   bool
	session     string
	http        *http.Client
	id          atomic.Int64
}

// New makes a client of the MCP endpoint url (bearer may be empty).
func New(url, bearer string, stateless bool) *Client {
	return &Client{url: url, bearer: bearer, stateless: stateless, http: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true},
	}}
}

type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Post sends one JSON-RPC message and returns the response's result.
func (c *Client) Post(ctx context.Context, msg map[string]any) (json.RawMessage, http.Header, error) {
	data, hdr, err := c.PostRaw(ctx, msg)
	if err != nil || data == nil {
		return nil, hdr, err
	}
	var r rpcResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, hdr, fmt.Errorf("bad JSON-RPC response: %w: %s", err, Truncate(string(data)))
	}
	if r.Error != nil {
		return nil, hdr, fmt.Errorf("JSON-RPC error %d: %s", r.Error.Code, r.Error.Message)
	}
	return r.Result, hdr, nil
}

// PostRaw sends one JSON-RPC message and returns the response's JSON
// (nil for a notification).
func (c *Client) PostRaw(ctx context.Context, msg map[string]any) ([]byte, http.Header, error) {
	return c.post(ctx, msg, nil)
}

// bodies are the buffers CallToolChecked reads answers into: an answer it
// only looks at need not be a new allocation, grown from 512 bytes, each
// call (a tenth of the client's CPU for 16 KB get_memories pages).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// post is PostRaw, reading the answer into buf when it is not nil (the
// answer is then buf's bytes, valid until buf is reused).
func (c *Client) post(ctx context.Context, msg map[string]any, buf *bytes.Buffer) ([]byte, http.Header, error) {
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	var data []byte
	if buf != nil {
		buf.Reset()
		if resp.ContentLength > 0 {
			buf.Grow(int(resp.ContentLength))
		}
		_, err = buf.ReadFrom(resp.Body)
		data = buf.Bytes()
	} else {
		data, err = io.ReadAll(resp.Body)
	}
	resp.Body.Close()
	if err != nil {
		return nil, resp.Header, err
	}
	if resp.StatusCode >= 300 {
		return nil, resp.Header, fmt.Errorf("HTTP %d: %s", resp.StatusCode, Truncate(string(data)))
	}
	if _, isCall := msg["id"]; !isCall {
		return nil, resp.Header, nil
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		data = sseData(data)
	}
	return data, resp.Header, nil
}

// sseData returns the last data line of an SSE body.
func sseData(b []byte) []byte {
	var last []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			last = bytes.TrimSpace(d)
		}
	}
	return last
}

// Truncate shortens s for an error message.
func Truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// Request builds a JSON-RPC request with the next id.
func (c *Client) Request(method string, params any) map[string]any {
	m := map[string]any{"jsonrpc": "2.0", "id": c.id.Add(1), "method": method}
	if params != nil {
		m["params"] = params
	}
	return m
}

// Initialize opens a session (stateful) and sends notifications/initialized.
func (c *Client) Initialize(ctx context.Context) error {
	_, hdr, err := c.Post(ctx, c.Request("initialize", map[string]any{
		"protocolVersion": "2025-06-18",
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]any{"name": "loadbench", "version": "1"},
	}))
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if !c.stateless {
		c.session = hdr.Get("Mcp-Session-Id")
		if c.session == "" {
			return errors.New("initialize: no Mcp-Session-Id in a stateful server's answer")
		}
	}
	if _, _, err := c.Post(ctx, map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}); err != nil {
		return fmt.Errorf("initialized: %w", err)
	}
	return nil
}

// ToolResult is the part of a CallToolResult the bench reads.
type ToolResult struct {
	IsError           bool            `json:"isError"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	Content           []struct {
		Text string `json:"text"`
	} `json:"content"`
}

// CallTool calls a tool; a tool error (isError) is an error.
func (c *Client) CallTool(ctx context.Context, name string, args map[string]any) (*ToolResult, error) {
	raw, _, err := c.Post(ctx, c.Request("tools/call", map[string]any{"name": name, "arguments": args}))
	if err != nil {
		return nil, err
	}
	var r ToolResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("bad tool result: %w", err)
	}
	if r.IsError {
		msg := ""
		if len(r.Content) > 0 {
			msg = r.Content[0].Text
		}
		return nil, fmt.Errorf("tool error: %s", msg)
	}
	return &r, nil
}

// CallToolChecked calls a tool in a load loop: the answer is checked for
// a JSON-RPC error or a tool error (isError) without being decoded, as a
// load generator such as wrk does not decode answers either; decoding a
// 16 KB get_memories answer would cost the client more CPU than the
// server spends on it, on the same two cores. Quotes inside a memory's
// text are escaped, so the markers can only be the answer's own keys.
//
// A JSON-RPC answer names its result or error right after its version and
// id, so only its head is searched for them; isError may come last.
func (c *Client) CallToolChecked(ctx context.Context, name string, args map[string]any) error {
	buf := bodies.Get().(*bytes.Buffer)
	defer bodies.Put(buf)
	data, _, err := c.post(ctx, c.Request("tools/call", map[string]any{"name": name, "arguments": args}), buf)
	if err != nil {
		return err
	}
	head := data[:min(len(data), answerHead)]
	if !bytes.Contains(head, []byte(`"result":`)) || bytes.Contains(head, []byte(`"error":{`)) {
		return fmt.Errorf("not a tool result: %s", Truncate(string(data)))
	}
	if bytes.Contains(data, []byte(`"isError":true`)) {
		return fmt.Errorf("tool error: %s", Truncate(string(data)))
	}
	return nil
}

// answerHead is how far into an answer its result or error key can be:
// past {"jsonrpc":"2.0","id":…, with room for a long string id.
const answerHead = 160

// Ping sends an MCP ping.
func (c *Client) Ping(ctx context.Context) error {
	_, _, err := c.Post(ctx, c.Request("ping", nil))
	return err
}
