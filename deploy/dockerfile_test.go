package deploy_test

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// runtimeBinDir is where the image keeps its programs; compose and
// render.yaml call them by these paths.
const runtimeBinDir = "/usr/local/bin"

// dockerfile is the parsed Dockerfile.
type dockerfile struct {
	stages  []instructions.Stage
	args    map[string]string // global ARG defaults
	builds  []goBuild         // `go build -o OUT PKG` in the build stages
	final   instructions.Stage
	finalIx int
}

// goBuild is one `go build` of a RUN line.
type goBuild struct {
	stage string
	args  []string // after "go build"
	out   string   // -o
	pkg   string   // last argument
}

func parseDockerfile(t testing.TB) *dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile does not parse: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile parser warning: %s", w.Short)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile instructions: %v", err)
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage Dockerfile, got %d stage(s)", len(stages))
	}
	d := &dockerfile{stages: stages, args: map[string]string{}, final: stages[len(stages)-1], finalIx: len(stages) - 1}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			d.args[kv.Key] = kv.ValueString()
		}
	}
	for _, st := range stages[:len(stages)-1] {
		for _, c := range st.Commands {
			run, ok := c.(*instructions.RunCommand)
			if !ok {
				continue
			}
			for _, seg := range strings.Split(strings.Join(run.CmdLine, " "), "&&") {
				// split like the shell that runs the line does (quotes)
				fields, err := shell.NewLex('\\').ProcessWords(seg, shell.EnvsFromSlice(nil))
				if err != nil {
					t.Fatalf("RUN %s: %v", seg, err)
				}
				if len(fields) < 3 || fields[0] != "go" || fields[1] != "build" {
					continue
				}
				b := goBuild{stage: st.Name, args: fields[2:], pkg: fields[len(fields)-1]}
				if i := slices.Index(fields, "-o"); i > 0 && i+1 < len(fields) {
					b.out = fields[i+1]
				}
				d.builds = append(d.builds, b)
			}
		}
	}
	return d
}

