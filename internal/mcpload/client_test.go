package mcpload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// testServer is a small MCP-like server: it checks the bearer and, when
// stateful, the session of every request but initialize, and answers
// tools by name (echo, echo_sse, big, fail, fail_late, rpcerr, status).
type testServer struct {
	stateful bool
	mu       sync.Mutex
	seen     map[string]http.Header // last request headers by JSON-RPC method
	bodies   []string
}

const testSession = "sess-42"

func (s *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name      string         `json:"name"`
			Arguments map[string]any `json:"arguments"`
		} `json:"params"`
	}
	if r.Method != http.MethodPost || json.Unmarshal(body, &req) != nil {
		http.Error(w, "not a JSON-RPC POST: "+string(body), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.seen[req.Method] = r.Header.Clone()
	s.bodies = append(s.bodies, string(body))
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer tok" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if s.stateful && req.Method != "initialize" && r.Header.Get("Mcp-Session-Id") != testSession {
		http.Error(w, "unknown session", http.StatusNotFound)
		return
	}
	if req.ID == nil { // a notification
		w.WriteHeader(http.StatusAccepted)
		return
	}
	answer := func(v map[string]any) []byte {
		v["jsonrpc"], v["id"] = "2.0", req.ID
		b, _ := json.Marshal(v)
		return b
	}
	text := func(s string, isError bool) map[string]any {
		return map[string]any{"result": map[string]any{
			"content": []any{map[string]any{"type": "text", "text": s}}, "isError": isError}}
	}
	w.Header().Set("Content-Type", "application/json")
	switch req.Method {
	case "initialize":
		if s.stateful {
			w.Header().Set("Mcp-Session-Id", testSession)
		}
		_, _ = w.Write(answer(map[string]any{"result": map[string]any{"protocolVersion": "2025-06-18"}}))
		return
	case "ping":
		_, _ = w.Write(answer(map[string]any{"result": map[string]any{}}))
		return
	}
	arg, _ := req.Params.Arguments["text"].(string)
	switch req.Params.Name {
	case "echo":
		_, _ = w.Write(answer(text(arg, false)))
	case "echo_sse":
		// a progress notification first: the answer is the last data line
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: message\ndata: %s\r\n\r\n", answer(text(arg, false)))
	case "big":
		_, _ = w.Write(answer(text(strings.Repeat("memory text ", 2000), false)))
	case "fail":
		_, _ = w.Write(answer(text("boom", true)))
	case "fail_late":
		// isError after 20 KB of content, far past the answer's head
		b := answer(map[string]any{"result": map[string]any{
			"content": []any{map[string]any{"type": "text", "text": strings.Repeat("x", 20000)}}}})
		_, _ = w.Write(append(b[:len(b)-2], `,"isError":true}}`...))
	case "rpcerr":
		_, _ = w.Write(answer(map[string]any{"error": map[string]any{"code": -32602, "message": "unknown tool"}}))
	case "status":
		http.Error(w, "server broke", http.StatusInternalServerError)
	default:
		http.Error(w, "no such tool", http.StatusBadRequest)
	}
}

func (s *testServer) header(method, key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.seen[method]; ok {
		return h.Get(key)
	}
	return "<no " + method + " request>"
}

