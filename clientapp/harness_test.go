package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/internal/testpg"
)

// env is a running Picard plus a running client app.
type env struct {
	t      testing.TB
	picard *picardtest.Server
	app    *App
	cfg    Config
	URL    string
}

// backends runs f on SQLite and on PostgreSQL.
func backends(t *testing.T, f func(t *testing.T, pg bool)) {
	t.Run("sqlite", func(t *testing.T) { f(t, false) })
	t.Run("postgres", func(t *testing.T) { f(t, true) })
}

// pgURL gives this test its own schema on the shared test cluster.
func pgURL(t testing.TB) string {
	dsn := testpg.DSN(t)
	schema := testpg.Schema(t, dsn)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// start runs Picard (in process) and the client app; picard may be nil to
// share one.
func start(t testing.TB, pg bool, picard *picardtest.Server, edit func(*Config)) *env {
	t.Helper()
	if picard == nil {
		picard = picardtest.Start(t, picardtest.Options{})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"CLIENTAPP_PICARD_URL": picard.URL}
	if pg {
		vars["CLIENTAPP_DATABASE_URL"] = pgURL(t)
	}
	cfg, err := LoadConfig(func(k string) string { return vars[k] }, ln.Addr().String(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&cfg)
	}
	app, err := NewApp(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: app.Routes()}}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		app.Close()
	})
	return &env{t: t, picard: picard, app: app, cfg: cfg, URL: srv.URL}
}

// register registers the app at Picard as `clientapp register` does.
func (e *env) register() {
	e.t.Helper()
	e.picard.SuperuserToken() // creates root@picard.test
	var out strings.Builder
	if err := Register(context.Background(), e.cfg, "root@picard.test", "correct horse battery", &out); err != nil {
		e.t.Fatalf("register: %v", err)
	}
}

// browser is one person's cookie jar; it does not follow redirects.
type browser struct {
	t    testing.TB
	e    *env
	http *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	Status   int
	Body     string
	Location string
	Header   http.Header
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.http.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return &page{Status: resp.StatusCode, Body: string(body), Location: resp.Header.Get("Location"), Header: resp.Header}
}

func (b *browser) get(path string) *page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.URL+path, nil)
	return b.do(req)
}

// post sends a same-origin form, as a browser would (Sec-Fetch-Site).
func (b *browser) post(path string, form url.Values) *page {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", b.e.URL)
	return b.do(req)
}

func (b *browser) signup(name string) {
	b.t.Helper()
	p := b.post("/signup", url.Values{"username": {name}, "email": {name + "@example.test"}, "password": {"password-" + name}})
	if p.Status != http.StatusSeeOther {
		b.t.Fatalf("signup %s: %d %s", name, p.Status, p.Body)
	}
}

func (b *browser) connect() {
	b.t.Helper()
	p := b.post("/connect/direct", nil)
	if p.Status != http.StatusSeeOther || p.Location != "/" {
		b.t.Fatalf("connect: %d %s %s", p.Status, p.Location, p.Body)
	}
}

var memoryLink = regexp.MustCompile(`^/memories/([0-9a-f-]{36})$`)

// create saves a memory and returns its id.
func (b *browser) create(text, permission, shareWith string) string {
	b.t.Helper()
	p := b.post("/memories/new", url.Values{"text": {text}, "permission": {permission}, "share_with": {shareWith}})
	m := memoryLink.FindStringSubmatch(p.Location)
	if p.Status != http.StatusSeeOther || m == nil {
		b.t.Fatalf("create %q: %d %s %s", text, p.Status, p.Location, p.Body)
	}
	return m[1]
}

func must(t testing.TB, p *page, status int, contains ...string) {
	t.Helper()
	if p.Status != status {
		t.Fatalf("want %d, got %d (location %q): %s", status, p.Status, p.Location, p.Body)
	}
	for _, c := range contains {
		if !strings.Contains(p.Body, c) {
			t.Fatalf("page (%d) does not contain %q: %s", p.Status, c, p.Body)
		}
	}
}

func mustNot(t testing.TB, p *page, texts ...string) {
	t.Helper()
	for _, c := range texts {
		if strings.Contains(p.Body, c) {
			t.Fatalf("page must not contain %q: %s", c, p.Body)
		}
	}
}

func TestMain(m *testing.M) {
	os.Exit(m.Run())
}
