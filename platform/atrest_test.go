package platform_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/picard-mcp/picard/internal/picardtest"
)

// TestNoPlaintextAtRest writes memories through every write path and then
// reads the raw files of the data dir (SQLite database, its WAL, the
// embedded vector store): no memory text may appear in them.
func TestNoPlaintextAtRest(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	su := s.SuperuserToken()
	alice := s.UserToken(s.RegisterClient(su), "alice")
	secrets := []string{
		"zebra-quartz-plaintext-canary one",
		"zebra-quartz-plaintext-canary two, later updated",
		"zebra-quartz-plaintext-canary three made public",
	}
	m1 := submit(t, s, alice, map[string]any{"text": secrets[0]})
	m2 := submit(t, s, alice, map[string]any{"text": "placeholder"})
	if r := s.Tool(alice, "update_memory", map[string]any{"memory_id": m2.ID, "text": secrets[1]}); r.Status != 200 {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}
	m3 := submit(t, s, alice, map[string]any{"text": secrets[2], "permission": "public"})
	// a write around the service (what the dashboard does) is encrypted too
	rec, err := s.App.FindRecordById("memories", m1.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.Set("text", "zebra-quartz-plaintext-canary four via dashboard")
	secrets = append(secrets, "zebra-quartz-plaintext-canary four via dashboard")
	if err := s.App.Save(rec); err != nil {
		t.Fatal(err)
	}
	// the service still reads every text back
	got := map[string]bool{}
	for _, m := range list(t, s, alice, nil) {
		got[m.Text] = true
	}
	for _, want := range []string{secrets[1], secrets[2], secrets[3]} {
		if !got[want] {
			t.Fatalf("memory %q not readable through the service: %v", want, got)
		}
	}
	_ = m3

	// a token copied from the database (say, from a stolen backup) and
	// submitted as text comes back as that text, never decrypted
	var stolen string
	if err := s.App.DB().NewQuery("SELECT text FROM memories WHERE id = {:id}").Bind(map[string]any{"id": m2.ID}).Row(&stolen); err != nil {
		t.Fatal(err)
	}
	if echo := submit(t, s, alice, map[string]any{"text": stolen}); echo.Text != stolen || strings.Contains(echo.Text, "canary") {
		t.Fatalf("a submitted ciphertext was decrypted: %q", echo.Text)
	}

	scan := func(stage string) {
		n := 0
		err := filepath.Walk(s.App.DataDir(), func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			n++
			for _, sec := range append(secrets, "zebra-quartz") {
				if bytes.Contains(b, []byte(sec)) {
					t.Errorf("%s: %s contains plaintext %q", stage, filepath.Base(path), sec)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n < 2 {
			t.Fatalf("%s: expected the database files in %s, found %d files", stage, s.App.DataDir(), n)
		}
	}
	scan("before checkpoint (text in the WAL)")
	if _, err := s.App.DB().NewQuery("PRAGMA wal_checkpoint(TRUNCATE)").Execute(); err != nil {
		t.Fatal(err)
	}
	scan("after checkpoint")
}
