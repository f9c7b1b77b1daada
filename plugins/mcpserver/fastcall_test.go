package mcpserver_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/plugins/mcpserver"
)

// raw posts body to /mcp as c would post a call, and returns the answer.
func (c *rpc) raw(t *testing.T, body string) answer {
	t.Helper()
	return c.send(t, []byte(body), nil)
}

// newIDs hides what differs between two submits of the same memory.
var newIDs = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d{4}-\d\d-\d\dT[0-9:.]+Z`)

// TestFastCallAnswersAsMCPGo: a plain tools/call of a legacy session is
// answered by Picard's fast path, and its answer is byte for byte the one
// mcp-go writes for the same call (sent with an empty _meta, which takes
// it through mcp-go): results, tool errors, bad arguments, string and
// number ids, in stateful and stateless mode. Calls the fast path must
// leave alone still reach mcp-go: a terminated session gets its 404, a
// batch and an unknown tool their JSON-RPC answers, a missing scope its 403.
func TestFastCallAnswersAsMCPGo(t *testing.T) {
	for _, mode := range []string{"stateful", "stateless"} {
		t.Run(mode, func(t *testing.T) {
			env := map[string]string{}
			if mode == "stateless" {
				env["PICARD_MCP_STATELESS"] = "true"
			}
			s := picardtest.Start(t, picardtest.Options{Env: env})
			su := s.SuperuserToken()
			u := s.UserToken(s.RegisterClient(su), "writer")
			for i := range 5 {
				if r := s.Tool(u, "submit_memory", map[string]any{"text": fmt.Sprintf("fast path note %d about \"quotes\" and <tags>", i)}); r.Status != http.StatusOK {
					t.Fatalf("submit: %d %s", r.Status, r.Body)
				}
			}
			c := &rpc{s: s, token: u.Access, version: mcp.ProtocolVersion20250618}
			if mode == "stateful" {
				if a := c.post(t, "initialize", map[string]any{"protocolVersion": c.version, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "t", "version": "1"}}); a.status != 200 || c.session == "" {
					t.Fatalf("initialize: %d %s", a.status, a.body)
				}
			}
			for _, tc := range []struct{ name, id, call string }{
				{"page", `1`, `"name":"get_memories","arguments":{"limit":20}`},
				{"search", `"q-1"`, `"name":"query_memory","arguments":{"query":"quotes tags","limit":3}`},
				{"tool error", `2`, `"name":"update_memory","arguments":{"memory_id":"0b9d5f4e-3c1a-4f7e-9a2b-6d8c1e2f3a4b","text":"x"}`},
				{"bad argument", `3.5`, `"name":"get_memories","arguments":{"limit":"twenty"}`},
				{"no arguments", `4`, `"name":"get_memories"`},
				{"write", `5`, `"name":"submit_memory","arguments":{"text":"written twice"}`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if tc.name == "no arguments" { // and no protocol version header, which mcp-go accepts
						defer func(v string) { c.version = v }(c.version)
						c.version = ""
					}
					before := mcpserver.FastCalls()
					fast := c.raw(t, `{"jsonrpc":"2.0","id":`+tc.id+`,"method":"tools/call","params":{`+tc.call+`}}`)
					if got := mcpserver.FastCalls() - before; got != 1 {
						t.Fatalf("the fast path answered %d calls, want 1", got)
					}
					slow := c.raw(t, `{"jsonrpc":"2.0","id":`+tc.id+`,"method":"tools/call","params":{`+tc.call+`,"_meta":{}}}`)
					if got := mcpserver.FastCalls() - before; got != 1 {
						t.Fatalf("a call with _meta took the fast path")
					}
					if fast.status != slow.status || fast.ctype != slow.ctype || fast.header.Get("Content-Length") == "" {
						t.Fatalf("fast %d %q (length %q), mcp-go %d %q", fast.status, fast.ctype, fast.header.Get("Content-Length"), slow.status, slow.ctype)
					}
					f, g := fast.body, slow.body
					if tc.name == "write" {
						f, g = newIDs.ReplaceAll(f, []byte("X")), newIDs.ReplaceAll(g, []byte("X"))
					}
					if !bytes.Equal(f, g) {
						t.Fatalf("answers differ:\nfast:   %s\nmcp-go: %s", fast.body, slow.body)
					}
					var m map[string]any
					if json.Unmarshal(fast.body, &m) != nil || m["result"] == nil {
						t.Fatalf("not a JSON-RPC result: %s", fast.body)
					}
				})
			}

			before := mcpserver.FastCalls()
			if a := c.raw(t, `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_memories"}}]`); a.status == 200 && bytes.Contains(a.body, []byte(`"memories"`)) {
				t.Fatalf("a batch was answered: %s", a.body)
			}
			if a := c.raw(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"no_such_tool"}}`); !bytes.Contains(a.body, []byte("not found")) {
				t.Fatalf("unknown tool: %d %s", a.status, a.body)
			}
			reader := s.UserToken(s.RegisterClient(su, "memories:read"), "reader")
			r := &rpc{s: s, token: reader.Access, version: c.version, session: c.session}
			if mode == "stateful" {
				r.session = ""
				r.post(t, "initialize", map[string]any{"protocolVersion": r.version, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "t", "version": "1"}})
			}
			if a := r.raw(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"submit_memory","arguments":{"text":"no"}}}`); a.status != http.StatusForbidden {
				t.Fatalf("a read-only token wrote: %d %s", a.status, a.body)
			}
			if mcpserver.FastCalls() != before {
				t.Fatal("the fast path answered a batch, an unknown tool or a refused call")
			}
			if mode == "stateful" {
				req, _ := http.NewRequest("DELETE", s.URL+"/mcp", nil)
				req.Header.Set("Authorization", "Bearer "+u.Access)
				req.Header.Set("Mcp-Session-Id", c.session)
				req.Header.Set(mcp.HeaderProtocolVersion, c.version)
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode >= 300 {
					t.Fatalf("delete session: %v %v", err, resp)
				}
				resp.Body.Close()
				if a := c.raw(t, `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_memories"}}`); a.status != http.StatusNotFound {
					t.Fatalf("a terminated session was served: %d %s", a.status, a.body)
				}
			}
		})
	}
}
