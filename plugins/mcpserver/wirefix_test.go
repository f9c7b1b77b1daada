package mcpserver_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// rpc posts one JSON-RPC message to /mcp as a streamable HTTP client does.
type rpc struct {
	s       *picardtest.Server
	token   string
	version string // protocol version header
	session string // legacy session id
}

type answer struct {
	status int
	ctype  string
	body   []byte
	header http.Header
}

func (c *rpc) post(t *testing.T, method string, params map[string]any) answer {
	t.Helper()
	if c.version == mcp.ProtocolVersion20260728 {
		params["_meta"] = map[string]any{
			mcp.MetaKeyProtocolVersion:    c.version,
			mcp.MetaKeyClientInfo:         map[string]any{"name": "wirefix-test", "version": "1"},
			mcp.MetaKeyClientCapabilities: map[string]any{},
		}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	a := c.send(t, body, func(h http.Header) {
		if c.version == mcp.ProtocolVersion20260728 {
			h.Set(mcp.HeaderMethod, method)
			if uri, ok := params["uri"].(string); ok {
				h.Set("Mcp-Name", uri)
			}
			if name, ok := params["name"].(string); ok && method == "tools/call" {
				h.Set("Mcp-Name", name)
			}
		}
	})
	if method == "initialize" {
		c.session = a.header.Get("Mcp-Session-Id")
	}
	return a
}

// send posts body to /mcp with c's token, version (when set) and session,
// and the headers more sets.
func (c *rpc) send(t *testing.T, body []byte, more func(http.Header)) answer {
	t.Helper()
	req, err := http.NewRequest("POST", c.s.URL+"/mcp", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.version != "" {
		req.Header.Set(mcp.HeaderProtocolVersion, c.version)
	}
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	if more != nil {
		more(req.Header)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("Content-Type"), b, resp.Header}
}

// events returns the JSON messages of an answer: the body, or each SSE
// event's data.
func (a answer) events(t *testing.T) []map[string]any {
	t.Helper()
	var raw [][]byte
	if strings.HasPrefix(a.ctype, "text/event-stream") {
		sc := bufio.NewScanner(bytes.NewReader(a.body))
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				raw = append(raw, []byte(d))
			}
		}
	} else {
		raw = append(raw, a.body)
	}
	var out []map[string]any
	for _, r := range raw {
		var m map[string]any
		if err := json.Unmarshal(r, &m); err != nil {
			t.Fatalf("message %q: %v", r, err)
		}
		out = append(out, m)
	}
	return out
}

