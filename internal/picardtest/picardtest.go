// Package picardtest starts a real Picard (PocketBase test app + every
// plugin) behind a real HTTP listener on 127.0.0.1, and offers the calls a
// client makes: superuser token, client registration, user tokens, tools.
package picardtest

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	_ "modernc.org/sqlite" // OtherConnection's driver, as another process would use

	"github.com/picard-mcp/picard/internal/testserve"
	"github.com/picard-mcp/picard/platform"
	"github.com/picard-mcp/picard/vectorstore"
)

// Options configure a test server.
type Options struct {
	Env     map[string]string
	Vectors vectorstore.Store // nil: the embedded store in the data dir
	Now     func() time.Time
	// DataDir, when set, is copied and the server starts on the copy
	// (restores, migrations); default an empty data dir.
	DataDir string
}

// Server is a running Picard.
type Server struct {
	URL  string
	App  *tests.TestApp
	C    *platform.Components
	HTTP *httptest.Server
	t    testing.TB
}

// Start runs Picard until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	env := map[string]string{"PICARD_PUBLIC_URL": url}
	for k, v := range opts.Env {
		env[k] = v
	}
	cfg, err := platform.LoadConfig(func(k string) string { return env[k] }, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	dir := opts.DataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "picard-test-*"); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir) // NewTestAppWithConfig works on a clone
	}
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	comps, err := platform.Wire(app, cfg, platform.Options{Vectors: opts.Vectors, Now: opts.Now})
	if err != nil {
		app.Cleanup()
		t.Fatal(err)
	}
	srv := testserve.Serve(t, app, ln)
	s := &Server{URL: url, App: app, C: comps, HTTP: srv, t: t}
	return s
}

// Response is a decoded HTTP answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Map decodes the body as an object.
func (r *Response) Map(t testing.TB) map[string]any {
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// Do sends a request; body may be nil, []byte, string or a value to marshal.
func (s *Server) Do(method, path string, headers map[string]string, body any) *Response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// SuperuserToken creates a superuser and returns a PocketBase auth token.
func (s *Server) SuperuserToken() string {
	s.t.Helper()
	col, err := s.App.FindCollectionByNameOrId(core.CollectionNameSuperusers)
	if err != nil {
		s.t.Fatal(err)
	}
	su := core.NewRecord(col)
	su.SetEmail("root@picard.test")
	su.SetPassword("correct horse battery")
	if err := s.App.Save(su); err != nil {
		s.t.Fatal(err)
	}
	tok, err := su.NewAuthToken()
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// Client is a registered OAuth client.
type Client struct {
	ID, Secret string
}

// RegisterClient registers a confidential client through the admin API.
func (s *Server) RegisterClient(suToken string, scopes ...string) Client {
	s.t.Helper()
	body := map[string]any{"name": "test client", "redirect_uris": []string{"http://127.0.0.1:8000/callback"}, "confidential": true}
	if len(scopes) > 0 {
		body["scopes"] = scopes
	}
	r := s.Do("POST", "/api/admin/clients/register", map[string]string{"Authorization": suToken}, body)
	if r.Status != http.StatusCreated {
		s.t.Fatalf("register client: %d %s", r.Status, r.Body)
	}
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	r.JSON(s.t, &c)
	return Client{ID: c.ClientID, Secret: c.ClientSecret}
}

// User is a user with tokens.
type User struct {
	ID, Access, Refresh string
}

// UserToken runs direct connect for username, creating the user.
func (s *Server) UserToken(c Client, username string) User {
	s.t.Helper()
	r := s.Do("POST", "/api/user-tokens/user-token", nil, map[string]any{
		"client_id": c.ID, "client_secret": c.Secret, "username": username,
		"email": username + "@picard.test", "create_if_not_exists": true,
	})
	if r.Status != http.StatusOK {
		s.t.Fatalf("user-token: %d %s", r.Status, r.Body)
	}
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		UserID       string `json:"user_id"`
	}
	r.JSON(s.t, &tr)
	return User{ID: tr.UserID, Access: tr.AccessToken, Refresh: tr.RefreshToken}
}

// Tool calls POST /api/tools as u.
func (s *Server) Tool(u User, tool string, data any) *Response {
	s.t.Helper()
	return s.Do("POST", "/api/tools", map[string]string{"Authorization": "Bearer " + u.Access},
		map[string]any{"tool": tool, "data": data})
}

// OtherConn is a connection of its own to a server's data.db, as another
// process would write it, behind the server's back.
type OtherConn struct {
	db *sql.DB
}

// OtherConnection opens a second connection to the server's data.db
// (waiting up to 5s for the server's locks), closed when t ends.
func (s *Server) OtherConnection(t testing.TB) *OtherConn {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.App.DataDir(), "data.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &OtherConn{db: db}
}

// Exec runs q with args on the connection; an error fails t.
func (c *OtherConn) Exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if _, err := c.db.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}
