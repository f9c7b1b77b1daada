package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

const (
	adminEmail    = "reliability@picard.test"
	adminPassword = "reliability-password"
)

// buildPicard compiles the picard binary from the module root.
func buildPicard(dir string) (string, error) {
	bin := filepath.Join(dir, "picard")
	cmd := exec.Command("go", "build", "-o", bin, ".") //nolint:gosec // our own temp path
	cmd.Dir = moduleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot is the directory holding go.mod, from the working directory up.
func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
	}
	return dir
}

// lockedBuffer is a child's output, readable while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is one run of the picard binary on a data dir.
type server struct {
	bin, dataDir, addr, dsn string
	env                     []string // extra PICARD_* settings
	cmd                     *exec.Cmd
	out                     *lockedBuffer
	done                    chan struct{}
}

func (s *server) url() string { return "http://" + s.addr }

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs picard and waits until /readyz answers ready.
func (s *server) start(ctx context.Context) error {
	env := []string{"PICARD_ADMIN_EMAIL=" + adminEmail, "PICARD_ADMIN_PASSWORD=" + adminPassword, "PICARD_PUBLIC_URL=" + s.url()}
	if s.dsn != "" {
		env = append(env, "PICARD_VECTOR_DSN="+s.dsn)
	}
	env = append(env, s.env...)
	env = append(env, baseEnv()...)
	s.cmd = exec.Command(s.bin, "serve", "--http", s.addr, "--dir", s.dataDir) //nolint:gosec // the binary this command built
	s.cmd.Env = env
	if s.out == nil {
		s.out = &lockedBuffer{}
	}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if ready(ctx, s.url()) {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("picard exited at start:\n%s", tail(s.out.String()))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("picard not ready after 60s:\n%s", tail(s.out.String()))
}

// baseEnv is this process's environment without PICARD_* and OPENAI_*.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PICARD_") && !strings.HasPrefix(kv, "OPENAI_") {
			env = append(env, kv)
		}
	}
	return env
}

// command runs `picard args… --dir <data dir>` with the server's settings
// (while the server may be running) and returns its output.
func (s *server) command(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.bin, append(args, "--dir", s.dataDir)...) //nolint:gosec // the binary this command built
	cmd.Env = append(append([]string{}, s.env...), baseEnv()...)
	if s.dsn != "" {
		cmd.Env = append(cmd.Env, "PICARD_VECTOR_DSN="+s.dsn)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func ready(ctx context.Context, base string) bool {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/readyz", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill9 ends the process as a crash would: SIGKILL, no shutdown hooks.
func (s *server) kill9() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop ends the process gracefully.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.kill9()
	}
}

// rssKB is the process's resident set size from /proc.
func (s *server) rssKB() int64 { return s.statusKB("VmRSS:") }

// statusKB is one kB figure of /proc/<pid>/status (field with its colon).
func (s *server) statusKB(field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

// procStats is a snapshot of the server's memory and goroutines.
type procStats struct {
	rssKB, heapInuse, goroutines int64
	anonKB, fileKB, goSys        int64  // RssAnon, RssFile; the Go runtime's Sys (bytes)
	goroutineProfile             string // pprof goroutine?debug=1
}

// stats reads the server's RSS from /proc and, through the superuser's
// pprof endpoints, its goroutine count and its Go heap in use after a
// forced GC. The requests use their own connection, closed afterwards, so
// they leave no keep-alive goroutine behind.
func (s *server) stats(ctx context.Context, superuser string) (procStats, error) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", s.url()+path, nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", superuser)
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b), err
	}
	st := procStats{rssKB: s.rssKB()}
	st.anonKB, st.fileKB = s.statusKB("RssAnon:"), s.statusKB("RssFile:")
	heap, err := get("/api/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return st, err
	}
	gor, err := get("/api/debug/pprof/goroutine?debug=1")
	if err != nil {
		return st, err
	}
	st.heapInuse = profileNumber(heap, "# HeapInuse = ")
	st.goSys = profileNumber(heap, "# Sys = ")
	st.goroutines = profileNumber(gor, "goroutine profile: total ")
	st.goroutineProfile = gor
	if st.heapInuse <= 0 || st.goroutines <= 0 {
		return st, errors.New("pprof answered without HeapInuse or a goroutine total")
	}
	return st, nil
}

// saveProfile writes the server's pprof profile name (with its query) to
// path, for `go tool pprof -diff_base` (-dir keeps them).
func (s *server) saveProfile(ctx context.Context, superuser, name, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", s.url()+"/api/debug/pprof/"+name, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", superuser)
	resp, err := (&http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", name, resp.StatusCode)
	}
	return os.WriteFile(path, b, 0o600)
}

// profileNumber is the integer after prefix in a text pprof profile.
func profileNumber(text, prefix string) int64 {
	i := strings.Index(text, prefix)
	if i < 0 {
		return -1
	}
	rest := text[i+len(prefix):]
	if j := strings.IndexAny(rest, " \n"); j >= 0 {
		rest = rest[:j]
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

func (s *server) panics() int { return strings.Count(s.out.String(), "panic:") }

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// counters are what a scenario's traffic saw.
type counters struct {
	ops, acked, fiveXX atomic.Int64
}

// countingTransport counts 5xx answers.
type countingTransport struct {
	base http.RoundTripper
	c    *counters
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode >= 500 {
		t.c.fiveXX.Add(1)
	}
	return resp, err
}

func httpClient(c *counters) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &countingTransport{base: http.DefaultTransport, c: c}}
}