func startServer(t *testing.T, stateful bool) (*testServer, string) {
	t.Helper()
	s := &testServer{stateful: stateful, seen: map[string]http.Header{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL + "/mcp"
}

var transports = []HTTP{NetHTTP, FastHTTP}

func TestClientAgainstServer(t *testing.T) {
	ctx := context.Background()
	for _, h := range transports {
		t.Run(h.String(), func(t *testing.T) {
			s, url := startServer(t, true)
			c := NewWith(url, "tok", false, h)
			if c.HTTP() != h {
				t.Fatalf("client posts with %v, want %v", c.HTTP(), h)
			}
			if err := c.Initialize(ctx); err != nil {
				t.Fatal(err)
			}
			if got := s.header("initialize", "Mcp-Session-Id"); got != "" {
				t.Errorf("initialize sent session %q before it had one", got)
			}
			for _, m := range []string{"initialize", "notifications/initialized"} {
				for key, want := range map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream", "Authorization": "Bearer tok"} {
					if got := s.header(m, key); got != want {
						t.Errorf("%s: %s = %q, want %q", m, key, got, want)
					}
				}
			}
			if got := s.header("notifications/initialized", "Mcp-Session-Id"); got != testSession {
				t.Errorf("notification sent session %q, want %q", got, testSession)
			}

			// a string that must be escaped survives the round trip
			text := "he said \"hi\" \\ <b>&</b>\n\ttab é \u2028"
			for _, tool := range []string{"echo", "echo_sse"} {
				r, err := c.CallTool(ctx, tool, map[string]any{"text": text})
				if err != nil {
					t.Fatalf("%s: %v", tool, err)
				}
				if len(r.Content) != 1 || r.Content[0].Text != text {
					t.Errorf("%s answered %+v, want the text %q", tool, r.Content, text)
				}
				if err := c.CallToolChecked(ctx, tool, map[string]any{"text": text}); err != nil {
					t.Errorf("%s checked: %v", tool, err)
				}
			}
			if got := s.header("tools/call", "Mcp-Session-Id"); got != testSession {
				t.Errorf("tools/call sent session %q, want %q", got, testSession)
			}
			r, err := c.CallTool(ctx, "big", nil)
			if err != nil || len(r.Content) != 1 || len(r.Content[0].Text) != 24000 {
				t.Errorf("big answer: %v, %d contents", err, len(r.Content))
			}
			if err := c.CallToolChecked(ctx, "big", nil); err != nil {
				t.Errorf("big answer checked: %v", err)
			}
			if err := c.Ping(ctx); err != nil {
				t.Errorf("ping: %v", err)
			}

			wantErr := func(what string, err error, want string) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("%s: error %v, want one saying %q", what, err, want)
				}
			}
			_, err = c.CallTool(ctx, "fail", nil)
			wantErr("CallTool fail", err, "tool error: boom")
			wantErr("CallToolChecked fail", c.CallToolChecked(ctx, "fail", nil), "tool error")
			_, err = c.CallTool(ctx, "fail_late", nil)
			wantErr("CallTool fail_late", err, "tool error")
			wantErr("CallToolChecked fail_late", c.CallToolChecked(ctx, "fail_late", nil), "tool error")
			_, err = c.CallTool(ctx, "rpcerr", nil)
			wantErr("CallTool rpcerr", err, "JSON-RPC error -32602: unknown tool")
			wantErr("CallToolChecked rpcerr", c.CallToolChecked(ctx, "rpcerr", nil), "JSON-RPC error -32602: unknown tool")
			_, err = c.CallTool(ctx, "status", nil)
			wantErr("CallTool status", err, "HTTP 500: server broke")
			wantErr("CallToolChecked status", c.CallToolChecked(ctx, "status", nil), "HTTP 500: server broke")

			// Post and PostRaw: results, a notification's nil, headers
			res, hdr, err := c.Post(ctx, c.Request("ping", nil))
			if err != nil || string(res) != "{}" || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("Post ping: %s, %v, %v", res, hdr, err)
			}
			raw, _, err := c.PostRaw(ctx, c.Request("tools/call", map[string]any{"name": "echo", "arguments": map[string]any{"text": "raw"}}))
			if err != nil || !strings.Contains(string(raw), `"text":"raw"`) {
				t.Errorf("PostRaw: %s, %v", raw, err)
			}
			res, _, err = c.Post(ctx, map[string]any{"jsonrpc": "2.0", "method": "notifications/cancelled"})
			if err != nil || res != nil {
				t.Errorf("notification: %s, %v; want nil, nil", res, err)
			}

			// ids go up by one per request
			s.mu.Lock()
			var ids []int64
			for _, b := range s.bodies {
				var m struct{ ID *int64 }
				if json.Unmarshal([]byte(b), &m) == nil && m.ID != nil {
					ids = append(ids, *m.ID)
				}
			}
			s.mu.Unlock()
			for i := 1; i < len(ids); i++ {
				if ids[i] != ids[i-1]+1 {
					t.Fatalf("request ids %v do not go up by one", ids)
				}
			}
		})
	}
}

