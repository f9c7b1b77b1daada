package deploy_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/jackc/pgx/v5"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/picard-mcp/picard/internal/testpg"
)

// TestComposeWithoutContainers runs docker-compose.yml's services as local
// processes: each gets exactly the environment and command line the
// compose file gives its container, with only what a container engine
// would provide swapped for local equivalents — service host names and
// published ports for loopback ports, the databases for fresh databases in
// the test PostgreSQL, named volumes for temporary directories, and the
// image's binaries for ones built with the Dockerfile's own `go build`
// lines. A wrong variable name, port or URL in the compose file makes a
// service fail here, which no schema check would notice.
func TestComposeWithoutContainers(t *testing.T) {
	dsn := testpg.DSN(t)
	p := mustLoadCompose(t)
	bins := buildImageBinaries(t)
	h := newComposeHost(t, p, dsn, bins)

	// the probe fails while nothing listens (the real binary's exit code)
	if out, err := h.probe(svcPicard).CombinedOutput(); err == nil {
		t.Fatalf("picard healthcheck passed before picard started:\n%s", out)
	}
	picard := h.start(svcPicard)
	h.waitHealthy(picard)

	t.Run("picard uses db-mcp for vectors", func(t *testing.T) {
		conn := h.connectDB(svcDBMCP)
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_extension WHERE extname = 'vector'").Scan(&n); err != nil || n != 1 {
			t.Fatalf("pgvector not enabled in db-mcp's database (n=%d, %v): PICARD_VECTOR_DSN was not used", n, err)
		}
	})
	t.Run("the admin from .env can sign in", func(t *testing.T) {
		env := h.env(svcPicard)
		res := postJSON(t, http.DefaultClient, h.localURL(svcPicard)+"/api/collections/_superusers/auth-with-password",
			map[string]string{"identity": env["PICARD_ADMIN_EMAIL"], "password": env["PICARD_ADMIN_PASSWORD"]})
		if res.StatusCode != http.StatusOK {
			t.Fatalf("superuser sign-in: %d", res.StatusCode)
		}
	})

	if !clientappExists(t) {
		t.Log("clientapp is not in this checkout yet: its half of the smoke test runs once it is")
		return
	}
	client := h.start(svcClientapp)
	h.waitHealthy(client)
	if out, err := h.run(svcRegister); err != nil {
		t.Fatalf("docker compose run register: %v\n%s", err, out)
	}

	t.Run("a person signs up and stores a memory through clientapp", func(t *testing.T) {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Jar: jar, Timeout: 30 * time.Second}
		base := h.localURL(svcClientapp)
		form := func(p string, v url.Values) string {
			t.Helper()
			res, err := c.PostForm(base+p, v)
			if err != nil {
				t.Fatalf("POST %s: %v", p, err)
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			if res.StatusCode >= 400 {
				t.Fatalf("POST %s: %d %s", p, res.StatusCode, b)
			}
			return string(b)
		}
		form("/signup", url.Values{"username": {"ada"}, "email": {"ada@example.com"}, "password": {"analytical-engine"}})
		form("/connect/direct", nil)
		text := "The deployment smoke test stored this memory through clientapp"
		form("/memories/new", url.Values{"text": {text}, "permission": {"private"}})
		res, err := c.Get(base + "/memories")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), text) {
			t.Fatalf("GET /memories: %d, the memory is not listed:\n%s", res.StatusCode, b)
		}
	})
}

