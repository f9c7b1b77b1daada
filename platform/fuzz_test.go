package platform_test

// Fuzz targets over the HTTP surface a stranger can reach: the tools (REST
// and MCP), JSON-RPC framing, and the OAuth endpoints' form and JSON
// parsers. Each input is a real request to a real in-process Picard; what
// must hold for every input: no 5xx (a panic is recovered by the router as
// a 500), and every refusal is a typed error (a JSON object naming an
// error, or a JSON-RPC error / tool error on /mcp).
//
// `go test` runs the seeds below and those in testdata/fuzz; `make fuzz`
// runs each target for FUZZTIME (scripts/fuzz.sh; CI uses a short time).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// fuzzTarget is a server plus credentials shared by every input of one
// fuzz run.
type fuzzTarget struct {
	s      *picardtest.Server
	user   picardtest.User
	client picardtest.Client
	su     string
	hc     *http.Client
}

func newFuzzTarget(f *testing.F) *fuzzTarget {
	s := picardtest.Start(f, picardtest.Options{Env: map[string]string{"PICARD_MCP_STATELESS": "true"}})
	su := s.SuperuserToken()
	c := s.RegisterClient(su)
	return &fuzzTarget{s: s, su: su, client: c, user: s.UserToken(c, "fuzzer"), hc: &http.Client{}}
}

type fuzzResponse struct {
	status int
	ctype  string
	body   []byte
}

