package fernet_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/plugins/fernet"
)

func newApp(t *testing.T) *tests.TestApp {
	t.Helper()
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	return app
}

func mustCipher(t *testing.T, keys ...string) *fernet.Cipher {
	t.Helper()
	c, err := fernet.NewCipher(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t *testing.T) string {
	k, err := fernet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newUser(t *testing.T, app core.App) *core.Record {
	col, _ := app.FindCollectionByNameOrId(pb_migrations.Users)
	u := core.NewRecord(col)
	u.SetEmail("owner@picard.test")
	u.Set("username", "owner")
	u.SetRandomPassword()
	if err := app.Save(u); err != nil {
		t.Fatal(err)
	}
	return u
}

func rawTexts(t *testing.T, app core.App) map[string]string {
	var rows []struct {
		ID   string `db:"id"`
		Text string `db:"text"`
	}
	if err := app.DB().Select("id", "text").From(pb_migrations.Memories).All(&rows); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows {
		out[r.ID] = r.Text
	}
	return out
}

func TestHooksEncryptEveryWrite(t *testing.T) {
	app := newApp(t)
	c := mustCipher(t, newKey(t))
	fernet.MustRegister(app, fernet.Config{Cipher: c, Collection: pb_migrations.Memories, Fields: []string{"text"}})
	owner := newUser(t, app)
	col, _ := app.FindCollectionByNameOrId(pb_migrations.Memories)
	rec := core.NewRecord(col)
	rec.Set("owner", owner.Id)
	rec.Set("permission", "private")
	rec.Set("text", "hello at rest")
	if err := app.Save(rec); err != nil {
		t.Fatal(err)
	}
	if plain, err := c.Decrypt(rec.GetString("text")); err != nil || plain != "hello at rest" {
		t.Fatalf("after save the record holds the token of the text, got %q (%v)", rec.GetString("text"), err)
	}
	raw := rawTexts(t, app)[rec.Id]
	if raw == "hello at rest" || !c.IsToken(raw) {
		t.Fatalf("database must hold a Fernet token, got %q", raw)
	}
	// a new value that is itself a valid token (say, copied from a backup)
	// is encrypted like any text: it must never come back decrypted
	stolen := rawTexts(t, app)[rec.Id]
	other := core.NewRecord(col)
	other.Set("owner", owner.Id)
	other.Set("permission", "private")
	other.Set("text", stolen)
	if err := app.Save(other); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decrypt(rawTexts(t, app)[other.Id]); err != nil || got != stolen {
		t.Fatalf("a submitted token must be stored as text: got %q (%v)", got, err)
	}
	// saving a loaded record (token in the field) does not double-encrypt
	loaded, _ := app.FindRecordById(pb_migrations.Memories, rec.Id)
	loaded.Set("permission", "public")
	if err := app.Save(loaded); err != nil {
		t.Fatal(err)
	}
	if plain, err := c.Decrypt(rawTexts(t, app)[rec.Id]); err != nil || plain != "hello at rest" {
		t.Fatalf("re-save changed the text: %q %v", plain, err)
	}
}

func TestKeyFileIsCreatedOnceWith0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "fernet.key")
	k1, err := fernet.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := fernet.LoadOrCreateKeyFile(path)
	if err != nil || k1 != k2 {
		t.Fatalf("second start must reuse the key: %q %q %v", k1, k2, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := fernet.LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("a corrupt key file must stop the start, not be replaced")
	}
}

// TestRotationInterruptedAndResumed rotates 1,000 memories, interrupts the
// first run part way, resumes, and checks every memory opens with the new
// key alone.
func TestRotationInterruptedAndResumed(t *testing.T) {
	app := newApp(t)
	oldKey, newKeyS := newKey(t), newKey(t)
	old := mustCipher(t, oldKey)
	cfg := fernet.Config{Cipher: old, Collection: pb_migrations.Memories, Fields: []string{"text"}}
	fernet.MustRegister(app, cfg)
	owner := newUser(t, app)
	col, _ := app.FindCollectionByNameOrId(pb_migrations.Memories)
	want := map[string]string{}
	err := app.RunInTransaction(func(tx core.App) error {
		for i := 0; i < 1000; i++ {
			r := core.NewRecord(col)
			r.Set("owner", owner.Id)
			r.Set("permission", "private")
			text := fmt.Sprintf("memory number %d with some words", i)
			r.Set("text", text)
			if err := tx.Save(r); err != nil {
				return err
			}
			want[r.Id] = text
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	rotating := fernet.Config{Cipher: mustCipher(t, newKeyS, oldKey), Collection: cfg.Collection, Fields: cfg.Fields}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := fernet.Rotate(ctx, app, rotating, func(done, total int) {
		if done >= 400 {
			cancel() // the operator pressed Ctrl-C
		}
	})
	if !errors.Is(err, context.Canceled) || st.Rotated == 0 || st.Rotated >= 1000 {
		t.Fatalf("first run should stop part way: rotated %d, err %v", st.Rotated, err)
	}
	newOnly := mustCipher(t, newKeyS)
	partial := 0
	for _, raw := range rawTexts(t, app) {
		if newOnly.IsToken(raw) {
			partial++
		}
	}
	if partial != st.Rotated {
		t.Fatalf("interrupted run: %d rows under the new key, reported %d", partial, st.Rotated)
	}

	st2, err := fernet.Rotate(context.Background(), app, rotating, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Rotated+st2.AlreadyCurrent != 1000 || st2.AlreadyCurrent != partial {
		t.Fatalf("resume: %+v after %d", st2, partial)
	}
	got := rawTexts(t, app)
	if len(got) != 1000 {
		t.Fatalf("memories lost: %d left", len(got))
	}
	for id, raw := range got {
		plain, err := newOnly.Decrypt(raw)
		if err != nil || plain != want[id] {
			t.Fatalf("memory %s: %q %v (want %q)", id, plain, err, want[id])
		}
	}
}

// A server saving a record it loaded before a concurrent `keys rotate`
// rewrote the row must not put the old key's token back: once the old key
// is dropped that memory would be unreadable.
func TestSaveAfterConcurrentRotationKeepsNewKey(t *testing.T) {
	app := newApp(t)
	oldKey, newKeyS := newKey(t), newKey(t)
	old, both, newOnly := mustCipher(t, oldKey), mustCipher(t, newKeyS, oldKey), mustCipher(t, newKeyS)
	cfg := fernet.Config{Cipher: both, Collection: pb_migrations.Memories, Fields: []string{"text"}}
	fernet.MustRegister(app, cfg)
	owner := newUser(t, app)
	col, _ := app.FindCollectionByNameOrId(pb_migrations.Memories)
	r := core.NewRecord(col)
	r.Set("owner", owner.Id)
	r.Set("permission", "private")
	r.Set("text", "written before the rotation")
	if err := app.Save(r); err != nil {
		t.Fatal(err)
	}
	tok, _ := old.Encrypt("written before the rotation")
	if _, err := app.DB().Update(pb_migrations.Memories, dbx.Params{"text": tok}, dbx.HashExp{"id": r.Id}).Execute(); err != nil {
		t.Fatal(err)
	}
	loaded, err := app.FindRecordById(pb_migrations.Memories, r.Id) // the server reads it (old key)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := fernet.Rotate(context.Background(), app, cfg, nil); err != nil || st.Rotated != 1 {
		t.Fatalf("rotate: %+v %v", st, err)
	}
	if err := app.Save(loaded); err != nil { // the server saves its stale copy
		t.Fatal(err)
	}
	raw := rawTexts(t, app)[r.Id]
	if plain, err := newOnly.Decrypt(raw); err != nil || plain != "written before the rotation" {
		t.Fatalf("after a stale save the memory is not readable with the new key alone: %q %v", plain, err)
	}
}
