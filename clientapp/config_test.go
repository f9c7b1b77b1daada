package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBadConfigNamesTheVariable(t *testing.T) {
	cases := []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"CLIENTAPP_PICARD_URL": "ftp://x"}, "CLIENTAPP_PICARD_URL"},
		{map[string]string{"CLIENTAPP_PUBLIC_URL": "not a url"}, "CLIENTAPP_PUBLIC_URL"},
		{map[string]string{"CLIENTAPP_PICARD_PUBLIC_URL": "mcp_server:8001"}, "CLIENTAPP_PICARD_PUBLIC_URL"},
		{map[string]string{"CLIENTAPP_DATABASE_URL": "mysql://x"}, "CLIENTAPP_DATABASE_URL"},
		{map[string]string{"CLIENTAPP_SECRET_KEY": "short"}, "CLIENTAPP_SECRET_KEY"},
		{map[string]string{"CLIENTAPP_CLIENT_ID": "abc"}, "CLIENTAPP_CLIENT_SECRET"},
	}
	for _, c := range cases {
		_, err := LoadConfig(func(k string) string { return c.vars[k] }, "127.0.0.1:8000", t.TempDir())
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != c.want {
			t.Errorf("%v: want an error naming %s, got %v", c.vars, c.want, err)
		}
	}
	cfg, err := LoadConfig(func(string) string { return "" }, "127.0.0.1:8000", "d")
	if err != nil || cfg.PicardURL != "http://127.0.0.1:8001" || cfg.PicardPublicURL != cfg.PicardURL || cfg.PublicURL != "http://127.0.0.1:8000" || cfg.Secure() {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, _ = LoadConfig(func(k string) string {
		return map[string]string{"CLIENTAPP_PUBLIC_URL": "https://notes.example"}[k]
	}, "127.0.0.1:8000", "d")
	if !cfg.Secure() || cfg.CallbackURL() != "https://notes.example/oauth/callback" {
		t.Fatalf("https public URL: %+v", cfg)
	}
}

// TestOAuthGoesToPicardsPublicURL: when the server reaches Picard by an
// internal name, browsers are still sent to Picard's public /authorize.
func TestOAuthGoesToPicardsPublicURL(t *testing.T) {
	e := start(t, false, nil, func(c *Config) { c.PicardPublicURL = "https://picard.example" })
	e.register()
	b := e.browser()
	b.signup("erin")
	p := b.post("/connect/oauth", nil)
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "https://picard.example/authorize?") {
		t.Fatalf("authorize redirect: %d %s", p.Status, p.Location)
	}
	if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://picard.example") {
		t.Fatalf("CSP must allow the redirect to Picard: %s", csp)
	}
	b.connect() // server-to-server calls still use the internal URL
}

func TestDataDirAndKeyArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	cfg, _ := LoadConfig(func(string) string { return "" }, "127.0.0.1:0", dir)
	app, err := NewApp(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	for path, mode := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, KeyFile): 0o600, filepath.Join(dir, SQLiteFile): 0o600} {
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: want mode %o, got %v %v", path, mode, st.Mode().Perm(), err)
		}
	}
}

// TestPicardDownIsAClearPage: with Picard gone, pages answer quickly with
// "Picard is unreachable" (503) and the app stays up.
func TestPicardDownIsAClearPage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens here any more
	e := start(t, false, nil, func(c *Config) {
		c.PicardURL, c.ClientID, c.ClientSecret = dead, "id", "secret"
	})
	e.app.picard.URL = dead
	e.app.mcp.URL = dead + "/mcp"
	b := e.browser()
	b.signup("carol")
	must(t, b.post("/connect/direct", nil), http.StatusServiceUnavailable, "Picard is unreachable")
	ctx := context.Background()
	u, _ := e.app.store.UserByUsername(ctx, "carol")
	if err := e.app.store.SaveConnection(ctx, &Connection{UserID: u.ID, PicardUserID: "p", Method: "direct", AccessToken: "a", RefreshToken: "r", Expiry: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/memories", "/memories/new", "/search?query=x"} {
		p := b.get(path)
		must(t, p, http.StatusServiceUnavailable, "Picard is unreachable")
		if strings.Contains(p.Body, "goroutine") || strings.Contains(p.Body, "dial tcp") {
			t.Fatalf("%s leaks internals: %s", path, p.Body)
		}
	}
	must(t, b.get("/readyz"), 200, `"picard":"unreachable"`)
	must(t, b.get("/account"), 200)

	// A Picard that accepts connections and never answers: the page still
	// comes back (after PicardTimeout) instead of hanging.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		var held []net.Conn // kept open, never answered
		for {
			c, err := hang.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	e.app.mcp.URL = "http://" + hang.Addr().String() + "/mcp"
	began := time.Now()
	must(t, b.get("/memories"), http.StatusServiceUnavailable, "Picard is unreachable")
	t.Logf("hanging Picard: page answered in %v", time.Since(began).Round(time.Millisecond))
}

// TestCommands runs the CLI as an operator would: register against a real
// Picard, serve, healthcheck (exit status 0 only when ready), bad config.
func TestCommands(t *testing.T) {
	e := start(t, false, nil, nil) // only for its Picard
	e.picard.SuperuserToken()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	getenv := func(k string) string {
		return map[string]string{"CLIENTAPP_PICARD_URL": e.picard.URL, "CLIENTAPP_PUBLIC_URL": "http://" + addr}[k]
	}
	run := func(ctx context.Context, args ...string) (string, error) {
		cmd := rootCmd(getenv)
		var out strings.Builder
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(ctx)
		return out.String(), err
	}
	ctx := context.Background()
	if _, err := run(ctx, "healthcheck", "--url", "http://"+addr); err == nil {
		t.Fatal("healthcheck succeeded with nothing listening")
	}
	out, err := run(ctx, "register", "--dir", dir, "--admin-email", "root@picard.test", "--admin-password", "correct horse battery")
	if err != nil || !strings.Contains(out, "registered at "+e.picard.URL) {
		t.Fatalf("register: %v %s", err, out)
	}
	if _, err := run(ctx, "register", "--dir", dir, "--admin-email", "root@picard.test", "--admin-password", "wrong"); err == nil {
		t.Fatal("register with a wrong admin password succeeded")
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		_, err := run(sctx, "serve", "--dir", dir, "--http", addr)
		served <- err
	}()
	var herr error
	for range 50 {
		if _, herr = run(ctx, "healthcheck", "--url", "http://"+addr); herr == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if herr != nil {
		t.Fatalf("healthcheck against serve: %v", herr)
	}
	// serve used the stored registration: direct connect works.
	b := &browser{t: t, e: &env{t: t, URL: "http://" + addr}, http: e.browser().http}
	b.signup("dora")
	b.connect()
	stop()
	if err := <-served; err != nil {
		t.Fatalf("serve did not stop cleanly: %v", err)
	}
	bad := rootCmd(func(k string) string { return map[string]string{"CLIENTAPP_PICARD_URL": "nope"}[k] })
	bad.SetArgs([]string{"serve", "--dir", dir})
	bad.SetOut(io.Discard)
	if err := bad.Execute(); err == nil || !strings.Contains(err.Error(), "CLIENTAPP_PICARD_URL") {
		t.Fatalf("bad config: %v", err)
	}
}
