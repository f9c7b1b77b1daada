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
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/picard-mcp/picard/internal/mcpload"
)

var allWorkloads = []string{"ping", "get_memories", "query_memory", "submit_memory", "update_memory", "mixed"}

func isWorkload(s string) bool {
	for _, w := range allWorkloads {
		if w == s {
			return true
		}
	}
	return false
}

const (
	adminEmail    = "loadbench@picard.test"
	adminPassword = "loadbench-password-1"
)

// environment is the temporary data dir (and database) Picard runs on.
type environment struct {
	o       Options
	dir     string
	addr    string
	dsn     string // the throw-away database's DSN, "" for embedded
	dropDB  func()
	users   []benchUser
	suToken string
	keep    bool // o.DataDir: not removed at the end
	reused  bool // o.DataDir held a seeded run: no seeding
}

type benchUser struct {
	ID, Access string
	mu         sync.Mutex
	memories   []string
}

func (u *benchUser) addMemory(id string) {
	u.mu.Lock()
	u.memories = append(u.memories, id)
	u.mu.Unlock()
}

func (u *benchUser) memory(rng *mrand.Rand) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.memories) == 0 {
		return ""
	}
	return u.memories[rng.IntN(len(u.memories))]
}

func newEnvironment(ctx context.Context, o Options) (*environment, error) {
	if o.DataDir != "" {
		if o.DSN != "" {
			return nil, errors.New("-data keeps the embedded store only; drop -dsn")
		}
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, err
		}
		_, err := os.Stat(filepath.Join(o.DataDir, seededMark))
		return &environment{o: o, dir: o.DataDir, keep: true, reused: err == nil}, nil
	}
	dir, err := os.MkdirTemp("", "picard-loadbench-")
	if err != nil {
		return nil, err
	}
	env := &environment{o: o, dir: dir}
	if o.DSN != "" {
		if err := env.createDatabase(ctx); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	return env, nil
}

// seededMark is the file in a kept data dir that says seeding finished.
const seededMark = "seeded"

func (env *environment) Close() {
	if env.dropDB != nil {
		env.dropDB()
	}
	if !env.keep {
		os.RemoveAll(env.dir)
	}
}

// createDatabase makes a throw-away database beside the DSN's.
func (env *environment) createDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, env.o.DSN)
	if err != nil {
		return fmt.Errorf("connect %s: %w", "the -dsn database", err)
	}
	name := "picard_loadbench_" + randHex(4)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("create database: %w", err)
	}
	u, err := url.Parse(env.o.DSN)
	if err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("parse -dsn: %w", err)
	}
	u.Path = "/" + name
	env.dsn = u.String()
	env.dropDB = func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.Exec(c, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintln(os.Stderr, "loadbench: drop database:", err)
		}
		_ = conn.Close(c)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// child is a process this bench started.
type child struct {
	cmd  *exec.Cmd
	done chan error
}

// Stop ends the child (SIGTERM, then SIGKILL after 15 s).
func (c *child) Stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	if c.done == nil {
		c.done = make(chan error, 1)
		go func() { c.done <- c.cmd.Wait() }()
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
	case err := <-c.done:
		c.done <- err // a server stopped by a signal exits non-zero; keep it for Wait
		return
	}
	c.done <- <-c.done
}

// picard is a running Picard server.
type picard struct {
	*child
	base      string
	log       string
	stateless bool // started with PICARD_MCP_STATELESS
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// picardEnv is the environment a Picard child gets: ours without any
// PICARD_ or OPENAI_ variable, plus the bench's.
func (env *environment) picardEnv(stateless bool) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PICARD_") || strings.HasPrefix(kv, "OPENAI_") || strings.HasPrefix(kv, childRole+"=") {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, childRole+"=picard", "PICARD_ADMIN_EMAIL="+adminEmail, "PICARD_ADMIN_PASSWORD="+adminPassword)
	if stateless {
		out = append(out, "PICARD_MCP_STATELESS=true")
	}
	if env.dsn != "" {
		out = append(out, "PICARD_VECTOR_DSN="+env.dsn)
	}
	return out
}

