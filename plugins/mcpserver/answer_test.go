package mcpserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestToolAnswerSentWhole: a tool's JSON answer reaches the client whole,
// with a Content-Length that matches it (not chunked), its text and its
// structured content the same JSON, for a large page (get_memories) and
// for a tool error alike.
func TestToolAnswerSentWhole(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	client := s.RegisterClient(s.SuperuserToken())
	u := s.UserToken(client, "writer")
	long := strings.Repeat("a \"quoted\" line with a back\\slash, ", 40)
	for i := range 20 {
		if r := s.Tool(u, "submit_memory", map[string]any{"text": fmt.Sprintf("note %d: %s", i, long)}); r.Status != http.StatusOK {
			t.Fatalf("submit: %d %s", r.Status, r.Body)
		}
	}
	call := func(t *testing.T, accept, tool string, args map[string]any) *picardtest.Response {
		t.Helper()
		body := map[string]any{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": map[string]any{
			"name": tool, "arguments": args,
			"_meta": map[string]any{
				mcp.MetaKeyProtocolVersion:    mcp.ProtocolVersion20260728,
				mcp.MetaKeyClientInfo:         map[string]any{"name": "answer-test", "version": "1"},
				mcp.MetaKeyClientCapabilities: map[string]any{},
			}}}
		return s.Do("POST", "/mcp", map[string]string{
			"Authorization":           "Bearer " + u.Access,
			"Accept":                  accept,
			mcp.HeaderProtocolVersion: mcp.ProtocolVersion20260728,
			mcp.HeaderMethod:          "tools/call",
			"Mcp-Name":                tool,
		}, body)
	}
	type result struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
			Structured json.RawMessage `json:"structuredContent"`
			IsError    bool            `json:"isError"`
		} `json:"result"`
	}
	for _, tc := range []struct {
		name, tool string
		args       map[string]any
		isError    bool
		want       string
	}{
		{"page of 20", "get_memories", map[string]any{"limit": 20}, false, `a \"quoted\" line with a back\\slash`},
		{"tool error", "update_memory", map[string]any{"memory_id": "0b9d5f4e-3c1a-4f7e-9a2b-6d8c1e2f3a4b", "text": "x"}, true, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, "application/json, text/event-stream", tc.tool, tc.args)
			if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("want 200 application/json, got %d %q: %s", r.Status, r.Header.Get("Content-Type"), r.Body)
			}
			if n, err := strconv.Atoi(r.Header.Get("Content-Length")); err != nil || n != len(r.Body) {
				t.Fatalf("Content-Length %q for a body of %d bytes", r.Header.Get("Content-Length"), len(r.Body))
			}
			var res result
			if err := json.Unmarshal(r.Body, &res); err != nil {
				t.Fatalf("answer is not JSON: %v\n%s", err, r.Body)
			}
			if res.Result.IsError != tc.isError || len(res.Result.Content) != 1 || !strings.Contains(string(r.Body), tc.want) {
				t.Fatalf("want isError=%v and %q, got %s", tc.isError, tc.want, r.Body)
			}
			if !tc.isError {
				var text, structured any
				if json.Unmarshal([]byte(res.Result.Content[0].Text), &text) != nil || json.Unmarshal(res.Result.Structured, &structured) != nil ||
					fmt.Sprint(text) != fmt.Sprint(structured) {
					t.Fatalf("text and structured content differ:\n%s\n%s", res.Result.Content[0].Text, res.Result.Structured)
				}
				if got := len(structured.(map[string]any)["memories"].([]any)); got != 20 {
					t.Fatalf("want 20 memories, got %d", got)
				}
			}
		})
	}
}
