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
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// HTTP names the HTTP client a Client posts with.
type HTTP int

const (
	// NetHTTP is Go's net/http client.
	NetHTTP HTTP = iota
	// FastHTTP is valyala/fasthttp's client: no goroutines or channels per
	// connection, no header maps, pooled requests and answers; it costs
	// the load generator far less CPU per call, which matters when it
	// shares the cores with the server it measures.
	FastHTTP
)

func (h HTTP) String() string {
	if h == FastHTTP {
		return "fast"
	}
	return "net"
}

// ParseHTTP parses an HTTP client's name: "fast" (fasthttp) or "net"
// (net/http).
func ParseHTTP(s string) (HTTP, error) {
	switch s {
	case "fast", "fasthttp":
		return FastHTTP, nil
	case "net", "net/http":
		return NetHTTP, nil
	}
	return 0, fmt.Errorf("unknown HTTP client %q (fast, net)", s)
}

// requestTimeout bounds each request, as net/http's Client.Timeout does.
const requestTimeout = 30 * time.Second

// Client speaks MCP streamable HTTP over one keep-alive connection.
// It is deliberately thin (no SDK) so the client costs the same against
// Picard and the bare server.
type Client struct {
	url, bearer string
	auth        string // "Bearer " + bearer, or ""
	stateless   bool
	session     string
	id          atomic.Int64

	http    *http.Client         // NetHTTP
	fast    *fasthttp.HostClient // FastHTTP
	fastErr error                // FastHTTP with a URL it cannot use
}

// New makes a net/http client of the MCP endpoint url (bearer may be
// empty).
func New(url, bearer string, stateless bool) *Client {
	return NewWith(url, bearer, stateless, NetHTTP)
}

// NewWith makes a client of the MCP endpoint url that posts with h.
// Either way it holds a single keep-alive connection.
func NewWith(url, bearer string, stateless bool, h HTTP) *Client {
	c := &Client{url: url, bearer: bearer, stateless: stateless}
	if bearer != "" {
		c.auth = "Bearer " + bearer
	}
	if h == FastHTTP {
		c.fast, c.fastErr = newFast(url)
		return c
	}
	c.http = &http.Client{
		Timeout:   requestTimeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true},
	}
	return c
}

// HTTP is the HTTP client c posts with.
func (c *Client) HTTP() HTTP {
	if c.http == nil {
		return FastHTTP
	}
	return NetHTTP
}

type rpcResponse struct {
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) err() error { return fmt.Errorf("JSON-RPC error %d: %s", e.Code, e.Message) }

// answer is one HTTP answer; body (and fast) are valid until release.
type answer struct {
	status int
	body   []byte
	hdr    http.Header        // net/http
	buf    *bytes.Buffer      // net/http: the pooled buffer body is in
	fast   *fasthttp.Response // fasthttp
}

func (a *answer) release() {
	if a.buf != nil {
		bodies.Put(a.buf)
	}
	if a.fast != nil {
		fasthttp.ReleaseResponse(a.fast)
	}
	*a = answer{}
}

// header returns the answer's headers as net/http's (a copy for fasthttp).
func (a *answer) header() http.Header {
	if a.fast == nil {
		return a.hdr
	}
	h := http.Header{}
	for k, v := range a.fast.Header.All() {
		h.Add(string(k), string(v))
	}
	return h
}

// sse reports whether the answer is a text/event-stream.
func (a *answer) sse() bool {
	if a.fast != nil {
		return bytes.HasPrefix(a.fast.Header.ContentType(), []byte("text/event-stream"))
	}
	return strings.HasPrefix(a.hdr.Get("Content-Type"), "text/event-stream")
}

// bodies are the buffers net/http answers are read into: an answer the
// client only looks at need not be a new allocation, grown from 512 bytes,
// each call (a tenth of the client's CPU for 16 KB get_memories pages).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// send posts one JSON-RPC message. The caller releases the answer, also
// after an error.
func (c *Client) send(ctx context.Context, body []byte) (answer, error) {
	if c.http == nil {
		return c.sendFast(ctx, body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, hdr: resp.Header, buf: bodies.Get().(*bytes.Buffer)}
	a.buf.Reset()
	if resp.ContentLength > 0 {
		a.buf.Grow(int(resp.ContentLength))
	}
	_, err = a.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	a.body = a.buf.Bytes()
	return a, err
}

const accept = "application/json, text/event-stream"

// exchange posts one JSON-RPC message and returns the JSON-RPC answer:
// the last data line of an SSE answer, nil for a notification. The answer
// is valid until the caller releases a, which it does also after an error.
func (c *Client) exchange(ctx context.Context, body []byte, isCall bool) (a answer, msg []byte, err error) {
	a, err = c.send(ctx, body)
	if err != nil {
		return a, nil, err
	}
	if a.status >= 300 {
		return a, nil, fmt.Errorf("HTTP %d: %s", a.status, Truncate(string(a.body)))
	}
	if !isCall {
		return a, nil, nil
	}
	if a.sse() {
		return a, sseData(a.body), nil
	}
	return a, a.body, nil
}

// Post sends one JSON-RPC message and returns the response's result.
func (c *Client) Post(ctx context.Context, msg map[string]any) (json.RawMessage, http.Header, error) {
	a, data, err := c.exchangeMsg(ctx, msg)
	defer a.release()
	hdr := a.header()
	if err != nil || data == nil {
		return nil, hdr, err
	}
	var r rpcResponse // decoding copies the result out of the answer
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, hdr, fmt.Errorf("bad JSON-RPC response: %w: %s", err, Truncate(string(data)))
	}
	if r.Error != nil {
		return nil, hdr, r.Error.err()
	}
	return r.Result, hdr, nil
}

