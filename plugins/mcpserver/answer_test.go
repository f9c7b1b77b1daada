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
	c := &rpc{s: s, token: u.Access, version: mcp.ProtocolVersion20260728}
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
			a := c.post(t, "tools/call", map[string]any{"name": tc.tool, "arguments": tc.args})
			if a.status != http.StatusOK || a.ctype != "application/json" {
				t.Fatalf("want 200 application/json, got %d %q: %s", a.status, a.ctype, a.body)
			}
			if n, err := strconv.Atoi(a.header.Get("Content-Length")); err != nil || n != len(a.body) {
				t.Fatalf("Content-Length %q for a body of %d bytes", a.header.Get("Content-Length"), len(a.body))
			}
			var res result
			if err := json.Unmarshal(a.body, &res); err != nil {
				t.Fatalf("answer is not JSON: %v\n%s", err, a.body)
			}
			if res.Result.IsError != tc.isError || len(res.Result.Content) != 1 || !strings.Contains(string(a.body), tc.want) {
				t.Fatalf("want isError=%v and %q, got %s", tc.isError, tc.want, a.body)
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
