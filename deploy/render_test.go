package deploy_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"go.yaml.in/yaml/v3"

	"github.com/picard-mcp/picard/platform"
)

// The Render Blueprint fields we use, as Render's blueprint reference
// documents them. Decoding with KnownFields rejects any other key, so a
// typo (healthcheckPath, mountpath) fails here rather than being ignored by
// Render.
type blueprint struct {
	Services  []renderService  `yaml:"services"`
	Databases []renderDatabase `yaml:"databases"`
}

type renderService struct {
	Type            string      `yaml:"type"`
	Name            string      `yaml:"name"`
	Runtime         string      `yaml:"runtime"`
	Plan            string      `yaml:"plan"`
	Region          string      `yaml:"region"`
	DockerfilePath  string      `yaml:"dockerfilePath"`
	DockerContext   string      `yaml:"dockerContext"`
	DockerCommand   string      `yaml:"dockerCommand"`
	HealthCheckPath string      `yaml:"healthCheckPath"`
	NumInstances    int         `yaml:"numInstances"`
	Disk            *renderDisk `yaml:"disk"`
	EnvVars         []renderEnv `yaml:"envVars"`
}

type renderDisk struct {
	Name      string `yaml:"name"`
	MountPath string `yaml:"mountPath"`
	SizeGB    int    `yaml:"sizeGB"`
}

type renderEnv struct {
	Key           string  `yaml:"key"`
	Value         *string `yaml:"value"`
	GenerateValue bool    `yaml:"generateValue"`
	Sync          *bool   `yaml:"sync"`
	FromDatabase  *struct {
		Name     string `yaml:"name"`
		Property string `yaml:"property"`
	} `yaml:"fromDatabase"`
	FromService *struct {
		Type      string `yaml:"type"`
		Name      string `yaml:"name"`
		Property  string `yaml:"property"`
		EnvVarKey string `yaml:"envVarKey"`
	} `yaml:"fromService"`
	FromGroup string `yaml:"fromGroup"`
}

type renderDatabase struct {
	Name                 string `yaml:"name"`
	Plan                 string `yaml:"plan"`
	Region               string `yaml:"region"`
	PostgresMajorVersion string `yaml:"postgresMajorVersion"`
	DatabaseName         string `yaml:"databaseName"`
	User                 string `yaml:"user"`
	DiskSizeGB           int    `yaml:"diskSizeGB"`
	IPAllowList          []any  `yaml:"ipAllowList"`
	ReadReplicas         []any  `yaml:"readReplicas"`
	HighAvailability     any    `yaml:"highAvailability"`
}

// sources counts how an env var gets its value; Render wants exactly one.
func (e renderEnv) sources() []string {
	var s []string
	if e.Value != nil {
		s = append(s, "value")
	}
	if e.GenerateValue {
		s = append(s, "generateValue")
	}
	if e.Sync != nil && !*e.Sync {
		s = append(s, "sync: false")
	}
	if e.FromDatabase != nil {
		s = append(s, "fromDatabase")
	}
	if e.FromService != nil {
		s = append(s, "fromService")
	}
	if e.FromGroup != "" {
		s = append(s, "fromGroup")
	}
	return s
}

func loadBlueprint(t testing.TB) blueprint {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, "render.yaml"))))
	dec.KnownFields(true)
	var bp blueprint
	if err := dec.Decode(&bp); err != nil {
		t.Fatalf("render.yaml: %v", err)
	}
	return bp
}

// renderOnlyVars are variables Render itself reads.
var renderOnlyVars = map[string]bool{"PORT": true}

// fromDatabaseProperties are the documented fromDatabase properties.
var fromDatabaseProperties = []string{"host", "port", "database", "user", "password", "connectionString"}

