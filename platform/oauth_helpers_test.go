package platform_test

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
)

const (
	oaRedirect = "http://127.0.0.1:9876/callback"
	oaPassword = "correct horse battery staple"
)

// oaPKCE returns a fresh code verifier and its S256 challenge.
func oaPKCE(t *testing.T) (verifier, challenge string) {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	verifier = base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// oaBrowser is a scripted user agent: a cookie jar, redirects not followed.
type oaBrowser struct {
	t    *testing.T
	s    *picardtest.Server
	http *http.Client
}

func newOABrowser(t *testing.T, s *picardtest.Server) *oaBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &oaBrowser{t: t, s: s, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type oaPage struct {
	Status   int
	Header   http.Header
	Body     string
	Location string
	URL      *url.URL
}

func (b *oaBrowser) do(req *http.Request) *oaPage {
	b.t.Helper()
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &oaPage{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Location: resp.Header.Get("Location"), URL: req.URL}
}

// get fetches a path or an absolute URL.
func (b *oaBrowser) get(target string) *oaPage {
	b.t.Helper()
	if !strings.HasPrefix(target, "http") {
		target = b.s.URL + "/" + strings.TrimPrefix(target, "/")
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

func (b *oaBrowser) post(path string, form url.Values) *oaPage {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.s.URL+"/"+strings.TrimPrefix(path, "/"), strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var (
	oaFormRE  = regexp.MustCompile(`(?s)<form method="post" action="[^"]*">(.*?)</form>`)
	oaInputRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// formFields returns the hidden fields of the page's first form whose
// action field is action.
func (p *oaPage) formFields(t *testing.T, action string) url.Values {
	t.Helper()
	for _, f := range oaFormRE.FindAllStringSubmatch(p.Body, -1) {
		vals := url.Values{}
		for _, m := range oaInputRE.FindAllStringSubmatch(f[1], -1) {
			vals.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
		}
		if vals.Get("action") == action {
			return vals
		}
	}
	t.Fatalf("no %q form on the page (status %d):\n%s", action, p.Status, p.Body)
	return nil
}

// oaParams is an authorization request for client with a fresh PKCE
// pair; it returns the parameters and the verifier.
func oaParams(t *testing.T, clientID string) (url.Values, string) {
	verifier, challenge := oaPKCE(t)
	return url.Values{
		"client_id": {clientID}, "redirect_uri": {oaRedirect}, "response_type": {"code"},
		"scope": {"memories:read memories:write"}, "state": {"st-" + verifier[:8]},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}, verifier
}

// follow resolves a relative Location against the server.
func (b *oaBrowser) follow(p *oaPage) *oaPage {
	b.t.Helper()
	if p.Status != http.StatusSeeOther && p.Status != http.StatusFound {
		b.t.Fatalf("want a redirect, got %d:\n%s", p.Status, p.Body)
	}
	loc, err := p.URL.Parse(p.Location)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.get(loc.String())
}

// oaCallback checks that p redirects to the test redirect URI and returns
// its query.
func oaCallback(t *testing.T, s *picardtest.Server, p *oaPage, state string) url.Values {
	t.Helper()
	if p.Status != http.StatusFound && p.Status != http.StatusSeeOther {
		t.Fatalf("want a redirect to the client, got %d:\n%s", p.Status, p.Body)
	}
	u, err := url.Parse(p.Location)
	if err != nil || !strings.HasPrefix(p.Location, oaRedirect+"?") {
		t.Fatalf("redirected to %q, want %s", p.Location, oaRedirect)
	}
	q := u.Query()
	if q.Get("state") != state || q.Get("iss") != s.URL {
		t.Fatalf("callback must carry state %q and iss %q: %v", state, s.URL, q)
	}
	return q
}

// signUpAndConsent runs the browser flow for a new user up to the code.
func (b *oaBrowser) signUpAndConsent(params url.Values, username string) string {
	t := b.t
	t.Helper()
	p := b.get("/authorize?" + params.Encode())
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Sign in") {
		t.Fatalf("authorize: want the sign-in page, got %d:\n%s", p.Status, p.Body)
	}
	p = b.get(b.s.URL + "/authorize?" + params.Encode() + "&screen=signup")
	form := p.formFields(t, "signup")
	form.Set("email", username+"@picard.test")
	form.Set("username", username)
	form.Set("password", oaPassword)
	p = b.follow(b.post("/authorize", form))
	return b.consent(p, params.Get("state"))
}

// consent allows the consent page p and returns the code.
func (b *oaBrowser) consent(p *oaPage, state string) string {
	t := b.t
	t.Helper()
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Allow access") {
		t.Fatalf("want the consent page, got %d:\n%s", p.Status, p.Body)
	}
	form := p.formFields(t, "consent")
	form.Set("decision", "allow")
	q := oaCallback(t, b.s, b.post("/authorize", form), state)
	if q.Get("code") == "" {
		t.Fatalf("no code in the callback: %v", q)
	}
	return q.Get("code")
}

// signIn signs in on the sign-in page of params.
func (b *oaBrowser) signIn(params url.Values, identifier, password string) *oaPage {
	b.t.Helper()
	p := b.get("/authorize?" + params.Encode())
	form := p.formFields(b.t, "signin")
	form.Set("identifier", identifier)
	form.Set("password", password)
	return b.post("/authorize", form)
}

func oaPost(s *picardtest.Server, path string, form url.Values, basicUser, basicPass string) *picardtest.Response {
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return &picardtest.Response{Status: 0, Body: []byte(err.Error())}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &picardtest.Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

type oaTokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
}

// oaExchange redeems a code as a public client.
func oaExchange(s *picardtest.Server, clientID, code, verifier string, extra url.Values) *picardtest.Response {
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {code},
		"redirect_uri": {oaRedirect}, "code_verifier": {verifier}}
	for k, v := range extra {
		form[k] = v
	}
	return oaPost(s, "/token", form, "", "")
}

func oaRefresh(s *picardtest.Server, clientID, rt string, extra url.Values) *picardtest.Response {
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}}
	for k, v := range extra {
		form[k] = v
	}
	return oaPost(s, "/token", form, "", "")
}

// oaRegister registers a public client through RFC 7591.
func oaRegister(t *testing.T, s *picardtest.Server, name string) string {
	t.Helper()
	r := s.Do("POST", "/register", nil, map[string]any{
		"client_name": name, "redirect_uris": []string{oaRedirect},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "software_id": "ignored-extra-field",
	})
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Body)
	}
	return r.Map(t)["client_id"].(string)
}

// oaConnect runs the whole flow for a new user and returns their tokens.
func oaConnect(t *testing.T, s *picardtest.Server, clientID, username string) oaTokens {
	t.Helper()
	b := newOABrowser(t, s)
	params, verifier := oaParams(t, clientID)
	code := b.signUpAndConsent(params, username)
	r := oaExchange(s, clientID, code, verifier, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.Status, r.Body)
	}
	var tk oaTokens
	r.JSON(t, &tk)
	return tk
}

func oaBearer(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

func oaToolStatus(s *picardtest.Server, access string) int {
	return s.Do("POST", "/api/tools", oaBearer(access), map[string]any{"tool": "get_memories"}).Status
}
