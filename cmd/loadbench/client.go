package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// mcpClient speaks MCP streamable HTTP over one keep-alive connection.
// It is deliberately thin (no SDK) so the client costs the same against
// Picard and the bare server.
type mcpClient struct {
	url, bearer string
	stateless   bool
	session     string
	http        *http.Client
	id          atomic.Int64
}

func newMCPClient(url, bearer string, stateless bool) *mcpClient {
	return &mcpClient{url: url, bearer: bearer, stateless: stateless, http: &http.Client{
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

// post sends one JSON-RPC message and returns the response's result.
func (c *mcpClient) post(ctx context.Context, msg map[string]any) (json.RawMessage, http.Header, error) {
	data, hdr, err := c.postRaw(ctx, msg)
	if err != nil || data == nil {
		return nil, hdr, err
	}
	var r rpcResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, hdr, fmt.Errorf("bad JSON-RPC response: %w: %s", err, truncate(string(data)))
	}
	if r.Error != nil {
		return nil, hdr, fmt.Errorf("JSON-RPC error %d: %s", r.Error.Code, r.Error.Message)
	}
	return r.Result, hdr, nil
}

// postRaw sends one JSON-RPC message and returns the response's JSON
// (nil for a notification).
func (c *mcpClient) postRaw(ctx context.Context, msg map[string]any) ([]byte, http.Header, error) {
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
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, resp.Header, err
	}
	if resp.StatusCode >= 300 {
		return nil, resp.Header, fmt.Errorf("HTTP %d: %s", resp.StatusCode, truncate(string(data)))
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

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func (c *mcpClient) request(method string, params any) map[string]any {
	m := map[string]any{"jsonrpc": "2.0", "id": c.id.Add(1), "method": method}
	if params != nil {
		m["params"] = params
	}
	return m
}

// initialize opens a session (stateful) and sends notifications/initialized.
func (c *mcpClient) initialize(ctx context.Context) error {
	_, hdr, err := c.post(ctx, c.request("initialize", map[string]any{
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
	if _, _, err := c.post(ctx, map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}); err != nil {
		return fmt.Errorf("initialized: %w", err)
	}
	return nil
}

// toolResult is the part of a CallToolResult the bench reads.
type toolResult struct {
	IsError           bool            `json:"isError"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	Content           []struct {
		Text string `json:"text"`
	} `json:"content"`
}

// callTool calls a tool; a tool error (isError) is an error.
func (c *mcpClient) callTool(ctx context.Context, name string, args map[string]any) (*toolResult, error) {
	raw, _, err := c.post(ctx, c.request("tools/call", map[string]any{"name": name, "arguments": args}))
	if err != nil {
		return nil, err
	}
	var r toolResult
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

// callToolChecked calls a tool in a load loop: the answer is checked for
// a JSON-RPC error or a tool error (isError) without being decoded, as a
// load generator such as wrk does not decode answers either; decoding a
// 16 KB get_memories answer would cost the client more CPU than the
// server spends on it, on the same two cores. Quotes inside a memory's
// text are escaped, so the markers can only be the answer's own keys.
func (c *mcpClient) callToolChecked(ctx context.Context, name string, args map[string]any) error {
	data, _, err := c.postRaw(ctx, c.request("tools/call", map[string]any{"name": name, "arguments": args}))
	if err != nil {
		return err
	}
	if !bytes.Contains(data, []byte(`"result":`)) || bytes.Contains(data, []byte(`"error":{`)) {
		return fmt.Errorf("not a tool result: %s", truncate(string(data)))
	}
	if bytes.Contains(data, []byte(`"isError":true`)) {
		return fmt.Errorf("tool error: %s", truncate(string(data)))
	}
	return nil
}

func (c *mcpClient) ping(ctx context.Context) error {
	_, _, err := c.post(ctx, c.request("ping", nil))
	return err
}

// drive runs op on every client concurrently for d and collects latencies.
// op gets the client and its index.
func drive(ctx context.Context, clients []*mcpClient, d time.Duration, op func(*mcpClient, int) error) Result {
	var (
		mu       sync.Mutex
		all      []time.Duration
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			n := 0
			var first string
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				err := op(cl, i)
				lat = append(lat, time.Since(t0))
				if err != nil {
					n++
					if first == "" {
						first = err.Error()
					}
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += n
			if firstErr == "" {
				firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := Result{Requests: len(all), Errors: errs, Elapsed: time.Since(start), FirstError: firstErr}
	slices.Sort(all)
	if len(all) > 0 {
		r.P50 = all[len(all)*50/100]
		r.P99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return r
}

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// us formats a CPU time per request in microseconds.
func us(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return strconv.FormatInt(d.Microseconds(), 10) + " µs"
}
