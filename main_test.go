package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildPicard compiles the real binary once per test run.
func buildPicard(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "picard")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cleanEnv is the environment without any PICARD_ or OPENAI_ variable.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PICARD_") || strings.HasPrefix(kv, "OPENAI_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServeWithEmbeddedDefaults is the README's first command: with no
// configuration at all the binary serves on 127.0.0.1:8001.
func TestServeWithEmbeddedDefaults(t *testing.T) {
	bin := buildPicard(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "--dir", filepath.Join(dir, "pb_data"))
	cmd.Env = cleanEnv()
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:8001/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("picard serve did not answer on 127.0.0.1:8001: %v\n%s", err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	key, err := os.Stat(filepath.Join(dir, "pb_data", "fernet.key"))
	if err != nil || key.Mode().Perm() != 0o600 {
		t.Fatalf("generated key file: %v %v", key, err)
	}
	if !strings.Contains(out.String(), "PICARD_FERNET_KEYS is not set") {
		t.Fatalf("the generated key must be warned about:\n%s", out.String())
	}
}

// TestBadConfigurationFailsFast: a bad value stops the server with a
// message naming the variable.
func TestBadConfigurationFailsFast(t *testing.T) {
	bin := buildPicard(t)
	for _, kv := range []string{"PICARD_EMBEDDER=bert", "PICARD_VECTOR_DSN=mysql://db", "PICARD_PUBLIC_URL=not a url"} {
		cmd := exec.Command(bin, "serve", "--dir", t.TempDir(), "--http", "127.0.0.1:0")
		cmd.Env = cleanEnv(kv)
		out, err := cmd.CombinedOutput()
		name := strings.SplitN(kv, "=", 2)[0]
		if err == nil || !strings.Contains(string(out), name) {
			t.Errorf("%s: want a failed start naming %s, got err %v:\n%s", kv, name, err, out)
		}
	}
}

// TestFailingCommandExitsNonZero: a subcommand that fails (here an import
// of a file that is not JSONL) makes the process exit non-zero, so
// scripts and operators notice.
func TestFailingCommandExitsNonZero(t *testing.T) {
	bin := buildPicard(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte("not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "import", bad, "--dir", filepath.Join(dir, "pb_data"))
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v:\n%s", err, out)
	}
	if !strings.Contains(string(out), "line 1") || strings.Count(string(out), "line 1") != 1 {
		t.Fatalf("want the error once, naming the line:\n%s", out)
	}
}