// buildImageBinaries runs the Dockerfile's `go build` lines (same flags,
// same build-stage environment) with the outputs in a temporary directory,
// and returns the binaries by name.
func buildImageBinaries(t *testing.T) map[string]string {
	t.Helper()
	d := parseDockerfile(t)
	dir := t.TempDir()
	var stageEnv []string
	for _, st := range d.stages[:d.finalIx] {
		for _, e := range stageCommands[*instructions.EnvCommand](st) {
			for _, kv := range e.Env {
				stageEnv = append(stageEnv, kv.Key+"="+kv.Value)
			}
		}
	}
	bins := map[string]string{}
	for _, b := range d.builds {
		if m, _ := filepath.Glob(filepath.Join(root(t), filepath.FromSlash(b.pkg), "*.go")); len(m) == 0 {
			continue // clientapp before it exists in this checkout
		}
		name := path.Base(b.out)
		args := append([]string{"build"}, b.args...)
		for i := range args {
			if i > 0 && args[i-1] == "-o" {
				args[i] = filepath.Join(dir, name)
			}
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root(t)
		cmd.Env = append(os.Environ(), stageEnv...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		bins[runtimeBinDir+"/"+name] = filepath.Join(dir, name)
	}
	return bins
}

// composeHost stands in for the container engine.
type composeHost struct {
	t       *testing.T
	p       *types.Project
	bins    map[string]string // image path -> local binary
	admin   *url.URL          // the test PostgreSQL
	dbs     map[string]string // database service -> database created for it
	ports   map[string]int    // service -> local port
	volumes map[string]string // named volume -> directory
	workdir string            // the image's WORKDIR
	repl    *strings.Replacer // host:port in URLs
}

func newComposeHost(t *testing.T, p *types.Project, dsn string, bins map[string]string) *composeHost {
	admin, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	h := &composeHost{t: t, p: p, bins: bins, admin: admin, dbs: map[string]string{}, ports: map[string]int{}, volumes: map[string]string{}}
	for _, w := range stageCommands[*instructions.WorkdirCommand](parseDockerfile(t).final) {
		h.workdir = w.Path
	}
	var pairs []string
	for name, s := range p.Services {
		if strings.HasPrefix(name, "db-") {
			h.dbs[name] = h.createDB(name)
			continue
		}
		for _, port := range s.Ports {
			h.ports[name] = freePort(t)
			local := strconv.Itoa(h.ports[name])
			// the service name and the published address stay two
			// different host names, as they are for a container
			pairs = append(pairs,
				name+":"+strconv.Itoa(int(port.Target)), "127.0.0.1:"+local,
				"localhost:"+port.Published, "localhost:"+local,
				"127.0.0.1:"+port.Published, "127.0.0.1:"+local)
		}
	}
	h.repl = strings.NewReplacer(pairs...)
	for v := range p.Volumes {
		h.volumes[v] = t.TempDir()
	}
	return h
}

// createDB makes the database a database service would hold, dropped when
// the test ends.
func (h *composeHost) createDB(svc string) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		h.t.Fatal(err)
	}
	name := "deploy_" + strings.ReplaceAll(svc, "-", "_") + "_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, h.admin.String())
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, h.admin.String())
		if err != nil {
			h.t.Logf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			h.t.Logf("drop database %s: %v", name, err)
		}
	})
	return name
}

func (h *composeHost) dbURL(svc string) *url.URL {
	u := *h.admin
	u.Path = "/" + h.dbs[svc]
	return &u
}

func (h *composeHost) connectDB(svc string) *pgx.Conn {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, h.dbURL(svc).String())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// rewrite maps one value from the compose file to this machine: a
// postgres:// URL naming a database service becomes the URL of the
// database created for it (the test server's credentials, the compose
// URL's options); service and published addresses become loopback ports.
func (h *composeHost) rewrite(v string) string {
	if u, err := url.Parse(v); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := h.dbs[u.Hostname()]; ok {
			local := h.dbURL(u.Hostname())
			q := local.Query()
			for k, vs := range u.Query() {
				q[k] = vs
			}
			local.RawQuery = q.Encode()
			return local.String()
		}
	}
	return h.repl.Replace(v)
}

func (h *composeHost) env(svc string) map[string]string {
	out := map[string]string{}
	for k, v := range env(h.p.Services[svc]) {
		out[k] = h.rewrite(v)
	}
	return out
}