func stageCommands[T any](st instructions.Stage) []T {
	var out []T
	for _, c := range st.Commands {
		if v, ok := c.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t)
	final := d.final

	t.Run("build stage: static, trimmed, cached, Go of go.mod", func(t *testing.T) {
		m := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(readFile(t, "go.mod"))
		if m == nil {
			t.Fatal("go.mod has no go directive")
		}
		if got := d.args["GO_VERSION"]; got != m[1] {
			t.Errorf("ARG GO_VERSION=%q, go.mod says go %s: keep them in step", got, m[1])
		}
		if len(d.builds) == 0 {
			t.Fatal("no `go build` in the build stage")
		}
		build := d.stages[0]
		cgoOff := false
		for _, e := range stageCommands[*instructions.EnvCommand](build) {
			for _, kv := range e.Env {
				if kv.Key == "CGO_ENABLED" && kv.Value == "0" {
					cgoOff = true
				}
			}
		}
		if !cgoOff {
			t.Error("the build stage must set CGO_ENABLED=0 (static binaries for an image without libc)")
		}
		for _, b := range d.builds {
			if !slices.Contains(b.args, "-trimpath") {
				t.Errorf("go build %s: want -trimpath", b.pkg)
			}
			if b.out == "" {
				t.Errorf("go build %s: want -o", b.pkg)
			}
			if b.pkg == "./clientapp" && !clientappExists(t) {
				t.Logf("%s is not in this checkout yet; the line is kept for when it is", b.pkg)
				continue
			}
			if st, err := os.Stat(filepath.Join(root(t), filepath.FromSlash(b.pkg))); err != nil || !st.IsDir() {
				t.Errorf("go build %s: no such package directory", b.pkg)
			}
		}
		var built []string
		for _, b := range d.builds {
			built = append(built, b.pkg)
		}
		for _, want := range []string{".", "./clientapp"} {
			if !slices.Contains(built, want) {
				t.Errorf("the image must build %s (got %v)", want, built)
			}
		}
		caches := map[string]bool{}
		for _, run := range stageCommands[*instructions.RunCommand](build) {
			// mount options are only read when the command is expanded
			if err := run.Expand(func(w string) (string, error) { return w, nil }); err != nil {
				t.Fatal(err)
			}
			for _, m := range instructions.GetMounts(run) {
				if m.Type == instructions.MountTypeCache {
					caches[m.Target] = true
				}
			}
		}
		for _, want := range []string{"/go/pkg/mod", "/root/.cache/go-build"} {
			if !caches[want] {
				t.Errorf("want a cache mount on %s (have %v)", want, caches)
			}
		}
	})

	t.Run("final stage runs as non-root", func(t *testing.T) {
		users := stageCommands[*instructions.UserCommand](final)
		if len(users) == 0 {
			t.Fatal("the final stage has no USER: it would run as root")
		}
		u := users[len(users)-1].User
		name, _, _ := strings.Cut(u, ":")
		if name == "" || name == "root" || name == "0" {
			t.Errorf("final USER %q is root", u)
		}
	})

	t.Run("final stage copies only the binaries", func(t *testing.T) {
		if adds := stageCommands[*instructions.AddCommand](final); len(adds) > 0 {
			t.Errorf("ADD in the final stage: %v", adds)
		}
		if runs := stageCommands[*instructions.RunCommand](final); len(runs) > 0 {
			t.Errorf("RUN in the final stage (the runtime has no shell): %v", runs)
		}
		outs := map[string]bool{}
		for _, b := range d.builds {
			outs[b.out] = true
		}
		// besides the programs, only the CA bundle HTTPS needs
		allowed := map[string]bool{"/etc/ssl/certs/ca-certificates.crt": true}
		copied := map[string]bool{}
		for _, c := range stageCommands[*instructions.CopyCommand](final) {
			if c.From == "" {
				t.Errorf("COPY %v from the build context into the runtime image: copy built files from the build stage only", c.SourcePaths)
				continue
			}
			for _, src := range c.SourcePaths {
				switch {
				case outs[src]:
					copied[path.Base(src)] = true
					if c.DestPath != runtimeBinDir+"/" && c.DestPath != runtimeBinDir+"/"+path.Base(src) {
						t.Errorf("COPY %s to %s: programs go to %s/", src, c.DestPath, runtimeBinDir)
					}
				case allowed[src]:
				default:
					t.Errorf("COPY %s into the runtime image: only the built binaries (and the CA bundle) belong there", src)
				}
			}
		}
		for _, want := range []string{"picard", "clientapp"} {
			if !copied[want] {
				t.Errorf("the runtime image lacks %s", want)
			}
		}
	})

	t.Run("final stage: health check, data volume, default command", func(t *testing.T) {
		hcs := stageCommands[*instructions.HealthCheckCommand](final)
		if len(hcs) != 1 {
			t.Fatalf("want one HEALTHCHECK in the final stage, got %d", len(hcs))
		}
		test := hcs[0].Health.Test
		if len(test) < 3 || test[0] != "CMD" || test[1] != runtimeBinDir+"/picard" || test[2] != "healthcheck" {
			t.Errorf("HEALTHCHECK %v: want the exec form running %s/picard healthcheck (no shell in the image)", test, runtimeBinDir)
		}
		var vols []string
		for _, v := range stageCommands[*instructions.VolumeCommand](final) {
			vols = append(vols, v.Volumes...)
		}
		if !slices.Contains(vols, "/data") {
			t.Errorf("VOLUME %v: want /data", vols)
		}
		cmds := stageCommands[*instructions.CmdCommand](final)
		if len(cmds) == 0 {
			t.Fatal("no CMD")
		}
		cmd := cmds[len(cmds)-1]
		if cmd.PrependShell {
			t.Errorf("CMD %v is in shell form: the image has no shell", cmd.CmdLine)
		}
		line := strings.Join(cmd.CmdLine, " ")
		if !strings.HasPrefix(line, runtimeBinDir+"/picard serve") || !regexp.MustCompile(`--http 0\.0\.0\.0:8001\b`).MatchString(line) || !strings.Contains(line, "--dir /data") {
			t.Errorf("CMD %q: want picard serve listening on 0.0.0.0:8001 with --dir /data", line)
		}
	})

	t.Run(".dockerignore keeps secrets and local state out of the context", func(t *testing.T) {
		lines := strings.Fields(readFile(t, ".dockerignore"))
		for _, want := range []string{".git", ".env", "**/.env", "pb_data/", "clientapp_data/"} {
			if !slices.Contains(lines, want) {
				t.Errorf(".dockerignore lacks %s", want)
			}
		}
	})
}