func postJSON(ctx context.Context, hc *http.Client, url, auth string, body, out any) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s: %d %s", url, resp.StatusCode, rb)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(rb, out)
	}
	return resp.StatusCode, nil
}

// user is a Picard user with an access token.
type user struct {
	name, id, access string
}

// superuserToken signs in as the superuser.
func superuserToken(ctx context.Context, base string) (string, error) {
	var su struct {
		Token string `json:"token"`
	}
	_, err := postJSON(ctx, &http.Client{Timeout: 30 * time.Second}, base+"/api/collections/_superusers/auth-with-password", "", map[string]string{"identity": adminEmail, "password": adminPassword}, &su)
	return su.Token, err
}

// setupUsers registers a client as the superuser and connects n users.
func setupUsers(ctx context.Context, base string, n int) ([]user, error) {
	hc := &http.Client{Timeout: 30 * time.Second}
	token, err := superuserToken(ctx, base)
	if err != nil {
		return nil, err
	}
	var client struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	if _, err := postJSON(ctx, hc, base+"/api/admin/clients/register", token, map[string]any{
		"name": "reliability", "redirect_uris": []string{"http://127.0.0.1:1/cb"}, "confidential": true,
		"scopes": []string{"memories:read", "memories:write"},
	}, &client); err != nil {
		return nil, err
	}
	run := randHex(3)
	users := make([]user, n)
	for i := range users {
		name := fmt.Sprintf("rel%s%02d", run, i)
		var tok struct {
			Access string `json:"access_token"`
			UserID string `json:"user_id"`
		}
		if _, err := postJSON(ctx, hc, base+"/api/user-tokens/user-token", "", map[string]any{
			"client_id": client.ID, "client_secret": client.Secret, "username": name,
			"email": name + "@picard.test", "create_if_not_exists": true,
		}, &tok); err != nil {
			return nil, err
		}
		users[i] = user{name: name, id: tok.UserID, access: tok.Access}
	}
	return users, nil
}

// mcpConn is an initialised MCP session (mcp-go client) of one user.
type mcpConn struct {
	c *mcpclient.Client
	u user
}

func connect(ctx context.Context, base string, u user, hc *http.Client) (*mcpConn, error) {
	c, err := mcpclient.NewStreamableHttpClient(base+"/mcp",
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + u.access}),
		transport.WithHTTPBasicClient(hc))
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "picard-reliability", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		return nil, err
	}
	return &mcpConn{c: c, u: u}, nil
}

// errToolFailed is a tool's isError result.
var errToolFailed = errors.New("tool error")

// call runs a tool and decodes its structured result into out.
func (m *mcpConn) call(ctx context.Context, name string, args map[string]any, out any) error {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := m.c.CallTool(ctx, req)
	if err != nil {
		return err
	}
	if res.IsError {
		var b strings.Builder
		for _, c := range res.Content {
			if tc, ok := c.(mcp.TextContent); ok {
				b.WriteString(tc.Text)
			}
		}
		return fmt.Errorf("%w: %s", errToolFailed, b.String())
	}
	if out == nil {
		return nil
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

type memory struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// listAll returns every memory of the connection's user, id -> text.
func (m *mcpConn) listAll(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	cursor := ""
	for {
		args := map[string]any{"limit": 100, "include_expired": true}
		if cursor != "" {
			args["cursor"] = cursor
		}
		var page struct {
			Memories   []memory `json:"memories"`
			NextCursor string   `json:"next_cursor"`
		}
		if err := m.call(ctx, "get_memories", args, &page); err != nil {
			return nil, err
		}
		for _, mem := range page.Memories {
			out[mem.ID] = mem.Text
		}
		if page.NextCursor == "" || len(page.Memories) == 0 {
			return out, nil
		}
		cursor = page.NextCursor
	}
}

// finds reports whether query_memory for query returns id in the top 10.
func (m *mcpConn) finds(ctx context.Context, query, id string) (bool, error) {
	var res struct {
		Memories []memory `json:"memories"`
	}
	if err := m.call(ctx, "query_memory", map[string]any{"query": query, "limit": 10, "scope": "own"}, &res); err != nil {
		return false, err
	}
	for _, mem := range res.Memories {
		if mem.ID == id {
			return true, nil
		}
	}
	return false, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// freshDatabase creates a database with pgvector on the cluster of dsn and
// returns its DSN and a function that drops it.
func freshDatabase(ctx context.Context, dsn string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, err
	}
	defer conn.Close(ctx)
	name := "reliability_" + randHex(4)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "", nil, err
	}
	newDSN := strings.Replace(dsn, "/"+cfg.Database, "/"+name, 1)
	c2, err := pgx.Connect(ctx, newDSN)
	if err != nil {
		return "", nil, err
	}
	_, err = c2.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS vector")
	c2.Close(ctx)
	if err != nil {
		return "", nil, err
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return newDSN, drop, nil
}
