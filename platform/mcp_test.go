package platform_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// connect opens an MCP session over streamable HTTP as u.
func connect(t *testing.T, s *picardtest.Server, u picardtest.User) *mcpclient.Client {
	t.Helper()
	c, err := mcpclient.NewStreamableHttpClient(s.URL+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + u.Access}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "picard-test", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func callTool(t *testing.T, c *mcpclient.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatalf("%s: protocol error %v (tool errors must be isError results)", name, err)
	}
	return res
}

func resultText(r *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func structured(t *testing.T, r *mcp.CallToolResult, v any) {
	t.Helper()
	b, err := json.Marshal(r.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
}

func TestMCPToolsListAndSchemas(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	c := connect(t, s, alice)
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"submit_memory": false, "update_memory": false, "delete_memory": false, "get_memories": false, "query_memory": false, "modify_permissions": false, "query_user": false,
		"lookup_users": false, "lookup_groups": false, "list_permissions": false, "get_memory": false, "memory_access_log": false}
	for _, tool := range res.Tools {
		if _, ok := want[tool.Name]; !ok {
			t.Errorf("unexpected tool %s", tool.Name)
			continue
		}
		want[tool.Name] = true
		if tool.Description == "" || tool.OutputSchema.Type != "object" {
			t.Errorf("%s: needs a description and an output schema", tool.Name)
		}
		if tool.Annotations.ReadOnlyHint == nil || tool.Annotations.DestructiveHint == nil {
			t.Errorf("%s: annotations missing", tool.Name)
		}
	}
	for name, seen := range want {
		if !seen {
			t.Errorf("tool %s not listed", name)
		}
	}
	// a bad argument is a tool error naming the argument, not a protocol error
	r := callTool(t, c, "submit_memory", map[string]any{"text": "x", "permission": "everyone"})
	if !r.IsError || !strings.HasPrefix(resultText(r), "permission:") {
		t.Fatalf("bad argument: want isError naming permission, got %v %q", r.IsError, resultText(r))
	}
	// results carry structured content and the same JSON as text
	r = callTool(t, c, "submit_memory", map[string]any{"text": "structured and text"})
	var m memory
	structured(t, r, &m)
	var fromText memory
	if err := json.Unmarshal([]byte(resultText(r)), &fromText); err != nil || r.IsError || m.ID == "" || fromText.ID != m.ID {
		t.Fatalf("result: %+v / %q", m, resultText(r))
	}
}

// TestMCPPermissionMatrix: every tool and resource × (own, public,
// shared-with-me, someone's private, missing) as seen by bob.
func TestMCPPermissionMatrix(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	client := s.RegisterClient(s.SuperuserToken())
	alice, bob := s.UserToken(client, "alice"), s.UserToken(client, "bob")
	ac, bc := connect(t, s, alice), connect(t, s, bob)

	mk := func(c *mcpclient.Client, args map[string]any) memory {
		r := callTool(t, c, "submit_memory", args)
		if r.IsError {
			t.Fatalf("submit: %s", resultText(r))
		}
		var m memory
		structured(t, r, &m)
		return m
	}
	targets := map[string]string{
		"own":     mk(bc, map[string]any{"text": "matrix bob own note about kayaks"}).ID,
		"public":  mk(ac, map[string]any{"text": "matrix alice public note about kayaks", "permission": "public"}).ID,
		"shared":  mk(ac, map[string]any{"text": "matrix alice shared note about kayaks", "permission": "shared", "shared_with": []string{bob.ID}}).ID,
		"private": mk(ac, map[string]any{"text": "matrix alice private note about kayaks"}).ID,
		"missing": "0b7e6a38-3d5f-4c39-9a43-6f2d1c8e9b10",
	}
	readable := map[string]bool{"own": true, "public": true, "shared": true}

	found := map[string]bool{}
	r := callTool(t, bc, "query_memory", map[string]any{"query": "matrix note about kayaks", "limit": 50})
	var q struct{ Memories []memory }
	structured(t, r, &q)
	for _, m := range q.Memories {
		found[m.ID] = true
	}
	listed := map[string]bool{}
	r = callTool(t, bc, "get_memories", map[string]any{})
	var l struct{ Memories []memory }
	structured(t, r, &l)
	for _, m := range l.Memories {
		listed[m.ID] = true
	}

	var notFound []string
	for kind, id := range targets {
		// query_memory: exactly what bob may read
		if found[id] != readable[kind] {
			t.Errorf("query_memory/%s: found=%v want %v", kind, found[id], readable[kind])
		}
		// get_memories: only bob's own
		if listed[id] != (kind == "own") {
			t.Errorf("get_memories/%s: listed=%v", kind, listed[id])
		}
		// resource memory://{id}
		rr := mcp.ReadResourceRequest{}
		rr.Params.URI = "memory://" + id
		res, err := bc.ReadResource(context.Background(), rr)
		if readable[kind] {
			if err != nil || len(res.Contents) != 1 || !strings.Contains(res.Contents[0].(mcp.TextResourceContents).Text, "kayaks") {
				t.Errorf("resource/%s: want the text, got %v %v", kind, res, err)
			}
		} else {
			if err == nil {
				t.Errorf("resource/%s: must not be readable", kind)
			} else {
				notFound = append(notFound, strings.ReplaceAll(err.Error(), id, "ID"))
			}
		}
		// owner-only tools: only "own" succeeds, the rest look missing
		for _, tc := range []struct {
			tool string
			args map[string]any
		}{
			{"update_memory", map[string]any{"memory_id": id, "text": "matrix bob edited kayaks"}},
			{"modify_permissions", map[string]any{"memory_id": id, "permission": "private"}},
			{"delete_memory", map[string]any{"memory_id": id}},
		} {
			res := callTool(t, bc, tc.tool, tc.args)
			if kind == "own" {
				if res.IsError {
					t.Errorf("%s/own: %s", tc.tool, resultText(res))
				}
				continue
			}
			if !res.IsError || resultText(res) != "memory_id: memory not found" {
				t.Errorf("%s/%s: want 'memory_id: memory not found', got %v %q", tc.tool, kind, res.IsError, resultText(res))
			}
		}
	}
	for _, e := range notFound[1:] {
		if e != notFound[0] {
			t.Errorf("unreadable resources must fail alike: %q vs %q", e, notFound[0])
		}
	}
	// alice's memories are untouched by bob's attempts
	var al struct{ Memories []memory }
	structured(t, callTool(t, ac, "get_memories", map[string]any{}), &al)
	if len(al.Memories) != 3 {
		t.Fatalf("alice's memories changed: %+v", al.Memories)
	}
	// the listing resource shows the caller's own memories only
	rr := mcp.ReadResourceRequest{}
	rr.Params.URI = "memories://mine"
	res, err := ac.ReadResource(context.Background(), rr)
	if err != nil || strings.Count(res.Contents[0].(mcp.TextResourceContents).Text, `"id"`) != 3 {
		t.Fatalf("memories://mine: %v %v", res, err)
	}
	// query_user: alice's persona draws on public and shared-with-bob, never private
	var ans struct {
		Answer      string   `json:"answer"`
		MemoryIDs   []string `json:"memory_ids"`
		LLMAnswered bool     `json:"llm_answered"`
	}
	structured(t, callTool(t, bc, "query_user", map[string]any{"user_id": alice.ID, "query": "kayaks"}), &ans)
	used := strings.Join(ans.MemoryIDs, ",")
	if !strings.Contains(used, targets["public"]) || !strings.Contains(used, targets["shared"]) || strings.Contains(used, targets["private"]) || strings.Contains(ans.Answer, "private note") {
		t.Fatalf("query_user used %v: %q", ans.MemoryIDs, ans.Answer)
	}
	if ans.LLMAnswered || !strings.HasPrefix(ans.Answer, "[Not an AI answer") {
		t.Fatalf("without an LLM the answer must be the labelled fallback: %q", ans.Answer)
	}
}

func TestMCPSessionsAndScopes(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	su := s.SuperuserToken()
	client := s.RegisterClient(su)
	alice, bob := s.UserToken(client, "alice"), s.UserToken(client, "bob")
	reader := s.UserToken(s.RegisterClient(su, "memories:read"), "carol")

	post := func(u picardtest.User, session string, body string, headers map[string]string) *picardtest.Response {
		h := map[string]string{"Accept": "application/json, text/event-stream"}
		if u.Access != "" {
			h["Authorization"] = "Bearer " + u.Access
		}
		if session != "" {
			h["Mcp-Session-Id"] = session
		}
		for k, v := range headers {
			h[k] = v
		}
		return s.Do("POST", "/mcp", h, body)
	}
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	r := post(alice, "", initBody, nil)
	sid := r.Header.Get("Mcp-Session-Id")
	if r.Status != 200 || len(sid) < 20 {
		t.Fatalf("initialize: %d %q %s", r.Status, sid, r.Body)
	}
	post(alice, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil)
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if r := post(alice, sid, list, nil); r.Status != 200 {
		t.Fatalf("alice on her session: %d %s", r.Status, r.Body)
	}
	if r := post(bob, sid, list, nil); r.Status != http.StatusForbidden {
		t.Fatalf("bob's token on alice's session: want 403, got %d %s", r.Status, r.Body)
	}
	if r := post(picardtest.User{}, sid, list, nil); r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Fatalf("no token: want 401 with resource_metadata, got %d", r.Status)
	}
	// a session the client ended is gone: its id is answered 404, so a
	// client starts a new session (and nobody else can pick the id up)
	if r := s.Do("DELETE", "/mcp", map[string]string{"Authorization": "Bearer " + alice.Access, "Mcp-Session-Id": sid}, nil); r.Status != 200 {
		t.Fatalf("DELETE the session: %d %s", r.Status, r.Body)
	}
	for _, u := range []picardtest.User{alice, bob} {
		if r := post(u, sid, list, nil); r.Status != http.StatusNotFound {
			t.Fatalf("a terminated session: want 404, got %d %s", r.Status, r.Body)
		}
	}
	// DNS rebinding: refused before authentication
	if r := post(picardtest.User{}, "", initBody, map[string]string{"Origin": "http://evil.example"}); r.Status != http.StatusForbidden {
		t.Fatalf("foreign Origin: want 403, got %d", r.Status)
	}
	req, _ := http.NewRequest("POST", s.URL+"/mcp", strings.NewReader(initBody))
	req.Host = "evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Host: want 403, got %d", resp.StatusCode)
	}
	// a read-only token calling a write tool: HTTP 403 insufficient_scope
	r = post(reader, "", initBody, nil)
	rsid := r.Header.Get("Mcp-Session-Id")
	call := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"submit_memory","arguments":{"text":"nope"}}}`
	r = post(reader, rsid, call, nil)
	if r.Status != http.StatusForbidden || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="insufficient_scope", scope="memories:write"`) {
		t.Fatalf("write with read scope: want 403 insufficient_scope, got %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	// the same call in a batch beside a message whose params have another
	// shape (a number for a name) is refused too
	batch := `[{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":5}},` + call + `]`
	r = post(reader, rsid, batch, nil)
	if r.Status != http.StatusForbidden || !strings.Contains(r.Header.Get("WWW-Authenticate"), `scope="memories:write"`) {
		t.Fatalf("write in a batch with read scope: want 403 insufficient_scope, got %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
}

// recordingLLM is a local OpenAI-compatible chat server (a stand-in for the
// real API, which cannot be reached here) that records every prompt.
type recordingLLM struct {
	mu      sync.Mutex
	prompts []string
}

func (l *recordingLLM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.NotFound(w, r)
		return
	}
	b, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	l.prompts = append(l.prompts, string(b))
	l.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"c1","object":"chat.completion","created":1,"model":"recorder-1","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"I paddle my kayak on the lake every Sunday."}}]}`)
}

func TestPersonaThroughLLM(t *testing.T) {
	llm := &recordingLLM{}
	srv := httptest.NewServer(llm)
	defer srv.Close()
	s := picardtest.Start(t, picardtest.Options{Env: map[string]string{
		"OPENAI_BASE_URL": srv.URL + "/v1", "OPENAI_API_KEY": "test-key", "PICARD_LLM_MODEL": "recorder-1",
	}})
	client := s.RegisterClient(s.SuperuserToken())
	alice, bob := s.UserToken(client, "alice"), s.UserToken(client, "bob")
	pub := submit(t, s, alice, map[string]any{"text": "I paddle my kayak on the lake every Sunday", "permission": "public"})
	priv := submit(t, s, alice, map[string]any{"text": "My kayak storage padlock code is 9931"})
	r := s.Tool(bob, "query_user", map[string]any{"user_id": alice.ID, "query": "what do you do with your kayak?"})
	if r.Status != 200 {
		t.Fatalf("query_user: %d %s", r.Status, r.Body)
	}
	var ans struct {
		Answer      string   `json:"answer"`
		MemoryIDs   []string `json:"memory_ids"`
		Model       string   `json:"model"`
		LLMAnswered bool     `json:"llm_answered"`
	}
	r.JSON(t, &ans)
	if !ans.LLMAnswered || ans.Model != "recorder-1" || ans.Answer != "I paddle my kayak on the lake every Sunday." {
		t.Fatalf("the answer must come from the LLM: %+v", ans)
	}
	if len(ans.MemoryIDs) != 1 || ans.MemoryIDs[0] != pub.ID {
		t.Fatalf("memories used: %v", ans.MemoryIDs)
	}
	llm.mu.Lock()
	defer llm.mu.Unlock()
	if len(llm.prompts) != 1 {
		t.Fatalf("want one LLM call, got %d", len(llm.prompts))
	}
	p := llm.prompts[0]
	if !strings.Contains(p, "I paddle my kayak on the lake every Sunday") {
		t.Fatalf("the public memory must be in the prompt: %s", p)
	}
	if strings.Contains(p, "9931") || strings.Contains(p, priv.ID) {
		t.Fatalf("a private memory reached the LLM: %s", p)
	}
	if r := s.Tool(bob, "query_user", map[string]any{"user_id": "0b7e6a38-3d5f-4c39-9a43-6f2d1c8e9b10", "query": "hi"}); r.Status != http.StatusNotFound {
		t.Fatalf("unknown user: want 404, got %d %s", r.Status, r.Body)
	}
}

// TestMCPProtocolVersions: every handshake version mcp-go supports is
// negotiated as asked (2026-07-28, which has no handshake, is what the
// mcp-go client in the other tests speaks).
func TestMCPProtocolVersions(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	for _, v := range []string{"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"} {
		body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"` + v + `","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
		r := s.Do("POST", "/mcp", map[string]string{"Authorization": "Bearer " + alice.Access, "Accept": "application/json, text/event-stream"}, body)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"protocolVersion":"`+v+`"`) {
			t.Errorf("version %s: %d %s", v, r.Status, r.Body)
		}
	}
	c := connect(t, s, alice)
	if _, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); err != nil {
		t.Fatalf("%s: %v", mcp.LATEST_PROTOCOL_VERSION, err)
	}
}

// TestMCPStatelessMode: with PICARD_MCP_STATELESS=true no session is kept,
// so any replica can answer any request.
func TestMCPStatelessMode(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{Env: map[string]string{"PICARD_MCP_STATELESS": "true"}})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	h := map[string]string{"Authorization": "Bearer " + alice.Access, "Accept": "application/json, text/event-stream"}
	r := s.Do("POST", "/mcp", h, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	if r.Status != 200 || r.Header.Get("Mcp-Session-Id") != "" {
		t.Fatalf("stateless initialize: %d session %q", r.Status, r.Header.Get("Mcp-Session-Id"))
	}
	h["MCP-Protocol-Version"] = "2025-06-18"
	r = s.Do("POST", "/mcp", h, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"submit_memory","arguments":{"text":"stateless works"}}}`)
	if r.Status != 200 || !strings.Contains(string(r.Body), "stateless works") {
		t.Fatalf("stateless tools/call: %d %s", r.Status, r.Body)
	}
}