// PostRaw sends one JSON-RPC message and returns the response's JSON
// (nil for a notification).
func (c *Client) PostRaw(ctx context.Context, msg map[string]any) ([]byte, http.Header, error) {
	a, data, err := c.exchangeMsg(ctx, msg)
	defer a.release()
	return bytes.Clone(data), a.header(), err
}

// exchangeMsg is exchange of msg encoded with json.Marshal (a message
// without an id is a notification); the caller releases the answer.
func (c *Client) exchangeMsg(ctx context.Context, msg map[string]any) (answer, []byte, error) {
	body, err := json.Marshal(msg)
	if err != nil {
		return answer{}, nil, err
	}
	_, isCall := msg["id"]
	return c.exchange(ctx, body, isCall)
}

// sseData returns the last data line of an SSE body.
func sseData(b []byte) []byte {
	var last []byte
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
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

// call posts a tools/call of name with args (or, with name "", a call of
// method without params) and returns the JSON-RPC answer, valid until the
// caller releases a (also after an error).
func (c *Client) call(ctx context.Context, method, name string, args map[string]any) (a answer, data []byte, err error) {
	bp := requests.Get().(*[]byte)
	defer requests.Put(bp)
	if name == "" {
		*bp = appendRequest((*bp)[:0], c.id.Add(1), method)
	} else if *bp, err = appendToolCall((*bp)[:0], c.id.Add(1), name, args); err != nil {
		return answer{}, nil, err
	}
	body := *bp
	if c.http != nil {
		// net/http may still read a request's body after Do returned
		// (RoundTripper's contract), so it gets its own copy
		body = bytes.Clone(body)
	}
	return c.exchange(ctx, body, true)
}

// requests are the buffers requests are encoded into.
var requests = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// CallTool calls a tool; a tool error (isError) is an error.
func (c *Client) CallTool(ctx context.Context, name string, args map[string]any) (*ToolResult, error) {
	a, data, err := c.call(ctx, "tools/call", name, args)
	defer a.release()
	if err != nil {
		return nil, err
	}
	// decoding copies what it keeps out of the answer
	var r struct {
		Result *ToolResult `json:"result"`
		Error  *rpcError   `json:"error"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("bad JSON-RPC response: %w: %s", err, Truncate(string(data)))
	}
	if r.Error != nil {
		return nil, r.Error.err()
	}
	if r.Result == nil {
		return nil, fmt.Errorf("bad tool result: no result in %s", Truncate(string(data)))
	}
	if r.Result.IsError {
		msg := ""
		if len(r.Result.Content) > 0 {
			msg = r.Result.Content[0].Text
		}
		return nil, fmt.Errorf("tool error: %s", msg)
	}
	return r.Result, nil
}

// CallToolChecked calls a tool in a load loop: the answer is checked for
// a JSON-RPC error or a tool error (isError) without being decoded, as a
// load generator such as wrk does not decode answers either; decoding a
// 16 KB get_memories answer would cost the client more CPU than the
// server spends on it, on the same two cores. Quotes inside a memory's
// text are escaped, so the markers can only be the answer's own keys.
func (c *Client) CallToolChecked(ctx context.Context, name string, args map[string]any) error {
	a, data, err := c.call(ctx, "tools/call", name, args)
	defer a.release()
	if err != nil {
		return err
	}
	if err := checkResult(data); err != nil {
		return err
	}
	if hasIsErrorTrue(data) {
		return fmt.Errorf("tool error: %s", Truncate(string(data)))
	}
	return nil
}

// hasIsErrorTrue reports whether data holds "isError":true anywhere. It
// looks for the rare capital E first: bytes.Contains of the whole marker
// starts from its quote, of which JSON is full, and then scans byte by
// byte (a tenth of the load generator's CPU for 16 KB get_memories pages).
func hasIsErrorTrue(data []byte) bool {
	const before = `"is` // the marker is before + `Error":true`
	for i := len(before); i < len(data); {
		j := bytes.Index(data[i:], []byte(`Error":true`))
		if j < 0 {
			return false
		}
		i += j
		if string(data[i-len(before):i]) == before {
			return true
		}
		i++
	}
	return false
}

// checkResult checks that a JSON-RPC answer is a result, not an error.
// An answer names its result or error right after its version and id, so
// only its head is searched for them; it is decoded only to report an
// error.
func checkResult(data []byte) error {
	head := data[:min(len(data), answerHead)]
	if bytes.Contains(head, []byte(`"result":`)) && !bytes.Contains(head, []byte(`"error":{`)) {
		return nil
	}
	var r rpcResponse
	if json.Unmarshal(data, &r) == nil && r.Error != nil {
		return r.Error.err()
	}
	return fmt.Errorf("not a JSON-RPC result: %s", Truncate(string(data)))
}

// answerHead is how far into an answer its result or error key can be:
// past {"jsonrpc":"2.0","id":…, with room for a long string id.
const answerHead = 160

// Ping sends an MCP ping.
func (c *Client) Ping(ctx context.Context) error {
	a, data, err := c.call(ctx, "ping", "", nil)
	defer a.release()
	if err != nil {
		return err
	}
	return checkResult(data)
}
