package deploy_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/picard-mcp/picard/platform"
)

// The compose file's service names (the seed's), and the ports inside the
// containers.
const (
	svcDBMCP     = "db-mcp"
	svcDBClient  = "db-client"
	svcPicard    = "mcp_server"
	svcClientapp = "clientapp"
	svcRegister  = "register"
	picardPort   = 8001
	clientPort   = 8000
	pgDataDir    = "/var/lib/postgresql/data"
)

var requiredVarRE = regexp.MustCompile(`\$\{([A-Z0-9_]+):\?`)

// requiredVars are the variables docker-compose.yml refuses to run without.
func requiredVars(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, m := range requiredVarRE.FindAllStringSubmatch(readFile(t, "docker-compose.yml"), -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	if len(out) == 0 {
		t.Fatal("docker-compose.yml requires no variable: secrets would have defaults")
	}
	return out
}

// composeDir lays out what an operator has after the README's first steps:
// the compose file, `.env` copied from `.env.example` and
// `clientapp/.env` from `clientapp/.env.example`, with the required values
// filled in (all but skip).
func composeDir(t testing.TB, fill bool, skip string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "clientapp"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := readFile(t, ".env.example")
	if fill {
		for _, v := range requiredVars(t) {
			if v == skip {
				continue
			}
			re := regexp.MustCompile(`(?m)^` + v + `=.*$`)
			if !re.MatchString(env) {
				t.Fatalf(".env.example does not list %s, which docker-compose.yml requires", v)
			}
			env = re.ReplaceAllLiteralString(env, v+"="+exampleValue(t, v))
		}
	}
	for name, content := range map[string]string{
		"docker-compose.yml": readFile(t, "docker-compose.yml"),
		".env":               env,
		"clientapp/.env":     readFile(t, "clientapp/.env.example"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// exampleValue is what an operator following .env.example's comments puts.
func exampleValue(t testing.TB, name string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	switch {
	case strings.Contains(name, "FERNET"):
		return base64.URLEncoding.EncodeToString(b)
	case strings.Contains(name, "EMAIL"):
		return "admin@example.com"
	default:
		return hex.EncodeToString(b[:16])
	}
}

// loadCompose loads the project the way `docker compose` does (schema
// validation, `.env` interpolation, env_file merging), with every profile.
func loadCompose(t testing.TB, dir string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func mustLoadCompose(t testing.TB) *types.Project {
	t.Helper()
	p, err := loadCompose(t, composeDir(t, true, ""))
	if err != nil {
		t.Fatalf("docker-compose.yml with the example env files filled in: %v", err)
	}
	return p
}

func env(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// flag returns the value after name in a command line.
func flag(cmd []string, name string) string {
	if i := slices.Index(cmd, name); i >= 0 && i+1 < len(cmd) {
		return cmd[i+1]
	}
	return ""
}

func service(t testing.TB, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml has no service %q", name)
	}
	return s
}

func TestComposeRequiredVariablesFailLoudly(t *testing.T) {
	if _, err := loadCompose(t, composeDir(t, false, "")); err == nil {
		t.Fatal("docker-compose.yml loads with .env.example unchanged: required secrets have defaults")
	}
	for _, v := range requiredVars(t) {
		_, err := loadCompose(t, composeDir(t, true, v))
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("with %s empty, want an error naming it, got %v", v, err)
		}
	}
}

func TestCompose(t *testing.T) {
	p := mustLoadCompose(t)
	names := p.ServiceNames()
	slices.Sort(names)
	if want := []string{svcClientapp, svcDBClient, svcDBMCP, svcPicard, svcRegister}; !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	picard, client, register := service(t, p, svcPicard), service(t, p, svcClientapp), service(t, p, svcRegister)
	penv, cenv := env(picard), env(client)

	t.Run("health checks and healthy dependencies", func(t *testing.T) {
		for name, s := range p.Services {
			oneShot := slices.Contains(s.Profiles, "setup")
			hasCheck := s.HealthCheck != nil && !s.HealthCheck.Disable && len(s.HealthCheck.Test) > 1
			if !oneShot && !hasCheck {
				t.Errorf("service %s has no health check", name)
			}
			for dep, d := range s.DependsOn {
				if d.Condition != types.ServiceConditionHealthy {
					t.Errorf("%s depends on %s with condition %q, want %s", name, dep, d.Condition, types.ServiceConditionHealthy)
				}
				ds := service(t, p, dep)
				if ds.HealthCheck == nil || ds.HealthCheck.Disable || len(ds.HealthCheck.Test) < 2 {
					t.Errorf("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
				}
			}
		}
		for _, d := range []struct{ from, to string }{
			{svcPicard, svcDBMCP}, {svcClientapp, svcDBClient}, {svcClientapp, svcPicard},
			{svcRegister, svcPicard}, {svcRegister, svcDBClient},
		} {
			if _, ok := service(t, p, d.from).DependsOn[d.to]; !ok {
				t.Errorf("%s must wait for %s", d.from, d.to)
			}
		}
		for _, c := range []struct {
			svc  types.ServiceConfig
			want []string
		}{
			{picard, []string{"CMD", runtimeBinDir + "/picard", "healthcheck"}},
			{client, []string{"CMD", runtimeBinDir + "/clientapp", "healthcheck"}},
		} {
			if got := []string(c.svc.HealthCheck.Test); !slices.Equal(got, c.want) {
				t.Errorf("%s health check %v, want %v (the image has no shell)", c.svc.Name, got, c.want)
			}
		}
		// without --url the probe asks the default address: it must be
		// the port the server listens on in the container
		if u, _ := url.Parse(platform.DefaultHealthcheckURL); u == nil || u.Port() != "8001" {
			t.Errorf("picard healthcheck's default URL %s does not use the container port %d", platform.DefaultHealthcheckURL, picardPort)
		}
	})

	t.Run("images pinned", func(t *testing.T) {
		for _, name := range []string{svcDBMCP, svcDBClient} {
			img := service(t, p, name).Image
			_, tag, ok := strings.Cut(img, ":")
			if !ok || tag == "latest" || !regexp.MustCompile(`\d`).MatchString(tag) {
				t.Errorf("%s image %q: pin a versioned tag", name, img)
			}
		}
		if img := service(t, p, svcDBMCP).Image; !strings.Contains(img, "pgvector") {
			t.Errorf("db-mcp image %q must provide pgvector", img)
		}
		for _, s := range []types.ServiceConfig{picard, client, register} {
			if s.Build == nil || s.Build.Context != p.WorkingDir || s.Build.Dockerfile != "Dockerfile" {
				t.Errorf("%s must be built from the repository's Dockerfile, got %+v", s.Name, s.Build)
			}
		}
	})

	t.Run("ports and listen addresses", func(t *testing.T) {
		for _, c := range []struct {
			svc  types.ServiceConfig
			port uint32
			bin  string
		}{{picard, picardPort, "picard"}, {client, clientPort, "clientapp"}} {
			if len(c.svc.Ports) != 1 || c.svc.Ports[0].Target != c.port || c.svc.Ports[0].Published != itoa(c.port) {
				t.Errorf("%s ports %+v, want %d published as %d", c.svc.Name, c.svc.Ports, c.port, c.port)
			}
			cmd := []string(c.svc.Command)
			if len(cmd) < 2 || cmd[0] != runtimeBinDir+"/"+c.bin || cmd[1] != "serve" {
				t.Errorf("%s command %v: want %s/%s serve", c.svc.Name, cmd, runtimeBinDir, c.bin)
			}
			if got := flag(cmd, "--http"); got != "0.0.0.0:"+itoa(c.port) {
				t.Errorf("%s listens on %q: in a container it must listen on 0.0.0.0:%d to be reachable", c.svc.Name, got, c.port)
			}
		}
	})

	t.Run("every variable is one the program reads", func(t *testing.T) {
		known := picardVars(t)
		for k := range penv {
			if !known[k] {
				t.Errorf("mcp_server sets %s, which picard does not read", k)
			}
		}
		known = clientappVars(t)
		for _, s := range []types.ServiceConfig{client, register} {
			for k := range env(s) {
				if !known[k] {
					t.Errorf("%s sets %s, which clientapp does not read", s.Name, k)
				}
			}
		}
	})

	t.Run("picard accepts its configuration", func(t *testing.T) {
		cfg, err := platform.LoadConfig(func(k string) string { return penv[k] }, flag(picard.Command, "--http"))
		if err != nil {
			t.Fatalf("picard would refuse to start: %v", err)
		}
		if cfg.VectorDSN == "" {
			t.Fatal("mcp_server has no PICARD_VECTOR_DSN: it would use the embedded store instead of db-mcp")
		}
		if len(cfg.FernetKeys) == 0 || cfg.AdminEmail == "" {
			t.Error("mcp_server must get its Fernet keys and admin account from .env")
		}
	})

	t.Run("connection URLs point at the right services with their credentials", func(t *testing.T) {
		checkPG(t, p, svcPicard, "PICARD_VECTOR_DSN", penv["PICARD_VECTOR_DSN"], svcDBMCP)
		checkPG(t, p, svcClientapp, "CLIENTAPP_DATABASE_URL", cenv["CLIENTAPP_DATABASE_URL"], svcDBClient)
		want := "http://" + svcPicard + ":" + itoa(picardPort)
		if got := cenv["CLIENTAPP_PICARD_URL"]; got != want {
			t.Errorf("clientapp's CLIENTAPP_PICARD_URL = %q, want %q", got, want)
		}
		// Picard's /mcp only accepts its public host (DNS-rebinding
		// guard): the service name clientapp uses must be allowed too
		if !slices.Contains(strings.Split(penv["PICARD_ALLOWED_ORIGINS"], ","), want) {
			t.Errorf("PICARD_ALLOWED_ORIGINS = %q must list %s, or Picard refuses clientapp's /mcp requests", penv["PICARD_ALLOWED_ORIGINS"], want)
		}
		for _, c := range []struct{ svc, v, port string }{
			{svcPicard, penv["PICARD_PUBLIC_URL"], itoa(picardPort)},
			{svcClientapp, cenv["CLIENTAPP_PUBLIC_URL"], itoa(clientPort)},
		} {
			u, err := url.Parse(c.v)
			if err != nil || u.Port() != c.port {
				t.Errorf("%s's public URL %q: by default the published port %s", c.svc, c.v, c.port)
			}
		}
	})

	t.Run("register step", func(t *testing.T) {
		cmd := []string(register.Command)
		if len(cmd) < 2 || cmd[0] != runtimeBinDir+"/clientapp" || cmd[1] != "register" {
			t.Fatalf("register command %v: want clientapp register", cmd)
		}
		for f, want := range map[string]string{
			"--picard-url":     cenv["CLIENTAPP_PICARD_URL"],
			"--admin-email":    penv["PICARD_ADMIN_EMAIL"],
			"--admin-password": penv["PICARD_ADMIN_PASSWORD"],
			"--public-url":     cenv["CLIENTAPP_PUBLIC_URL"],
		} {
			if got := flag(cmd, f); got != want || want == "" {
				t.Errorf("register %s %q, want %q", f, got, want)
			}
		}
		// the same data directory as the server: with CLIENTAPP_SECRET_KEY
		// unset, the key that encrypts the stored client secret lives there
		if got, want := flag(cmd, "--dir"), flag(client.Command, "--dir"); got != want {
			t.Errorf("register --dir %q, clientapp serve --dir %q: they must share the data directory", got, want)
		}
		renv := env(register)
		for k, v := range cenv {
			if renv[k] != v {
				t.Errorf("register's %s = %q, clientapp's %q: it must store the registration where clientapp reads it", k, renv[k], v)
			}
		}
		if !slices.Equal(mounts(register), mounts(client)) {
			t.Errorf("register mounts %v, clientapp %v: they must share clientapp's data", mounts(register), mounts(client))
		}
	})

	t.Run("named volumes hold every piece of state", func(t *testing.T) {
		wantMount := map[string]string{
			svcDBMCP:     pgDataDir,
			svcDBClient:  pgDataDir,
			svcPicard:    flag(picard.Command, "--dir"),
			svcClientapp: flag(client.Command, "--dir"),
			svcRegister:  flag(client.Command, "--dir"),
		}
		used := map[string]bool{}
		for name, s := range p.Services {
			found := false
			for _, v := range s.Volumes {
				if v.Type != types.VolumeTypeVolume {
					t.Errorf("%s mounts %s as %s: use named volumes (no host paths)", name, v.Target, v.Type)
					continue
				}
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("%s mounts undeclared volume %s", name, v.Source)
				}
				used[v.Source] = true
				if v.Target == wantMount[name] {
					found = true
				}
			}
			if wantMount[name] == "" || !found {
				t.Errorf("%s keeps state in %q, which no named volume holds", name, wantMount[name])
			}
		}
		for v := range p.Volumes {
			if !used[v] {
				t.Errorf("volume %s is declared but unused", v)
			}
		}
		if len(used) < 4 {
			t.Errorf("want four named volumes (two databases, two data dirs), got %v", used)
		}
	})
}

// checkPG checks that a postgres:// URL in svc's environment names the
// database service db with the user, password and database it creates.
func checkPG(t *testing.T, p *types.Project, svc, name, raw, db string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Errorf("%s %s = %q: not a postgres:// URL", svc, name, raw)
		return
	}
	denv := env(service(t, p, db))
	pw, _ := u.User.Password()
	switch {
	case u.Hostname() != db || u.Port() != "5432":
		t.Errorf("%s %s points at %s, want %s:5432", svc, name, u.Host, db)
	case u.User.Username() != denv["POSTGRES_USER"] || pw != denv["POSTGRES_PASSWORD"] || pw == "":
		t.Errorf("%s %s: credentials differ from %s's POSTGRES_USER/POSTGRES_PASSWORD", svc, name, db)
	case strings.TrimPrefix(u.Path, "/") != denv["POSTGRES_DB"]:
		t.Errorf("%s %s: database %q, %s creates %q", svc, name, u.Path, db, denv["POSTGRES_DB"])
	}
	if _, ok := service(t, p, svc).DependsOn[db]; !ok {
		t.Errorf("%s uses %s but does not wait for it", svc, db)
	}
}

func mounts(s types.ServiceConfig) []string {
	var out []string
	for _, v := range s.Volumes {
		out = append(out, v.Source+":"+v.Target)
	}
	return out
}

func itoa(n uint32) string { return strconv.Itoa(int(n)) }

// secretName matches variable names that hold secrets.
var secretName = regexp.MustCompile(`PASSWORD|SECRET|_KEY|_KEYS|TOKEN`)

func TestNoSecretsCommitted(t *testing.T) {
	// the compose file takes every secret from .env: any value given to
	// a secret-named key, or embedded in a URL, is an interpolation
	line := regexp.MustCompile(`^\s*-?\s*([A-Z0-9_]+)\s*[:=]\s*(.*)$`)
	for i, l := range strings.Split(readFile(t, "docker-compose.yml"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil || !secretName.MatchString(m[1]) {
			continue
		}
		if v := strings.Trim(m[2], `"' `); v != "" && !strings.HasPrefix(v, "${") {
			t.Errorf("docker-compose.yml:%d gives %s a literal value: take it from .env", i+1, m[1])
		}
	}
	if regexp.MustCompile(`://[^:/@\s]+:[^$@\s]+@`).MatchString(readFile(t, "docker-compose.yml")) {
		t.Error("docker-compose.yml has a URL with a literal password")
	}
	for _, f := range []string{".env.example", "clientapp/.env.example"} {
		for i, l := range strings.Split(readFile(t, f), "\n") {
			k, v, ok := strings.Cut(l, "=")
			if !ok || strings.HasPrefix(strings.TrimSpace(k), "#") || !secretName.MatchString(k) {
				continue
			}
			if strings.TrimSpace(v) != "" {
				t.Errorf("%s:%d ships a value for %s: leave secrets empty", f, i+1, k)
			}
		}
	}
	ignored := strings.Fields(readFile(t, ".gitignore"))
	for _, want := range []string{"/.env", "/clientapp/.env"} {
		if !slices.Contains(ignored, want) {
			t.Errorf(".gitignore lacks %s: a real .env could be committed", want)
		}
	}
}

// TestEnvExampleListsEveryVariable: every variable docker-compose.yml
// interpolates is explained in .env.example, so an operator finds every
// setting in one place.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	example := readFile(t, ".env.example")
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+)`).FindAllStringSubmatch(readFile(t, "docker-compose.yml"), -1) {
		if !regexp.MustCompile(`(?m)^` + m[1] + `=`).MatchString(example) {
			t.Errorf("docker-compose.yml reads ${%s}, which .env.example does not list", m[1])
		}
	}
}
