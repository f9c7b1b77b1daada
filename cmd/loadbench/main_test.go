package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// buildBench compiles this command once for the package's tests (the
// bench re-executes itself as Picard and as the bare server, so it must
// run as a real binary).
func buildBench(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "loadbench-test-*"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "loadbench")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// TestLoadbenchStatelessOnly: a run of the stateless mode alone seeds and
// measures through a stateless server (the seeding client must not expect
// a session id from it).
func TestLoadbenchStatelessOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	bin := buildBench(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-n", "20", "-users", "2", "-c", "2", "-d", "200ms", "-dsn", "", "-modes", "stateless", "-workloads", "get_memories")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("loadbench -modes stateless: %v\n%s", err, out.String())
	}
	line := findLine(out.String(), "stateless", "get_memories")
	if f := strings.Fields(line); len(f) < 12 || f[len(f)-4] != "0" {
		t.Fatalf("no error-free stateless get_memories line in:\n%s", out.String())
	}
}

// TestLoadbenchShortRun runs the real bench briefly in both modes with
// profiling on and checks it printed a full table without a single error.
// No timing is asserted: the figures are for people, not for CI.
func TestLoadbenchShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	bin := buildBench(t)
	prof := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-n", "40", "-users", "3", "-c", "4", "-d", "300ms", "-dsn", "", "-profile", prof)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("loadbench: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	table := out.String()
	for _, mode := range []string{"stateful", "stateless"} {
		for _, wl := range append([]string{"bare mcp-go echo"}, allWorkloads...) {
			line := findLine(table, mode, wl)
			if line == "" {
				t.Fatalf("no %s %q line in:\n%s", mode, wl, table)
			}
			// … req/s, p50, "ms", p99, "ms", cpu/req, ["µs"], errors, ratio, cpu ratio, log rows/call
			f := strings.Fields(line)
			if len(f) < 12 || f[len(f)-4] != "0" {
				t.Errorf("%s %s: errors or malformed line %q", mode, wl, line)
				continue
			}
			rps := f[len(f)-10] // cpu/req is "—" where /proc is missing
			if f[len(f)-5] == "µs" {
				rps = f[len(f)-11]
			}
			if wl == "get_memories" {
				// a page of memories is one access-log row (it was one per memory)
				if rows, err := strconv.ParseFloat(f[len(f)-1], 64); err != nil || rows > 1.05 {
					t.Errorf("%s get_memories: %q access-log rows per call, want at most 1", mode, f[len(f)-1])
				}
			}
			if rps == "0" {
				t.Errorf("%s %s: no request completed: %q", mode, wl, line)
			}
		}
	}
	for _, mode := range []string{"stateful", "stateless"} {
		found := false // its verdict line: "mixed ≥ 5000/s at 10k memories  <mode>  <figures>  <verdict>"
		for _, l := range strings.Split(table, "\n") {
			found = found || strings.HasPrefix(l, "mixed ≥ 5000/s at 10k memories") && slices.Contains(strings.Fields(l), mode)
		}
		if !found {
			t.Errorf("no verdict on the mixed target for %s in:\n%s", mode, table)
		}
	}
	if strings.Contains(table, "first error") {
		t.Errorf("bench reported errors:\n%s", table)
	}
	for _, name := range []string{"stateful-mixed.cpu.pprof", "stateless-get_memories.allocs.pprof"} {
		st, err := os.Stat(filepath.Join(prof, name))
		if err != nil || st.Size() == 0 {
			t.Errorf("profile %s missing or empty: %v", name, err)
		}
	}
}

func findLine(table, mode, wl string) string {
	for _, l := range strings.Split(table, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, mode+" ") && strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(l, mode)), wl+" ") {
			return l
		}
	}
	return ""
}