func (ft *fuzzTarget) do(t *testing.T, method, path, ctype string, headers map[string]string, body []byte) fuzzResponse {
	t.Helper()
	req, err := http.NewRequest(method, ft.s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := ft.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return fuzzResponse{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: b}
}

// checkTyped fails on a 5xx and on a 4xx that is not a JSON object with an
// "error" member (OAuth and REST style) or a JSON-RPC error.
func checkTyped(t *testing.T, what string, r fuzzResponse) {
	t.Helper()
	if r.status >= 500 || r.status == 0 {
		t.Fatalf("%s: status %d: %s", what, r.status, r.body)
	}
	if r.status < 400 {
		return
	}
	if strings.HasPrefix(r.ctype, "text/html") {
		return // /authorize answers people with a page
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s: status %d with a body that is not a JSON object: %q", what, r.status, r.body)
	}
	if _, ok := m["error"]; !ok {
		if _, ok := m["message"]; !ok {
			t.Fatalf("%s: status %d without a typed error: %s", what, r.status, r.body)
		}
	}
}

var fuzzTools = []string{"submit_memory", "update_memory", "delete_memory", "get_memories", "query_memory", "retrieve_memories", "modify_permissions", "query_user", "no_such_tool"}

// FuzzToolArguments sends arbitrary arguments to every tool, over /api/tools
// and over MCP tools/call.
func FuzzToolArguments(f *testing.F) {
	seeds := []string{
		`{}`, `null`, `[]`, `{"text":"x","permission":"public"}`,
		`{"text":"","permission":"nope"}`, `{"memory_id":"../../etc"}`,
		`{"limit":-1,"cursor":"%%%"}`, `{"limit":1e309}`, `{"expiration_date":"2026-13-45T99:00:00Z"}`,
		`{"shared_with":[1,2,{}]}`, `{"query":"` + strings.Repeat("a", 300) + `"}`, `{"user_id":null,"query":7}`,
		`{"text":"\u0000\ud800","permission":"shared","shared_with":["00000000-0000-4000-8000-000000000000"]}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), []byte(s))
	}
	ft := newFuzzTarget(f)
	bearer := map[string]string{"Authorization": "Bearer " + ft.user.Access}
	mcpHeaders := map[string]string{"Authorization": "Bearer " + ft.user.Access, "Accept": "application/json, text/event-stream"}
	f.Fuzz(func(t *testing.T, which uint8, args []byte) {
		tool := fuzzTools[int(which)%len(fuzzTools)]
		rest := fmt.Appendf(nil, `{"tool":%q,"data":%s}`, tool, args)
		checkTyped(t, "/api/tools "+tool, ft.do(t, "POST", "/api/tools", "application/json", bearer, rest))

		call := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, tool, args)
		r := ft.do(t, "POST", "/mcp", "application/json", mcpHeaders, call)
		checkTyped(t, "/mcp "+tool, r)
	})
}

// FuzzMCPFraming sends arbitrary bodies to /mcp: broken JSON, batches,
// wrong versions, unknown methods.
func FuzzMCPFraming(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`{"jsonrpc":"1.0","id":null,"method":7}`, `{"jsonrpc":"2.0","id":{},"method":"resources/read","params":{"uri":"memory://x"}}`,
		`{"jsonrpc":"2.0","id":2,"method":"prompts/get","params":{"name":"persona","arguments":{"user_id":"x"}}}`,
		`{`, ``, `"just a string"`, `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[]}`,
	} {
		f.Add([]byte(s))
	}
	ft := newFuzzTarget(f)
	h := map[string]string{"Authorization": "Bearer " + ft.user.Access, "Accept": "application/json, text/event-stream"}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkTyped(t, "/mcp", ft.do(t, "POST", "/mcp", "application/json", h, body))
	})
}

var oauthEndpoints = []struct {
	path, ctype string
	auth        string // "", "su": superuser header
}{
	{"/token", "application/x-www-form-urlencoded", ""},
	{"/register", "application/json", ""},
	{"/revoke", "application/x-www-form-urlencoded", ""},
	{"/introspect", "application/x-www-form-urlencoded", ""},
	{"/authorize", "application/x-www-form-urlencoded", ""},
	{"/api/user-tokens/user-token", "application/json", ""},
	{"/api/admin/clients/register", "application/json", "su"},
}

// FuzzOAuthEndpoints sends arbitrary form and JSON bodies to the OAuth
// endpoints (and the direct-connect and admin registration endpoints).
func FuzzOAuthEndpoints(f *testing.F) {
	for _, s := range []string{
		"grant_type=authorization_code&code=x&code_verifier=y&client_id=z&redirect_uri=http://127.0.0.1/cb",
		"grant_type=refresh_token&refresh_token=%ZZ&client_id=",
		"token=abc&token_type_hint=refresh_token",
		"client_id=https%3A%2F%2F127.0.0.1%2Fmeta.json&response_type=code&code_challenge_method=plain",
		`{"client_name":"x","redirect_uris":["javascript:alert(1)"],"grant_types":["implicit"]}`,
		`{"redirect_uris":"http://a"}`, `{"client_id":"x","client_secret":"y","username":"a b","email":"@","create_if_not_exists":"yes"}`,
		`{"name":"","redirect_uris":[],"scopes":["admin"],"confidential":1}`, "a=%", "\x00\xff",
	} {
		for i := range oauthEndpoints {
			f.Add(uint8(i), []byte(s))
		}
	}
	ft := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := oauthEndpoints[int(which)%len(oauthEndpoints)]
		var h map[string]string
		if ep.auth == "su" {
			h = map[string]string{"Authorization": ft.su}
		}
		checkTyped(t, ep.path, ft.do(t, "POST", ep.path, ep.ctype, h, body))
		// the same bytes under the other content type
		other := "application/json"
		if ep.ctype == other {
			other = "application/x-www-form-urlencoded"
		}
		checkTyped(t, ep.path+" ("+other+")", ft.do(t, "POST", ep.path, other, h, body))
	})
}

// FuzzBearerToken: no forged, truncated or garbled Authorization header
// ever authenticates, and every refusal is a 401 with a typed error.
func FuzzBearerToken(f *testing.F) {
	f.Add("Bearer ")
	f.Add("Bearer eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.")
	f.Add("bearer a.b.c")
	f.Add("Basic dXNlcjpwYXNz")
	ft := newFuzzTarget(f)
	valid := ft.user.Access
	f.Add("Bearer " + valid[:len(valid)-2] + "AA")
	f.Add("Bearer " + strings.Replace(valid, ".", "..", 1))
	f.Fuzz(func(t *testing.T, header string) {
		if strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(header, "Bearer "), "bearer ")) == valid {
			return
		}
		if strings.ContainsAny(header, "\r\n\x00") || !isHeaderValue(header) {
			return // not a header a client can send
		}
		r := ft.do(t, "POST", "/api/tools", "application/json", map[string]string{"Authorization": header}, []byte(`{"tool":"get_memories"}`))
		if r.status != http.StatusUnauthorized {
			t.Fatalf("Authorization %q: want 401, got %d %s", header, r.status, r.body)
		}
		checkTyped(t, "bearer", r)
	})
}

func isHeaderValue(s string) bool {
	for _, c := range []byte(s) {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
