package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pocketbase/pocketbase/core"
	"go.yaml.in/yaml/v3"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// chromiumPath is Debian's chromium (scripts/test.sh installs it).
const chromiumPath = "/usr/bin/chromium"

func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing but CI=true: scripts/test.sh installs Debian's chromium", chromiumPath)
		}
		t.Skipf("%s not installed", chromiumPath)
	}
}

// Accessible-name selectors (DESIGN.md): a field by its <label>, a button
// by its text.
func field(label string) string {
	return fmt.Sprintf(`//*[@id=//label[normalize-space()=%q]/@for]`, label)
}
func button(text string) string { return fmt.Sprintf(`//button[normalize-space()=%q]`, text) }

// authorizationServerScenarios are every scenario of the runner's
// `authorization` command (0.2.0-alpha.12 has these two; a new one in a
// later version shows up as an unexpected scenario below).
var authorizationServerScenarios = []string{"authorization-server-metadata-endpoint", "authorization-code-grant"}

// TestConformanceAuthorizationServer runs the official conformance runner's
// authorization-server scenarios against Picard's authorization server,
// once for each kind of client Picard has: a public client that registered
// itself (RFC 7591, PKCE only) and a confidential client an admin
// registered (client secret at /token). The runner prints the
// authorization URL and waits at its own callback; a person signs in and
// allows access on Picard's pages in headless Chromium, by the labels and
// buttons people see, and Chromium follows the redirect to the runner.
// Every check of every scenario must pass: no failures, no warnings.
func TestConformanceAuthorizationServer(t *testing.T) {
	nodeBin := node(t)
	requireChromium(t)
	s := picardtest.Start(t, picardtest.Options{})
	users, err := s.App.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	ada := core.NewRecord(users)
	ada.Set("username", "ada")
	ada.SetEmail("ada@picard.test")
	ada.SetPassword("ada's picard password")
	ada.SetVerified(true)
	if err := s.App.Save(ada); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	redirect := fmt.Sprintf("http://127.0.0.1:%d/callback", port)

	// public client: dynamic registration, as an MCP host does it
	reg := s.Do("POST", "/register", nil, map[string]any{
		"client_name": "conformance runner (public)", "redirect_uris": []string{redirect},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code"},
	})
	if reg.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", reg.Status, reg.Body)
	}
	public := reg.Map(t)["client_id"].(string)
	// confidential client: registered by an admin, authenticates at /token
	conf := s.Do("POST", "/api/admin/clients/register", map[string]string{"Authorization": s.SuperuserToken()}, map[string]any{
		"name": "conformance runner (confidential)", "redirect_uris": []string{redirect}, "confidential": true,
	})
	if conf.Status != http.StatusCreated {
		t.Fatalf("admin register: %d %s", conf.Status, conf.Body)
	}
	cm := conf.Map(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.UserDataDir(t.TempDir()))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	expected := authorizationBaseline(t)
	for _, c := range []struct{ name, id, secret, failure string }{
		{"public-client", public, "", ""},
		// the runner sends no secret (see the baseline): Picard answers 401
		{"confidential-client", cm["client_id"].(string), cm["client_secret"].(string), "Invalid status code: 401"},
	} {
		t.Run(c.name, func(t *testing.T) {
			expectFailure := false
			for k := range expected {
				expectFailure = expectFailure || strings.HasPrefix(k, c.name+"/")
			}
			// a fresh browser profile: the person signs in every time
			tab, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
			defer cancel()
			out := t.TempDir()
			args := []string{"--url", s.URL, "--client-id", c.id, "--resource", s.URL + "/mcp", "-p", strconv.Itoa(port), "-o", out}
			if c.secret != "" {
				args = append(args, "--client-secret", c.secret)
			}
			log, err := runAuthorization(t, nodeBin, args, func(authURL string) error {
				return signInAndAllow(tab, authURL, "ada", "ada's picard password", redirect)
			})
			checks := readChecks(t, out)
			if err != nil && !expectFailure {
				t.Fatalf("conformance authorization: %v\n%s\nchecks: %+v", err, log, checks)
			}
			for _, sc := range authorizationServerScenarios {
				if len(checks[sc]) == 0 {
					t.Errorf("scenario %s did not run\n%s", sc, log)
				}
			}
			for sc, cs := range checks {
				for _, ch := range cs {
					key := c.name + "/" + sc + ":" + ch.ID
					switch want := expected[key]; {
					case want && ch.Status == "SUCCESS":
						t.Errorf("%s passes: remove it from conformance-baseline.yaml", key)
					case want && !strings.Contains(ch.ErrorMessage, c.failure):
						t.Errorf("%s fails differently than the baseline says (want %q): %s", key, c.failure, ch.ErrorMessage)
					case !want && ch.Status != "SUCCESS":
						t.Errorf("%s %s: %s", key, ch.Status, ch.ErrorMessage)
					}
				}
			}
			for k := range expected {
				sc, id, _ := strings.Cut(strings.TrimPrefix(k, c.name+"/"), ":")
				if strings.HasPrefix(k, c.name+"/") && !hasCheck(checks[sc], id) {
					t.Errorf("%s is in conformance-baseline.yaml but the runner no longer reports it", k)
				}
			}
			t.Logf("%s", lastLines(log, 4))
		})
	}
}