// startPicard runs `picard serve` on a free loopback port and waits until
// /api/health answers.
func (env *environment) startPicard(ctx context.Context, stateless bool) (*picard, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if env.addr == "" { // kept across restarts: the issuer is derived from it
		if env.addr, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	addr := env.addr
	logPath := filepath.Join(env.dir, fmt.Sprintf("picard-%d.log", time.Now().UnixNano()))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	args := []string{"serve", "--http", addr, "--dir", filepath.Join(env.dir, "pb_data")}
	cmd := exec.Command(exe, args...) //nolint:gosec // this very binary, re-executed as picard
	cmd.Env = env.picardEnv(stateless)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start picard: %w", err)
	}
	p := &picard{child: &child{cmd: cmd, done: make(chan error, 1)}, base: "http://" + addr, log: logPath, stateless: stateless}
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return nil, fmt.Errorf("picard exited at start (%w); log:\n%s", err, readTail(logPath))
		default:
		}
		resp, err := http.Get(p.base + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-ctx.Done():
			p.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	p.Stop()
	return nil, fmt.Errorf("picard did not become healthy; log:\n%s", readTail(logPath))
}

func readTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// httpJSON does one JSON request and decodes a 2xx answer into out.
func httpJSON(ctx context.Context, method, url, auth string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, url, resp.StatusCode, mcpload.Truncate(string(data)))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// setup signs in the superuser, registers a client, creates the users and
// seeds the memories, all through Picard's public endpoints.
func (env *environment) setup(ctx context.Context, p *picard) error {
	var su struct {
		Token string `json:"token"`
	}
	if err := httpJSON(ctx, "POST", p.base+"/api/collections/_superusers/auth-with-password", "",
		map[string]string{"identity": adminEmail, "password": adminPassword}, &su); err != nil {
		return fmt.Errorf("superuser sign-in: %w", err)
	}
	env.suToken = su.Token
	var cl struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := httpJSON(ctx, "POST", p.base+"/api/admin/clients/register", su.Token, map[string]any{
		"name": "loadbench", "redirect_uris": []string{"http://127.0.0.1:9/callback"}, "confidential": true,
	}, &cl); err != nil {
		return fmt.Errorf("register client: %w", err)
	}
	env.users = make([]benchUser, env.o.Users)
	for i := range env.users {
		name := fmt.Sprintf("bench%03d", i)
		var tr struct {
			AccessToken string `json:"access_token"`
			UserID      string `json:"user_id"`
		}
		if err := httpJSON(ctx, "POST", p.base+"/api/user-tokens/user-token", "", map[string]any{
			"client_id": cl.ClientID, "client_secret": cl.ClientSecret, "username": name,
			"email": name + "@picard.test", "create_if_not_exists": true,
		}, &tr); err != nil {
			return fmt.Errorf("user token: %w", err)
		}
		env.users[i].ID, env.users[i].Access = tr.UserID, tr.AccessToken
	}
	clients, err := env.clients(ctx, p, p.stateless)
	if err != nil {
		return err
	}
	if env.reused {
		return env.loadSeeded(ctx, clients)
	}
	if env.o.Seed == "import" {
		markers, err := env.seedImport(ctx, p)
		if err != nil {
			return err
		}
		if err := env.settleImport(ctx, p, markers); err != nil {
			return err
		}
		return env.markSeeded()
	}
	// seed: each connection submits its share
	var wg sync.WaitGroup
	errc := make(chan error, len(clients))
	per := (env.o.Memories + len(clients) - 1) / len(clients)
	for i, cl := range clients {
		n := min(per, env.o.Memories-i*per)
		if n <= 0 {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := mrand.New(mrand.NewPCG(uint64(i), 1)) //nolint:gosec // deterministic test data
			u := &env.users[i%len(env.users)]
			for range n {
				id, err := submit(ctx, cl, rng)
				if err != nil {
					errc <- fmt.Errorf("seed: %w", err)
					return
				}
				u.addMemory(id)
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if err := settle(ctx, clients[0]); err != nil {
		return err
	}
	return env.markSeeded()
}

// markSeeded notes in a kept data dir that it holds a run's memories.
func (env *environment) markSeeded() error {
	if env.keep {
		return os.WriteFile(filepath.Join(env.dir, seededMark), []byte(fmt.Sprintf("%d memories, %d users\n", env.o.Memories, env.o.Users)), 0o600)
	}
	return nil
}

// loadSeeded gives each user of a reused data dir the ids of their newest
// memories (what update_memory picks from).
func (env *environment) loadSeeded(ctx context.Context, clients []*mcpClient) error {
	for i := range min(len(env.users), len(clients)) {
		r, err := clients[i].CallTool(ctx, "get_memories", map[string]any{"limit": 100})
		if err != nil {
			return fmt.Errorf("reused data: %w", err)
		}
		var page struct {
			Memories []struct {
				ID string `json:"id"`
			} `json:"memories"`
		}
		if err := json.Unmarshal(r.StructuredContent, &page); err != nil {
			return fmt.Errorf("reused data: get_memories answered %s: %w", mcpload.Truncate(string(r.StructuredContent)), err)
		}
		for _, m := range page.Memories {
			env.users[i].addMemory(m.ID)
		}
	}
	return nil
}

// importLines is the most lines one seeding import carries (the endpoint
// takes up to 100,000 lines and 32 MB).
const importLines = 20_000

// seedImport seeds the memories through each user's bulk import
// (POST /api/memories/import, the real write path for many memories: one
// transaction per import, indexed in the background like any write).
// Users import in parallel, each its share in parts of importLines.
//
// It returns one marker per user: a word only that user's last imported
// memory holds, and that memory's id (see settleImport).
func (env *environment) seedImport(ctx context.Context, p *picard) ([]seedMarker, error) {
	var wg sync.WaitGroup
	errc := make(chan error, len(env.users))
	markers := make([]seedMarker, len(env.users))
	per := (env.o.Memories + len(env.users) - 1) / len(env.users)
	for i := range env.users {
		n := min(per, env.o.Memories-i*per)
		if n <= 0 {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := &env.users[i]
			rng := mrand.New(mrand.NewPCG(uint64(i), 2)) //nolint:gosec // deterministic test data
			for lo := 0; lo < n; lo += importLines {
				var body bytes.Buffer
				enc := json.NewEncoder(&body)
				var ids []string
				for j := range min(importLines, n-lo) {
					id := uuid.NewString()
					ids = append(ids, id)
					text := "remember " + sentence(rng, 12)
					if lo+j == n-1 {
						markers[i] = seedMarker{user: i, id: id, word: fmt.Sprintf("seedmark%08x", rng.Uint32())}
						text += " " + markers[i].word
					}
					if err := enc.Encode(map[string]any{"kind": "memory", "id": id, "text": text, "permission": "private"}); err != nil {
						errc <- err
						return
					}
				}
				if err := postImport(ctx, p.base, u.Access, &body, len(ids)); err != nil {
					errc <- fmt.Errorf("seed: %w", err)
					return
				}
				for _, id := range ids {
					u.addMemory(id)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	return markers, nil
}

// seedMarker is a word only one memory holds.
type seedMarker struct {
	user     int
	id, word string
}

// settleImport waits until every user's last imported memory is found by
// query_memory. Picard indexes what an import wrote in the background, in
// order, and a search waits for earlier writes at most 3 s; so seeding
// ends only when the last memory, and so every one, is indexed.
func (env *environment) settleImport(ctx context.Context, p *picard, markers []seedMarker) error {
	for _, m := range markers {
		if m.id == "" {
			continue // a user with nothing to import
		}
		cl := newMCPClient(env.o, p.base+"/mcp", env.users[m.user].Access, p.stateless)
		if err := cl.Initialize(ctx); err != nil {
			return fmt.Errorf("settle: %w", err)
		}
		for {
			r, err := cl.CallTool(ctx, "query_memory", map[string]any{"query": m.word, "limit": 1, "scope": "own"})
			if err != nil {
				return fmt.Errorf("settle: %w", err)
			}
			if strings.Contains(string(r.StructuredContent), m.id) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func postImport(ctx context.Context, base, access string, body io.Reader, want int) error {
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/memories/import", body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("import: HTTP %d: %s", resp.StatusCode, mcpload.Truncate(string(data)))
	}
	var res struct {
		Created int `json:"created"`
	}
	if err := json.Unmarshal(data, &res); err != nil || res.Created != want {
		return fmt.Errorf("import created %d of %d memories: %s", res.Created, want, mcpload.Truncate(string(data)))
	}
	return nil
}

// settle waits until Picard has indexed every write acknowledged so far:
// writes are indexed in the background, and a search waits for the writes
// acknowledged before it. Seeding and write lines end with it, so their
// time and CPU include indexing what they wrote.
func settle(ctx context.Context, cl *mcpClient) error {
	if _, err := cl.CallTool(ctx, "query_memory", map[string]any{"query": "settle", "limit": 1}); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	return nil
}

// clients opens one MCP client per connection, connection i as user i mod U.
func (env *environment) clients(ctx context.Context, p *picard, stateless bool) ([]*mcpClient, error) {
	out := make([]*mcpClient, env.o.Conns)
	for i := range out {
		out[i] = newMCPClient(env.o, p.base+"/mcp", env.users[i%len(env.users)].Access, stateless)
		if err := out[i].Initialize(ctx); err != nil {
			return nil, fmt.Errorf("picard: %w", err)
		}
	}
	return out, nil
}

var words = strings.Fields(`apple river mountain coffee meeting garden project birthday concert
	travel paris london recipe pasta guitar lesson doctor dentist invoice budget report marathon
	training book novel movie family sister brother friend dinner lunch breakfast holiday beach
	camping hiking museum painting piano violin football tennis swimming yoga office deadline
	launch release server database password anniversary wedding puppy kitten garden tomato`)

func sentence(rng *mrand.Rand, n int) string {
	ws := make([]string, n)
	for i := range ws {
		ws[i] = words[rng.IntN(len(words))]
	}
	return strings.Join(ws, " ")
}

func submit(ctx context.Context, cl *mcpClient, rng *mrand.Rand) (string, error) {
	r, err := cl.CallTool(ctx, "submit_memory", map[string]any{"text": "remember " + sentence(rng, 12), "permission": "private"})
	if err != nil {
		return "", err
	}
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.StructuredContent, &m); err != nil || m.ID == "" {
		return "", fmt.Errorf("submit_memory answered no id: %s", mcpload.Truncate(string(r.StructuredContent)))
	}
	return m.ID, nil
}

// op returns workload wl's operation for connection i.
func (env *environment) op(ctx context.Context, wl string, rngs []*mrand.Rand) func(*mcpClient, int) error {
	getMemories := func(cl *mcpClient, _ int) error {
		return cl.CallToolChecked(ctx, "get_memories", map[string]any{"limit": 20})
	}
	query := func(cl *mcpClient, i int) error {
		return cl.CallToolChecked(ctx, "query_memory", map[string]any{"query": sentence(rngs[i], 3), "limit": 5})
	}
	write := func(cl *mcpClient, i int) error {
		id, err := submit(ctx, cl, rngs[i])
		if err == nil {
			env.users[i%len(env.users)].addMemory(id)
		}
		return err
	}
	switch wl {
	case "ping":
		return func(cl *mcpClient, _ int) error { return cl.Ping(ctx) }
	case "get_memories":
		return getMemories
	case "query_memory":
		return query
	case "submit_memory":
		return write
	case "update_memory":
		return func(cl *mcpClient, i int) error {
			id := env.users[i%len(env.users)].memory(rngs[i])
			if id == "" {
				return errors.New("no memory to update (seed with -n > 0)")
			}
			_, err := cl.CallTool(ctx, "update_memory", map[string]any{"memory_id": id, "text": "updated " + sentence(rngs[i], 12)})
			return err
		}
	default: // mixed: 70% reads, 20% searches, 10% writes
		return func(cl *mcpClient, i int) error {
			switch x := rngs[i].IntN(10); {
			case x < 7:
				return getMemories(cl, i)
			case x < 9:
				return query(cl, i)
			default:
				return write(cl, i)
			}
		}
	}
}

// measure runs one workload against p, profiling it when asked.
func (env *environment) measure(ctx context.Context, p *picard, mode, wl string) (Result, error) {
	clients, err := env.clients(ctx, p, mode == "stateless")
	if err != nil {
		return Result{}, err
	}
	rngs := make([]*mrand.Rand, len(clients))
	for i := range rngs {
		rngs[i] = mrand.New(mrand.NewPCG(uint64(i), uint64(len(wl)))) //nolint:gosec // deterministic test data
	}
	var prof sync.WaitGroup
	var profErr error
	if env.o.ProfileDir != "" {
		prof.Add(1)
		go func() {
			defer prof.Done()
			profErr = env.profile(ctx, p, mode+"-"+wl)
		}()
		time.Sleep(50 * time.Millisecond) // let the profile start first
	}
	rowsBefore := env.accessLogRows(ctx, p)
	var r Result
	var settleErr error
	cpu := measureCPU(p.cmd.Process.Pid, func() {
		r.ClientCPU = measureCPU(os.Getpid(), func() {
			r = drive(ctx, clients, env.o.Duration, env.op(ctx, wl, rngs))
		})
		if wl == "submit_memory" || wl == "update_memory" || wl == "mixed" {
			settleErr = settle(ctx, clients[0]) // the backlog's indexing is this line's CPU
		}
	})
	if settleErr != nil {
		return Result{}, settleErr
	}
	prof.Wait()
	r.CPU = cpu
	r.LogRows = -1
	if rowsBefore >= 0 {
		time.Sleep(1200 * time.Millisecond) // the access log writes within a second
		if after := env.accessLogRows(ctx, p); after >= 0 {
			r.LogRows = after - rowsBefore
		}
	}
	if profErr != nil {
		return Result{}, profErr
	}
	r.Mode, r.Workload = mode, wl
	return r, nil
}

// accessLogRows counts the rows of the access log (one per call and
// owner, memory_access_events); -1 when Picard has no such collection.
func (env *environment) accessLogRows(ctx context.Context, p *picard) int64 {
	var page struct {
		TotalItems int64 `json:"totalItems"`
	}
	if err := httpJSON(ctx, "GET", p.base+"/api/collections/memory_access_events/records?perPage=1&fields=id", env.suToken, nil, &page); err != nil {
		return -1
	}
	return page.TotalItems
}

// profile saves a CPU profile and an allocation profile (delta) of Picard
// taken over the workload's duration, through the superuser debug route.
func (env *environment) profile(ctx context.Context, p *picard, name string) error {
	if err := os.MkdirAll(env.o.ProfileDir, 0o750); err != nil {
		return err
	}
	secs := max(1, int(math.Round(env.o.Duration.Seconds())))
	kinds := []string{"profile", "allocs"}
	if env.o.Trace {
		kinds = append(kinds, "trace")
	}
	var wg sync.WaitGroup
	errs := make([]error, len(kinds))
	for i, kind := range kinds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/api/debug/pprof/%s?seconds=%d", p.base, kind, secs), nil)
			if err != nil {
				errs[i] = err
				return
			}
			req.Header.Set("Authorization", env.suToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err != nil {
				errs[i] = err
				return
			}
			if resp.StatusCode != http.StatusOK {
				errs[i] = fmt.Errorf("pprof %s: HTTP %d: %s", kind, resp.StatusCode, mcpload.Truncate(string(data)))
				return
			}
			suffix := map[string]string{"profile": ".cpu.pprof", "allocs": ".allocs.pprof", "trace": ".trace"}[kind]
			errs[i] = os.WriteFile(filepath.Join(env.o.ProfileDir, name+suffix), data, 0o600)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// printTable writes the results, each Picard line as a ratio of the bare
// mcp-go server in the same mode (both of its runs together).
func printTable(w io.Writer, results []Result, bare map[string]Result, h mcpload.HTTP) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tworkload\treq/s\tp50\tp99\tcpu/req\terrors\tvs bare\tcpu vs bare\tlog rows/call\t")
	for _, r := range results {
		ratio, cpuRatio := "—", "—"
		if b, ok := bare[r.Mode]; ok && !strings.HasPrefix(r.Workload, "bare ") {
			if b.RPS() > 0 {
				ratio = fmt.Sprintf("%.0f%%", 100*r.RPS()/b.RPS())
			}
			if b.CPUPerRequest() > 0 && r.CPUPerRequest() > 0 {
				cpuRatio = fmt.Sprintf("%.0f%%", 100*float64(b.CPUPerRequest())/float64(r.CPUPerRequest()))
			}
		}
		logRows := "—"
		if r.LogRows >= 0 && r.Requests > 0 && !strings.HasPrefix(r.Workload, "bare ") {
			logRows = fmt.Sprintf("%.2f", float64(r.LogRows)/float64(r.Requests))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", r.Mode, r.Workload, r.RPS(), ms(r.P50), ms(r.P99), us(r.CPUPerRequest()), r.Errors, ratio, cpuRatio, logRows)
	}
	tw.Flush()
	fmt.Fprintln(w, "cpu/req: the server process's CPU time per request; cpu vs bare: bare's cpu/req over this line's,")
	fmt.Fprintln(w, "i.e. the share of bare mcp-go's rate this line would reach with the same CPU (load on a shared machine does not move it);")
	fmt.Fprintln(w, "log rows/call: access-log rows (memory_access_events) written per request, included in cpu/req")
	var client []string
	for _, r := range results {
		if r.ClientCPU > 0 && r.Requests > 0 {
			client = append(client, fmt.Sprintf("%s %s %s", r.Mode, r.Workload, us(r.ClientCPU/time.Duration(r.Requests))))
		}
	}
	if len(client) > 0 {
		fmt.Fprintln(w, "the load generator's own CPU per request ("+httpName(h)+"), on the same cores: "+strings.Join(client, ", "))
	}
	for _, r := range results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "first error in %s %s: %s\n", r.Mode, r.Workload, r.FirstError)
		}
	}
}