// TestResourceNotFoundCarriesURI: reading a URI that names no resource,
// or a memory the caller may not see, answers the protocol version's
// not-found error (SEP-2164 from 2026-07-28: -32602 with HTTP 400; before:
// -32002) with the URI as data.uri, never an internal error.
func TestResourceNotFoundCarriesURI(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	client := s.RegisterClient(s.SuperuserToken())
	owner, reader := s.UserToken(client, "owner"), s.UserToken(client, "reader")
	r := s.Tool(owner, "submit_memory", map[string]any{"text": "my private diary line"})
	if r.Status != http.StatusOK {
		t.Fatalf("submit: %d %s", r.Status, r.Body)
	}
	private := "memory://" + r.Map(t)["id"].(string)
	legacy := &rpc{s: s, token: reader.Access, version: mcp.ProtocolVersion20251125}
	if a := legacy.post(t, "initialize", map[string]any{"protocolVersion": legacy.version, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "t", "version": "1"}}); a.status != 200 || legacy.session == "" {
		t.Fatalf("initialize: %d %s", a.status, a.body)
	}
	modern := &rpc{s: s, token: reader.Access, version: mcp.ProtocolVersion20260728}
	for _, tc := range []struct {
		name   string
		c      *rpc
		uri    string
		code   float64
		status int
	}{
		{"2026-07-28 unknown scheme", modern, "test://nonexistent", mcp.INVALID_PARAMS, http.StatusBadRequest},
		{"2026-07-28 missing memory", modern, "memory://00000000-0000-0000-0000-000000000000", mcp.INVALID_PARAMS, http.StatusBadRequest},
		{"2026-07-28 another user's private memory", modern, private, mcp.INVALID_PARAMS, http.StatusBadRequest},
		{"2025-11-25 unknown scheme", legacy, "test://nonexistent", mcp.RESOURCE_NOT_FOUND, http.StatusOK},
		{"2025-11-25 missing memory", legacy, "memory://not-a-memory", mcp.RESOURCE_NOT_FOUND, http.StatusOK},
		{"2025-11-25 another user's private memory", legacy, private, mcp.RESOURCE_NOT_FOUND, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.c.post(t, "resources/read", map[string]any{"uri": tc.uri})
			msgs := a.events(t)
			if a.status != tc.status || len(msgs) != 1 {
				t.Fatalf("want HTTP %d and one message, got %d: %s", tc.status, a.status, a.body)
			}
			e, _ := msgs[0]["error"].(map[string]any)
			data, _ := e["data"].(map[string]any)
			if e == nil || e["code"] != tc.code || data["uri"] != tc.uri || msgs[0]["id"] != float64(7) {
				t.Fatalf("want error %v with data.uri %q, got %s", tc.code, tc.uri, a.body)
			}
			if strings.Contains(string(a.body), "diary") {
				t.Fatalf("the private text leaked: %s", a.body)
			}
		})
	}
	// a memory the reader may read is still read
	a := (&rpc{s: s, token: owner.Access, version: mcp.ProtocolVersion20260728}).post(t, "resources/read", map[string]any{"uri": private})
	if a.status != 200 || !strings.Contains(string(a.body), "my private diary line") {
		t.Fatalf("own memory: %d %s", a.status, a.body)
	}
}

// TestSubscriptionsListenAcknowledgesFirst: a subscriptions/listen that
// establishes nothing (asks for nothing, or only for what Picard does not
// offer) still opens its stream with notifications/subscriptions/acknowledged
// before its result, both tagged with the request id, every time (mcp-go
// alone races the two and sometimes drops or reorders the acknowledgement).
func TestSubscriptionsListenAcknowledgesFirst(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	u := s.UserToken(s.RegisterClient(s.SuperuserToken()), "listener")
	c := &rpc{s: s, token: u.Access, version: mcp.ProtocolVersion20260728}
	for _, filter := range []map[string]any{
		{},
		{"resourceSubscriptions": []string{"memories://mine"}}, // Picard offers no resource subscriptions
	} {
		for i := 0; i < 40; i++ {
			a := c.post(t, "subscriptions/listen", map[string]any{"notifications": filter})
			msgs := a.events(t)
			if a.status != 200 || !strings.HasPrefix(a.ctype, "text/event-stream") || len(msgs) != 2 {
				t.Fatalf("filter %v, try %d: want an SSE stream of two messages, got %d %s:\n%s", filter, i, a.status, a.ctype, a.body)
			}
			ack, res := msgs[0], msgs[1]
			params, _ := ack["params"].(map[string]any)
			ackMeta, _ := params["_meta"].(map[string]any)
			result, _ := res["result"].(map[string]any)
			resMeta, _ := result["_meta"].(map[string]any)
			if ack["method"] != mcp.MethodNotificationSubscriptionsAcknowledged || ackMeta[mcp.MetaKeySubscriptionID] != float64(7) {
				t.Fatalf("filter %v, try %d: the stream does not open with the acknowledgement:\n%s", filter, i, a.body)
			}
			if n, _ := params["notifications"].(map[string]any); len(n) != 0 {
				t.Fatalf("filter %v: acknowledged %v, but nothing can be established", filter, n)
			}
			if res["id"] != float64(7) || resMeta[mcp.MetaKeySubscriptionID] != float64(7) {
				t.Fatalf("filter %v, try %d: second message is not the tagged result:\n%s", filter, i, a.body)
			}
		}
	}
}