func TestRenderBlueprint(t *testing.T) {
	bp := loadBlueprint(t)
	if len(bp.Services) != 2 || len(bp.Databases) != 2 {
		t.Fatalf("want two web services and two databases, got %d and %d", len(bp.Services), len(bp.Databases))
	}
	dbs := map[string]renderDatabase{}
	for _, d := range bp.Databases {
		if d.Name == "" || d.DatabaseName == "" || d.User == "" {
			t.Errorf("database %+v: name, databaseName and user are required (they cannot change later)", d)
		}
		if _, dup := dbs[d.Name]; dup {
			t.Errorf("two databases named %s", d.Name)
		}
		dbs[d.Name] = d
		if !regexp.MustCompile(`^\d+$`).MatchString(d.PostgresMajorVersion) {
			t.Errorf("database %s: pin postgresMajorVersion (a major number as a string), got %q", d.Name, d.PostgresMajorVersion)
		}
		// the same major as docker-compose.yml's databases
		if !strings.Contains(readFile(t, "docker-compose.yml"), "pg"+d.PostgresMajorVersion) {
			t.Errorf("database %s: PostgreSQL %s differs from docker-compose.yml's pgvector image", d.Name, d.PostgresMajorVersion)
		}
	}
	byName := map[string]renderService{}
	for _, s := range bp.Services {
		byName[s.Name] = s
		if s.Type != "web" || s.Runtime != "docker" {
			t.Errorf("service %s: type %q runtime %q, want web and docker", s.Name, s.Type, s.Runtime)
		}
		if s.HealthCheckPath != "/readyz" {
			t.Errorf("service %s: healthCheckPath %q, want /readyz", s.Name, s.HealthCheckPath)
		}
		if _, err := os.Stat(filepath.Join(root(t), filepath.FromSlash(s.DockerfilePath))); err != nil || s.DockerContext != "." {
			t.Errorf("service %s: dockerfilePath %q / dockerContext %q must name this repository's Dockerfile", s.Name, s.DockerfilePath, s.DockerContext)
		}
		if s.Region != bp.Databases[0].Region {
			t.Errorf("service %s in %q, its database in %q: keep them in one region (private network)", s.Name, s.Region, bp.Databases[0].Region)
		}
		seen := map[string]bool{}
		for _, e := range s.EnvVars {
			if seen[e.Key] {
				t.Errorf("service %s sets %s twice", s.Name, e.Key)
			}
			seen[e.Key] = true
			if src := e.sources(); len(src) != 1 {
				t.Errorf("service %s %s: want exactly one source, got %v", s.Name, e.Key, src)
			}
			if e.FromDatabase != nil {
				if _, ok := dbs[e.FromDatabase.Name]; !ok {
					t.Errorf("service %s %s: fromDatabase names %q, which is not declared", s.Name, e.Key, e.FromDatabase.Name)
				}
				if !slices.Contains(fromDatabaseProperties, e.FromDatabase.Property) {
					t.Errorf("service %s %s: fromDatabase property %q is not one of %v", s.Name, e.Key, e.FromDatabase.Property, fromDatabaseProperties)
				}
			}
			if secretName.MatchString(e.Key) && e.Value != nil {
				t.Errorf("service %s gives %s a value in the file: use generateValue, sync: false or fromDatabase", s.Name, e.Key)
			}
		}
	}
	picard, client := byName["picard"], byName["picard-clientapp"]
	if picard.Name == "" || client.Name == "" {
		t.Fatalf("want services picard and picard-clientapp, got %v", slices.Collect(maps.Keys(byName)))
	}

	t.Run("picard", func(t *testing.T) {
		if picard.DockerCommand != "" {
			t.Errorf("picard overrides the image's command with %q", picard.DockerCommand)
		}
		d := parseDockerfile(t)
		cmd := stageCommands[*instructions.CmdCommand](d.final)
		imageCmd := cmd[len(cmd)-1].CmdLine
		if picard.Disk == nil || picard.Disk.MountPath != flag(imageCmd, "--dir") || picard.Disk.SizeGB < 1 {
			t.Errorf("picard's disk %+v must be mounted at its data dir %s", picard.Disk, flag(imageCmd, "--dir"))
		}
		checkEnv(t, picard, picardVars(t), portOf(flag(imageCmd, "--http")), "connectionString")
		env := simulateRender(t, picard, dbs)
		if _, err := platform.LoadConfig(func(k string) string { return env[k] }, flag(imageCmd, "--http")); err != nil {
			t.Errorf("picard would refuse Render's environment: %v", err)
		}
		if env["PICARD_VECTOR_DSN"] == "" {
			t.Error("picard must use its Render Postgres (PICARD_VECTOR_DSN) for vectors")
		}
	})

	t.Run("clientapp", func(t *testing.T) {
		cmd := strings.Fields(client.DockerCommand)
		if len(cmd) < 2 || cmd[0] != runtimeBinDir+"/clientapp" || cmd[1] != "serve" {
			t.Fatalf("clientapp dockerCommand %q: want %s/clientapp serve …", client.DockerCommand, runtimeBinDir)
		}
		if !strings.HasPrefix(flag(cmd, "--http"), "0.0.0.0:") {
			t.Errorf("clientapp must listen on 0.0.0.0, got %q", flag(cmd, "--http"))
		}
		checkEnv(t, client, clientappVars(t), portOf(flag(cmd, "--http")), "connectionString")
		env := simulateRender(t, client, dbs)
		if env["CLIENTAPP_DATABASE_URL"] == "" || env["CLIENTAPP_PICARD_URL"] == "" {
			t.Error("clientapp needs CLIENTAPP_DATABASE_URL (its Render Postgres) and CLIENTAPP_PICARD_URL")
		}
	})

	t.Run("no secret in the file", func(t *testing.T) {
		raw := readFile(t, "render.yaml")
		if regexp.MustCompile(`://[^/\s:@]+:[^/\s@]+@`).MatchString(raw) {
			t.Error("render.yaml holds a URL with credentials")
		}
		for _, s := range bp.Services {
			for _, e := range s.EnvVars {
				if e.Value != nil && len(*e.Value) >= 20 {
					t.Errorf("%s %s has a long literal value: is it a secret?", s.Name, e.Key)
				}
			}
		}
	})
}

