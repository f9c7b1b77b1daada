package platform_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/platform"
	"github.com/picard-mcp/picard/vectorstore"
)

type exported struct {
	Kind string `json:"kind"`
	memory
	Created string `json:"created"`
	Updated string `json:"updated"`
}

func exportOwner(t *testing.T, s *picardtest.Server, u picardtest.User) ([]byte, []exported) {
	t.Helper()
	r := s.Do("GET", "/api/memories/export", map[string]string{"Authorization": "Bearer " + u.Access}, nil)
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-ndjson") {
		t.Fatalf("export: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	var out []exported
	sc := bufio.NewScanner(bytes.NewReader(r.Body))
	for sc.Scan() {
		var e exported
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return r.Body, out
}

func importOwner(s *picardtest.Server, u picardtest.User, body []byte) *picardtest.Response {
	return s.Do("POST", "/api/memories/import", map[string]string{"Authorization": "Bearer " + u.Access, "Content-Type": "application/x-ndjson"}, body)
}

type importResult struct {
	Created, Updated, Unchanged int
	Expired                     int `json:"skipped_expired"`
}

// TestExportImportRoundTrip: an owner exports, deletes everything, imports
// the file: every memory is back with its id, text, sharing, expiry and
// timestamps, and search finds it again. A second import changes nothing.
func TestExportImportRoundTrip(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	cl := s.RegisterClient(s.SuperuserToken())
	alice, bob := s.UserToken(cl, "alice"), s.UserToken(cl, "bob")
	exp := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	submit(t, s, alice, map[string]any{"text": "the lighthouse keeper's logbook"})
	submit(t, s, alice, map[string]any{"text": "plum cake for bob", "permission": "shared", "shared_with": []string{bob.ID}})
	submit(t, s, alice, map[string]any{"text": "public notes on lighthouse lenses", "permission": "public", "expiration_date": exp})
	submit(t, s, bob, map[string]any{"text": "bob's own secret"})

	body, before := exportOwner(t, s, alice)
	if len(before) != 3 {
		t.Fatalf("alice exports her 3 memories (not bob's), got %d:\n%s", len(before), body)
	}
	for _, e := range before {
		if e.Kind != "memory" || e.OwnerID != alice.ID || strings.HasPrefix(e.Text, "gAAAA") || e.Created == "" {
			t.Fatalf("export line is a decrypted memory of alice's with timestamps: %+v", e)
		}
	}
	for _, e := range before {
		if r := s.Tool(alice, "delete_memory", map[string]any{"memory_id": e.ID}); r.Status != http.StatusOK {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
	}
	if got := list(t, s, alice, nil); len(got) != 0 {
		t.Fatalf("all deleted, got %d", len(got))
	}

	r := importOwner(s, alice, body)
	var res importResult
	r.JSON(t, &res)
	if r.Status != http.StatusOK || res.Created != 3 {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	_, after := exportOwner(t, s, alice)
	if len(after) != 3 {
		t.Fatalf("3 memories back, got %d", len(after))
	}
	for i := range before {
		b, a := before[i], after[i]
		if a.ID != b.ID || a.Text != b.Text || a.Permission != b.Permission || a.Created != b.Created ||
			strings.Join(a.SharedWith, ",") != strings.Join(b.SharedWith, ",") ||
			(a.ExpirationDate == nil) != (b.ExpirationDate == nil) || (a.ExpirationDate != nil && *a.ExpirationDate != *b.ExpirationDate) {
			t.Fatalf("memory %d differs after the round trip:\nbefore %+v\nafter  %+v", i, b, a)
		}
	}
	// indexed again through the outbox
	if _, err := s.C.Memories.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := search(t, s, alice, "lighthouse", map[string]any{"limit": 2}); len(got) != 2 || !strings.Contains(got[0].Text, "lighthouse") {
		t.Fatalf("imported memories are searchable, got %+v", got)
	}
	if got := search(t, s, bob, "plum cake", map[string]any{"limit": 1}); len(got) != 1 || got[0].Text != "plum cake for bob" {
		t.Fatalf("sharing survives: bob finds the memory shared with him, got %+v", got)
	}
	var encrypted string
	if err := s.App.DB().Select("text").From(pb_migrations.Memories).Where(dbxID(before[0].ID)).Row(&encrypted); err != nil || !strings.HasPrefix(encrypted, "gAAAA") {
		t.Fatalf("imported text is encrypted at rest, got %q %v", encrypted, err)
	}

	// idempotent: the same file again changes nothing
	r = importOwner(s, alice, body)
	res = importResult{}
	r.JSON(t, &res)
	if r.Status != http.StatusOK || res.Created != 0 || res.Updated != 0 || res.Unchanged != 3 {
		t.Fatalf("second import changes nothing: %d %s", r.Status, r.Body)
	}
	if _, again := exportOwner(t, s, alice); again[0].Updated != after[0].Updated || len(again) != 3 {
		t.Fatalf("second import left the records alone: %+v vs %+v", again[0], after[0])
	}

	// bob cannot take over alice's ids by importing her file
	r = importOwner(s, bob, body)
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "line 1") || !strings.Contains(string(r.Body), "another user") {
		t.Fatalf("foreign ids are refused naming the line: %d %s", r.Status, r.Body)
	}
	if got := list(t, s, bob, nil); len(got) != 1 {
		t.Fatalf("bob's account unchanged, got %d memories", len(got))
	}
	if _, mine := exportOwner(t, s, alice); len(mine) != 3 || mine[0].OwnerID != alice.ID {
		t.Fatalf("alice's memories not overwritten")
	}
}

func dbxID(id string) dbx.HashExp { return dbx.HashExp{"id": id} }

// TestImportRejectsBadFilesWhole: a bad line fails the import with an
// error naming it, and nothing of the file is stored.
func TestImportRejectsBadFilesWhole(t *testing.T) {
	s := picardtest.Start(t, picardtest.Options{})
	su := s.SuperuserToken()
	alice := s.UserToken(s.RegisterClient(su), "alice")
	good := `{"kind":"memory","id":"6f1c1f44-5c43-4b1b-9a39-4a0f3f1b2c01","text":"a fine memory","permission":"private"}`
	cases := []struct {
		name, file, want string
	}{
		{"not json", good + "\n{oops\n", "line 2"},
		{"bad id", good + "\n" + `{"id":"nope","text":"x"}`, "line 2: id"},
		{"empty text", good + "\n\n" + `{"id":"6f1c1f44-5c43-4b1b-9a39-4a0f3f1b2c02","text":" "}`, "line 3: text"},
		{"unknown permission", `{"id":"6f1c1f44-5c43-4b1b-9a39-4a0f3f1b2c02","text":"x","permission":"galactic"}` + "\n" + good, "line 1: permission"},
		{"unknown field", good + "\n" + `{"id":"6f1c1f44-5c43-4b1b-9a39-4a0f3f1b2c02","text":"x","colour":"red"}`, "line 2"},
		{"shared with a stranger", good + "\n" + `{"id":"6f1c1f44-5c43-4b1b-9a39-4a0f3f1b2c02","text":"x","permission":"shared","shared_with":["6f1c1f44-5c43-4b1b-9a39-4a0f3f1b2c99"]}`, "line 2: shared_with"},
		{"duplicate id", good + "\n" + good, "line 2"},
		{"users are for admins", `{"kind":"user","id":"6f1c1f44-5c43-4b1b-9a39-4a0f3f1b2c03","username":"mallory"}`, "line 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := importOwner(s, alice, []byte(c.file))
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), c.want) {
				t.Fatalf("want 400 naming %q, got %d %s", c.want, r.Status, r.Body)
			}
			if got := list(t, s, alice, nil); len(got) != 0 {
				t.Fatalf("nothing imported, got %d", len(got))
			}
		})
	}
	reader := s.UserToken(s.RegisterClient(su, "memories:read"), "carol")
	if r := importOwner(s, reader, []byte(good)); r.Status != http.StatusForbidden {
		t.Fatalf("import needs memories:write: %d %s", r.Status, r.Body)
	}
	if r := s.Do("GET", "/api/memories/export", nil, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("export needs a token: %d", r.Status)
	}
}