func TestClientSessionAndBearer(t *testing.T) {
	ctx := context.Background()
	for _, h := range transports {
		t.Run(h.String(), func(t *testing.T) {
			_, url := startServer(t, true)
			if err := NewWith(url, "wrong", false, h).Initialize(ctx); err == nil || !strings.Contains(err.Error(), "HTTP 401: unauthorized") {
				t.Errorf("wrong bearer: %v, want HTTP 401", err)
			}
			// without Initialize there is no session: the server refuses
			if err := NewWith(url, "tok", false, h).CallToolChecked(ctx, "echo", nil); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
				t.Errorf("call without a session: %v, want HTTP 404", err)
			}
			// a stateful client needs the server's session id
			_, statelessURL := startServer(t, false)
			if err := NewWith(statelessURL, "tok", false, h).Initialize(ctx); err == nil || !strings.Contains(err.Error(), "no Mcp-Session-Id") {
				t.Errorf("stateful client of a stateless server: %v", err)
			}
			c := NewWith(statelessURL, "tok", true, h)
			if err := c.Initialize(ctx); err != nil {
				t.Fatal(err)
			}
			if err := c.CallToolChecked(ctx, "echo", map[string]any{"text": "x"}); err != nil {
				t.Error(err)
			}
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if err := c.Ping(cancelled); !errors.Is(err, context.Canceled) {
				t.Errorf("ping with a cancelled context: %v", err)
			}
		})
	}
}