// runAuthorization runs `conformance authorization ARGS`; when the runner
// prints the authorization URL, signIn plays the person in the browser.
func runAuthorization(t *testing.T, nodeBin string, args []string, signIn func(string) error) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	runner, _ := filepath.Abs("node_modules/@modelcontextprotocol/conformance/dist/index.js")
	cmd := exec.CommandContext(ctx, nodeBin, append([]string{runner, "authorization"}, args...)...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return "", err
	}
	var (
		mu     sync.Mutex
		log    strings.Builder
		signed = make(chan error, 1)
		asked  = false
		done   = make(chan struct{})
	)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			mu.Lock()
			log.WriteString(line + "\n")
			mu.Unlock()
			if !asked && strings.Contains(line, "/authorize?") {
				asked = true
				go func() {
					err := signIn(strings.TrimSpace(line))
					if err != nil {
						cancel() // the runner would wait minutes for a callback
					}
					signed <- err
				}()
			}
		}
	}()
	werr := cmd.Wait()
	pw.Close()
	<-done
	if !asked {
		return log.String(), fmt.Errorf("the runner never printed an authorization URL (exit: %w)", werr)
	}
	if err := <-signed; err != nil {
		t.Fatalf("sign-in: %v (runner: %v)\n%s", err, werr, log.String())
	}
	return log.String(), werr
}

// signInAndAllow opens the authorization URL, signs in on Picard's page and
// allows access on the consent page; the browser then follows the redirect
// to the runner's callback.
func signInAndAllow(tab context.Context, authURL, user, password, redirect string) error {
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(authURL),
		chromedp.WaitVisible(button("Sign in")),
		chromedp.SetValue(field("Email or username"), user),
		chromedp.SetValue(field("Password"), password),
		chromedp.Click(button("Sign in")),
		chromedp.WaitVisible(button("Allow")),
		chromedp.Click(button("Allow")),
	); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		return fmt.Errorf("%w; page: %s", err, body)
	}
	// the runner answers its callback with a short text page
	for {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			return fmt.Errorf("waiting for the redirect to %s: %w", redirect, err)
		}
		if strings.HasPrefix(loc, redirect) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("never redirected to %s (at %s)", redirect, loc)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// authorizationBaseline reads the `authorization` list of
// conformance-baseline.yaml.
func authorizationBaseline(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("conformance-baseline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Authorization []string `yaml:"authorization"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("conformance-baseline.yaml: %v", err)
	}
	out := map[string]bool{}
	for _, e := range doc.Authorization {
		out[e] = true
	}
	return out
}

type check struct {
	ID           string `json:"id"`
	Status       string `json:"status"`
	ErrorMessage string `json:"errorMessage"`
}

func hasCheck(cs []check, id string) bool {
	for _, c := range cs {
		if c.ID == id {
			return true
		}
	}
	return false
}

// readChecks reads the runner's checks.json files under dir, keyed by
// scenario (the folder name is authorization-server-<scenario>-<time>).
func readChecks(t *testing.T, dir string) map[string][]check {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*", "checks.json"))
	out := map[string][]check{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cs []check
		if err := json.Unmarshal(b, &cs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := filepath.Base(filepath.Dir(f))
		for _, sc := range authorizationServerScenarios {
			if strings.Contains(name, sc) {
				name = sc
			}
		}
		out[name] = append(out[name], cs...)
	}
	return out
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
