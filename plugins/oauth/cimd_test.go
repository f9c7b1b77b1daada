package oauth

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"github.com/picard-mcp/picard/internal/testserve"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/plugins/fernet"
)

// startOAuth runs the OAuth plugin alone on a real listener, with cfg
// (Issuer, Resource and Cipher are filled in).
func startOAuth(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	dir, err := os.MkdirTemp("", "picard-oauth-*")
	if err != nil {
		t.Fatal(err)
	}
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: dir})
	os.RemoveAll(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, err := fernet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cipher, err = fernet.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Issuer, cfg.Resource = base, base+"/mcp"
	s, err := Register(app, cfg)
	if err != nil {
		t.Fatal(err)
	}
	testserve.Serve(t, app, ln)
	return s, base
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// submit posts the page's form whose action field is action, with extra.
func submit(t *testing.T, c *http.Client, base, body, action string, extra url.Values) *http.Response {
	t.Helper()
	for _, f := range strings.Split(body, "<form")[1:] {
		vals := url.Values{}
		for _, m := range hiddenRE.FindAllStringSubmatch(f, -1) {
			vals.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
		}
		if vals.Get("action") != action {
			continue
		}
		for k, v := range extra {
			vals[k] = v
		}
		resp, err := c.PostForm(base+"/authorize", vals)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	t.Fatalf("no %s form in:\n%s", action, body)
	return nil
}

func readBody(t *testing.T, r *http.Response) string {
	t.Helper()
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCIMDFlow: with the development flag, a client identified by the URL
// of its metadata document (served over http on loopback here) goes
// through the whole flow; bad documents are refused with an error page.
func TestCIMDFlow(t *testing.T) {
	const redirect = "http://127.0.0.1:9876/callback"
	var hits atomic.Int32
	doc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		self := "http://" + r.Host + r.URL.Path
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/client.json":
			fmt.Fprintf(w, `{"client_id":%q,"client_name":"Doc App","redirect_uris":[%q],"token_endpoint_auth_method":"none","extra":1}`, self, redirect)
		case "/mismatch.json":
			fmt.Fprintf(w, `{"client_id":"https://other.example/client.json","redirect_uris":[%q]}`, redirect)
		case "/secret.json":
			fmt.Fprintf(w, `{"client_id":%q,"redirect_uris":[%q],"token_endpoint_auth_method":"client_secret_basic"}`, self, redirect)
		case "/bad-redirect.json":
			fmt.Fprintf(w, `{"client_id":%q,"redirect_uris":["javascript:alert(1)"]}`, self)
		case "/moved.json":
			http.Redirect(w, r, "/client.json", http.StatusFound)
		case "/huge.json":
			fmt.Fprintf(w, `{"client_id":%q,"client_name":"%s","redirect_uris":[%q]}`, self, strings.Repeat("x", 70<<10), redirect)
		case "/text.json":
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html></html>")
		default:
			http.NotFound(w, r)
		}
	}))
	defer doc.Close()
	s, base := startOAuth(t, Config{AllowPrivateCIMD: true})

	verifier := strings.Repeat("v", 50)
	sum := sha256.Sum256([]byte(verifier))
	authz := func(clientID string) string {
		return base + "/authorize?" + url.Values{
			"client_id": {clientID}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {"xyz"},
			"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		}.Encode()
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, path := range []string{"/mismatch.json", "/secret.json", "/bad-redirect.json", "/moved.json", "/huge.json", "/text.json", "/missing.json", "/"} {
		resp, err := c.Get(authz(doc.URL + path))
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(body, "cannot continue") {
			t.Errorf("%s: want an error page, got %d %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	clientID := doc.URL + "/client.json"
	users, _ := s.app.FindCollectionByNameOrId(pb_migrations.Users)
	u := core.NewRecord(users)
	u.SetEmail("rita@picard.test")
	u.Set("username", "rita")
	u.SetPassword("a long enough password")
	if err := s.app.Save(u); err != nil {
		t.Fatal(err)
	}
	before := hits.Load()
	resp, err := c.Get(authz(clientID))
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Doc App") || !strings.Contains(body, "has not checked its name") {
		t.Fatalf("authorize: %d\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, "<style>"+pageCSS+"</style>") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), pageCSP) {
		t.Fatal("the inline stylesheet must be exactly the one whose hash the CSP allows")
	}
	resp = submit(t, c, base, body, "signin", url.Values{"identifier": {"rita"}, "password": {"a long enough password"}})
	readBody(t, resp)
	resp, err = c.Get(base + "/" + resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp = submit(t, c, base, readBody(t, resp), "consent", url.Values{"decision": {"allow"}})
	readBody(t, resp)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	code := loc.Query().Get("code")
	if code == "" || loc.Query().Get("iss") != base {
		t.Fatalf("callback: %v", loc)
	}
	if got := hits.Load() - before; got != 1 {
		t.Fatalf("the document must be fetched once and cached, fetched %d times", got)
	}
	tr, err := http.PostForm(base+"/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID},
		"code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if err != nil {
		t.Fatal(err)
	}
	tb := readBody(t, tr)
	if tr.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", tr.StatusCode, tb)
	}
	apps, err := s.ConnectedApps(u.Id)
	if err != nil || len(apps) != 1 || apps[0].ClientID != clientID || apps[0].ClientName != "Doc App" {
		t.Fatalf("connected apps: %+v %v", apps, err)
	}
}

func TestPublicAddr(t *testing.T) {
	cases := map[string]bool{
		"8.8.8.8": true, "2606:4700:4700::1111": true, "1.1.1.1": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "100.64.0.1": false, "0.0.0.0": false, "::": false, "224.0.0.1": false,
		"ff02::1": false, "fe80::1": false, "fd00::1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false,
		"255.255.255.255": false, "64:ff9b::a00:1": false,
		"2002:a00:1::1": false, "2001:0:a00:1::1": false, // 6to4 of 10.0.0.1, Teredo
	}
	for addr, want := range cases {
		if got := publicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

func TestRedirectMatches(t *testing.T) {
	cases := []struct {
		registered, given string
		want              bool
	}{
		{"https://app.example/cb", "https://app.example/cb", true},
		{"https://app.example/cb", "https://app.example/cb/", false},
		{"https://app.example/cb", "https://APP.example/cb", false},
		{"https://app.example/cb", "https://app.example:443/cb", false},
		{"https://app.example/cb", "https://app.example/cb?x=1", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:5000/cb", true},
		{"http://127.0.0.1:3000/cb", "http://127.0.0.1:5000/cb", true},
		{"http://[::1]:3000/cb", "http://[::1]:5000/cb", true},
		{"http://127.0.0.1:3000/cb", "http://127.0.0.1:5000/cb?x", false},
		{"http://127.0.0.1:3000/cb", "http://[::1]:3000/cb", false},
		{"http://localhost:3000/cb", "http://localhost:5000/cb", false},
		{"http://localhost:3000/cb", "http://localhost:3000/cb", true},
		{"http://127.0.0.1:3000/cb", "http://x@127.0.0.1:5000/cb", false},
		{"https://127.0.0.1:3000/cb", "https://127.0.0.1:5000/cb", false},
	}
	for _, tc := range cases {
		if got := redirectMatches(tc.registered, tc.given); got != tc.want {
			t.Errorf("redirectMatches(%q, %q) = %v, want %v", tc.registered, tc.given, got, tc.want)
		}
	}
}

// TestCIMDFetchesAreLimitedPerAddress: /authorize with ever new metadata
// URLs makes Picard fetch for an anonymous caller; that is bounded.
func TestCIMDFetchesAreLimitedPerAddress(t *testing.T) {
	var hits atomic.Int32
	doc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.NotFound(w, r)
	}))
	defer doc.Close()
	_, base := startOAuth(t, Config{AllowPrivateCIMD: true})
	var last string
	for i := 0; i < 35; i++ {
		q := url.Values{"client_id": {fmt.Sprintf("%s/doc-%d.json", doc.URL, i)}, "redirect_uri": {"http://127.0.0.1:9876/cb"}, "response_type": {"code"}}
		resp, err := http.Get(base + "/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		last = readBody(t, resp)
	}
	if n := hits.Load(); n != 30 {
		t.Fatalf("want 30 fetches from one address, got %d", n)
	}
	if !strings.Contains(last, "too many client metadata documents") {
		t.Fatalf("the refused request must say why:\n%s", last)
	}
}