// TestClientConcurrent: one client, one connection, shared by goroutines
// (they wait for the connection rather than fail).
func TestClientConcurrent(t *testing.T) {
	ctx := context.Background()
	for _, h := range transports {
		t.Run(h.String(), func(t *testing.T) {
			_, url := startServer(t, true)
			c := NewWith(url, "tok", false, h)
			if err := c.Initialize(ctx); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 4*25)
			for g := range 4 {
				wg.Go(func() {
					for i := range 25 {
						arg := fmt.Sprintf("g%d-%d", g, i)
						r, err := c.CallTool(ctx, "echo", map[string]any{"text": arg})
						if err == nil && r.Content[0].Text != arg {
							err = fmt.Errorf("answered %q for %q", r.Content[0].Text, arg)
						}
						if err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestNewWithBadURL(t *testing.T) {
	c := NewWith("ftp://x/mcp", "", true, FastHTTP)
	if err := c.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Errorf("ping of an ftp URL: %v", err)
	}
}

func TestParseHTTP(t *testing.T) {
	for s, want := range map[string]HTTP{"fast": FastHTTP, "net": NetHTTP} {
		if got, err := ParseHTTP(s); err != nil || got != want || got.String() != s {
			t.Errorf("ParseHTTP(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseHTTP("curl"); err == nil {
		t.Error("ParseHTTP(curl) succeeded")
	}
}

// TestAppendToolCall: the request written directly decodes to what
// json.Marshal of the nested maps gives, and its arguments are those very
// bytes.
func TestAppendToolCall(t *testing.T) {
	cases := []map[string]any{
		nil,
		{},
		{"limit": 20},
		{"query": "apple river", "limit": 5, "scope": "own"},
		{"text": "quote \" backslash \\ slash / newline \n tab \t nul \x00 del \x7f"},
		{"text": "<script>&amp;</script> é ü 日本 \u2028 \u2029 🙂", "ok": true, "no": false, "none": nil},
		{"bad utf-8": "a\xffb\xc3", "n": int64(-9007199254740993), "neg": -3},
		{"f": 1.5, "big": 1e21, "list": []string{"a", "\"b\""}, "nested": map[string]any{"z": 1, "a": "x"}},
		{"k1": 1, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7, "k8": 8, "k9": 9, "k10": 10},
	}
	for _, args := range cases {
		want, err := json.Marshal(args)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendArgs(nil, args)
		if err != nil || string(got) != string(want) {
			t.Errorf("appendArgs(%v) = %s, %v; json.Marshal: %s", args, got, err, want)
		}
		req, err := appendToolCall([]byte("prefix"), 7, "tool \"x\"", args)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		viaMaps, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call",
			"params": map[string]any{"name": "tool \"x\"", "arguments": args}})
		if !strings.HasPrefix(string(req), "prefix") || json.Unmarshal(req[len("prefix"):], &a) != nil || json.Unmarshal(viaMaps, &b) != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("appendToolCall wrote %s, want the same as %s", req, viaMaps)
		}
	}
	if _, err := appendArgs(nil, map[string]any{"ch": make(chan int)}); err == nil {
		t.Error("appendArgs of a channel succeeded")
	}
	var m map[string]any
	if err := json.Unmarshal(appendRequest(nil, 3, "ping"), &m); err != nil || !reflect.DeepEqual(m, map[string]any{"jsonrpc": "2.0", "id": 3.0, "method": "ping"}) {
		t.Errorf("appendRequest: %v, %v", m, err)
	}
}

func TestHasIsErrorTrue(t *testing.T) {
	long := strings.Repeat(`"text":"an Error, \"quoted\", isError","isError":false,`, 300)
	for data, want := range map[string]bool{
		`{"result":{"isError":true}}`:                true,
		`"isError":true`:                             true,
		`Error":true`:                                false,
		`s"Error":true`:                              false,
		`{"anError":true,"isError":false}`:           false,
		`{"isError":false,"xisError":true}`:          false,
		`{"x":"isError","isError":true}`:             true,
		`{"isError": true}`:                          false, // as bytes.Contains: the exact marker only
		long:                                         false,
		long + `"isError":true}`:                     true,
		`"isError":tru`:                              false,
		`{"Error":true,"isError":true}`:              true,
		`{"isError":false,"Error":true"isError":tru`: false,
	} {
		if got := hasIsErrorTrue([]byte(data)); got != want {
			t.Errorf("hasIsErrorTrue(%.60q) = %v, want %v", data, got, want)
		}
		if got := bytes.Contains([]byte(data), []byte(`"isError":true`)); got != want {
			t.Errorf("bytes.Contains disagrees on %.60q: %v", data, got)
		}
	}
}

func TestSSEData(t *testing.T) {
	for body, want := range map[string]string{
		"data: a\n\ndata: b\n\n":          "b",
		"event: message\r\ndata:  c \r\n": "c",
		"data: last":                      "last",
		"event: x\n":                      "",
		"":                                "",
	} {
		if got := string(sseData([]byte(body))); got != want {
			t.Errorf("sseData(%q) = %q, want %q", body, got, want)
		}
	}
}

// BenchmarkEncodeToolCall compares the request encodings:
// go test -run '^$' -bench EncodeToolCall ./internal/mcpload
func BenchmarkEncodeToolCall(b *testing.B) {
	c := New("http://127.0.0.1:1/mcp", "", true)
	args := map[string]any{"query": "apple river coffee", "limit": 5}
	b.Run("marshal-maps", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(c.Request("tools/call", map[string]any{"name": "query_memory", "arguments": args})); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for i := 0; b.Loop(); i++ {
			var err error
			if buf, err = appendToolCall(buf[:0], int64(i), "query_memory", args); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCallToolChecked: a call of a 24 KB answer against an
// in-process server, per HTTP client (server time included; profile with
// -cpuprofile to split the client's part):
// go test -run '^$' -bench CallToolChecked ./internal/mcpload
func BenchmarkCallToolChecked(b *testing.B) {
	s := &testServer{stateful: true, seen: map[string]http.Header{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.bodies = s.bodies[:0]
		s.mu.Unlock()
		s.ServeHTTP(w, r)
	}))
	defer srv.Close()
	for _, h := range transports {
		b.Run(h.String(), func(b *testing.B) {
			c := NewWith(srv.URL+"/mcp", "tok", false, h)
			if err := c.Initialize(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.CallToolChecked(context.Background(), "big", map[string]any{"limit": 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkIsErrorSearch: the isError check of a 16 KB answer.
func BenchmarkIsErrorSearch(b *testing.B) {
	data := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat(`{\"id\":\"abc123\",\"text\":\"remember apple river coffee\",\"permission\":\"private\"},`, 200) + `"}],"isError":false}}`)
	b.Run("bytes.Contains", func(b *testing.B) {
		for b.Loop() {
			if bytes.Contains(data, []byte(`"isError":true`)) {
				b.Fatal("found")
			}
		}
	})
	b.Run("from-E", func(b *testing.B) {
		for b.Loop() {
			if hasIsErrorTrue(data) {
				b.Fatal("found")
			}
		}
	})
}