func (h *composeHost) localURL(svc string) string {
	return "http://127.0.0.1:" + strconv.Itoa(h.ports[svc])
}

// command is the service's command line on this machine.
func (h *composeHost) command(svc string, argv []string) *exec.Cmd {
	h.t.Helper()
	s := h.p.Services[svc]
	if len(argv) == 0 {
		h.t.Fatalf("%s has no command", svc)
	}
	bin, ok := h.bins[argv[0]]
	if !ok {
		h.t.Fatalf("%s runs %s, which the image does not hold (it has %v)", svc, argv[0], h.bins)
	}
	args := make([]string, 0, len(argv)-1)
	for i, a := range argv[1:] {
		prev := argv[i]
		switch prev {
		case "--http":
			_, port, _ := net.SplitHostPort(a)
			if p := h.ports[svc]; p != 0 && port != "" {
				a = "127.0.0.1:" + strconv.Itoa(p)
			}
		case "--dir":
			dir := ""
			for _, v := range s.Volumes {
				if v.Target == a {
					dir = h.volumes[v.Source]
				}
			}
			if dir == "" {
				h.t.Fatalf("%s keeps data in %s, which is on no volume", svc, a)
			}
			a = dir
		default:
			a = h.rewrite(a)
		}
		args = append(args, a)
	}
	cmd := exec.Command(bin, args...)
	// the image's working directory, on the volume mounted there if any
	cmd.Dir = h.t.TempDir()
	for _, v := range s.Volumes {
		if v.Target == h.workdir {
			cmd.Dir = h.volumes[v.Source]
		}
	}
	// exactly the compose environment, nothing inherited
	cmd.Env = []string{}
	for k, v := range h.env(svc) {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// process is a running service.
type process struct {
	svc  string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

func (h *composeHost) start(svc string) *process {
	h.t.Helper()
	cmd := h.command(svc, h.p.Services[svc].Command)
	pr := &process{svc: svc, cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = pr.out, pr.out
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("start %s: %v", svc, err)
	}
	go func() { pr.err = cmd.Wait(); close(pr.done) }()
	h.t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-pr.done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-pr.done
		}
		if h.t.Failed() {
			h.t.Logf("%s output:\n%s", svc, pr.out.String())
		}
	})
	return pr
}

// waitHealthy runs the service's compose health check until it passes,
// within the budget the compose file gives it (start period + retries ×
// interval).
func (h *composeHost) waitHealthy(pr *process) {
	h.t.Helper()
	hc := h.p.Services[pr.svc].HealthCheck
	budget := time.Duration(*hc.StartPeriod) + time.Duration(*hc.Retries)*time.Duration(*hc.Interval)
	deadline := time.Now().Add(budget)
	for {
		out, err := h.probe(pr.svc).CombinedOutput()
		if err == nil {
			return
		}
		select {
		case <-pr.done:
			h.t.Fatalf("%s exited (%v) before becoming healthy:\n%s", pr.svc, pr.err, pr.out.String())
		default:
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s not healthy within its compose budget %s: %v\n%s\nservice output:\n%s", pr.svc, budget, err, out, pr.out.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// probe is the service's compose health check on this machine, pointed at
// the service's local port with --url.
func (h *composeHost) probe(svc string) *exec.Cmd {
	h.t.Helper()
	test := []string(h.p.Services[svc].HealthCheck.Test)
	if len(test) < 2 || test[0] != "CMD" {
		h.t.Fatalf("%s health check %v: want the exec form", svc, test)
	}
	return h.command(svc, append(test[1:len(test):len(test)], "--url", h.localURL(svc)))
}

// run runs a one-shot service to completion (`docker compose run --rm`).
func (h *composeHost) run(svc string) (string, error) {
	h.t.Helper()
	cmd := h.command(svc, h.p.Services[svc].Command)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	c.Env = cmd.Env
	out, err := c.CombinedOutput()
	return string(out), err
}

func postJSON(t *testing.T, c *http.Client, u string, body any) *http.Response {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