// checkEnv: every variable is one the program (or Render) reads, PORT is
// the port the program listens on, and the DSN comes from a database.
func checkEnv(t *testing.T, s renderService, known map[string]bool, port, prop string) {
	t.Helper()
	for _, e := range s.EnvVars {
		if !known[e.Key] && !renderOnlyVars[e.Key] {
			t.Errorf("%s sets %s, which it does not read", s.Name, e.Key)
		}
		if e.Key == "PORT" && (e.Value == nil || *e.Value != port) {
			t.Errorf("%s PORT must be the listen port %s", s.Name, port)
		}
		if e.FromDatabase != nil && e.FromDatabase.Property != prop {
			t.Errorf("%s %s: want the database's %s", s.Name, e.Key, prop)
		}
	}
}

// simulateRender builds the environment Render would give the service:
// generateValue is a base64-encoded 256-bit value, fromDatabase the
// internal connection string, sync: false what an operator types.
func simulateRender(t *testing.T, s renderService, dbs map[string]renderDatabase) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, e := range s.EnvVars {
		switch {
		case e.Value != nil:
			env[e.Key] = *e.Value
		case e.GenerateValue:
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				t.Fatal(err)
			}
			env[e.Key] = base64.StdEncoding.EncodeToString(b)
		case e.FromDatabase != nil:
			d := dbs[e.FromDatabase.Name]
			env[e.Key] = (&url.URL{Scheme: "postgresql", User: url.UserPassword(d.User, "generated"),
				Host: "dpg-example-a", Path: "/" + d.DatabaseName}).String()
		case strings.Contains(e.Key, "EMAIL"):
			env[e.Key] = "admin@example.com"
		case strings.Contains(e.Key, "URL"):
			env[e.Key] = "https://" + s.Name + ".example.com"
		default:
			env[e.Key] = fmt.Sprintf("typed-by-operator-%x", len(e.Key)) + "-0123456789"
		}
	}
	return env
}

func portOf(hostport string) string {
	_, port, _ := strings.Cut(hostport, ":")
	return port
}