// runCLI runs one picard command on dataDir in this process.
// A running test server holds its embedded vector store's lock, so a
// command beside it gets a throwaway store in vectorsDir when set.
func runCLI(t *testing.T, dataDir, vectorsDir string, args ...string) (string, error) {
	t.Helper()
	var vs vectorstore.Store
	if vectorsDir != "" {
		var err error
		if vs, err = vectorstore.OpenEmbedded(filepath.Join(vectorsDir, "vectors.db")); err != nil {
			t.Fatal(err)
		}
		defer vs.Close()
	}
	p, err := platform.New(platform.Options{Args: args, DataDir: dataDir, Vectors: vs, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = p.OnTerminate().Trigger(&core.TerminateEvent{App: p}, func(e *core.TerminateEvent) error { return e.App.ResetBootstrapState() })
	}()
	var out bytes.Buffer
	p.RootCmd.SetArgs(args)
	p.RootCmd.SetOut(&out)
	p.RootCmd.SetErr(&out)
	err = p.RootCmd.Execute()
	return out.String(), err
}

// TestAdminExportImportIntoEmptyInstance: `picard export` on one instance
// and `picard import` on a fresh one moves users (with their passwords),
// groups and every memory; search works on the new instance.
func TestAdminExportImportIntoEmptyInstance(t *testing.T) {
	src := picardtest.Start(t, picardtest.Options{})
	cl := src.RegisterClient(src.SuperuserToken())
	alice, bob := src.UserToken(cl, "alice"), src.UserToken(cl, "bob")
	rec, err := src.App.FindRecordById(pb_migrations.Users, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.SetPassword("alice's long password")
	if err := src.App.Save(rec); err != nil {
		t.Fatal(err)
	}
	alice = src.UserToken(cl, "alice") // a password change ends the old grants
	gcol, _ := src.App.FindCollectionByNameOrId(pb_migrations.Groups)
	g := core.NewRecord(gcol)
	g.Set("name", "crew")
	g.Set("members", []string{bob.ID})
	if err := src.App.Save(g); err != nil {
		t.Fatal(err)
	}
	submit(t, src, alice, map[string]any{"text": "the lighthouse keeper's logbook"})
	submit(t, src, alice, map[string]any{"text": "orders for the crew", "permission": "shared", "shared_with_groups": []string{g.Id}})
	submit(t, src, bob, map[string]any{"text": "bob's lighthouse sketch", "permission": "public"})

	file := filepath.Join(t.TempDir(), "instance.jsonl")
	out, err := runCLI(t, src.App.DataDir(), t.TempDir(), "export", "--out", file)
	if err != nil || !strings.Contains(out, "exported 3 memories") || !strings.Contains(out, "WARNING") {
		t.Fatalf("export: %v\n%s", err, out)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("export file is 0600: %v %v", st.Mode(), err)
	}
	if _, err := runCLI(t, src.App.DataDir(), t.TempDir(), "export", "--out", file); err == nil {
		t.Fatal("export refuses to overwrite an existing file")
	}

	// a fresh, stopped instance: import, then start the server on it
	fresh := t.TempDir()
	out, err = runCLI(t, fresh, "", "import", file)
	if err != nil || !strings.Contains(out, "users created 2, groups created 1, memories created 3") || !strings.Contains(out, "indexed 3") {
		t.Fatalf("import: %v\n%s", err, out)
	}
	out, err = runCLI(t, fresh, "", "import", file)
	if err != nil || !strings.Contains(out, "users created 0, groups created 0, memories created 0, updated 0, unchanged 3") {
		t.Fatalf("second import changes nothing: %v\n%s", err, out)
	}
	dst := picardtest.Start(t, picardtest.Options{DataDir: fresh})
	moved, err := dst.App.FindRecordById(pb_migrations.Users, alice.ID)
	if err != nil || moved.GetString("username") != "alice" || !moved.ValidatePassword("alice's long password") {
		t.Fatalf("alice moved with her id and password: %v", err)
	}
	// the new instance's own key encrypts the text, and search works there
	if _, err := dst.C.Memories.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	dcl := dst.RegisterClient(dst.SuperuserToken())
	alice2, bob2 := dst.UserToken(dcl, "alice"), dst.UserToken(dcl, "bob")
	if alice2.ID != alice.ID {
		t.Fatalf("direct connect finds the migrated alice: %s vs %s", alice2.ID, alice.ID)
	}
	if got := search(t, dst, alice2, "lighthouse", map[string]any{"limit": 2}); len(got) != 2 || !strings.Contains(got[0].Text, "lighthouse") || !strings.Contains(got[1].Text, "lighthouse") {
		t.Fatalf("alice finds her memory and bob's public one on the new instance, got %+v", got)
	}
	if got := search(t, dst, bob2, "orders crew", map[string]any{"limit": 1}); len(got) != 1 || got[0].Text != "orders for the crew" {
		t.Fatalf("group sharing survives the migration, got %+v", got)
	}
}
