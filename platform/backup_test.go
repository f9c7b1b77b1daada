package platform_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/tools/archive"

	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/vectorstore"
)

// TestBackupRestoreIntoEmptyInstance is README "Backups": a PocketBase
// backup of the data dir (the dashboard's Backups page, or
// CreateBackup) restored into a fresh data dir, with an empty vector store
// (a new pgvector schema, or the embedded store's file left out), gives
// back every memory, readable by its owner with the same key, and search
// works again once the server has noticed the missing vectors and
// reindexed them on start.
func TestBackupRestoreIntoEmptyInstance(t *testing.T) {
	backends(t, func(t *testing.T, store func(t *testing.T) vectorstore.Store) {
		src := picardtest.Start(t, picardtest.Options{Vectors: store(t)})
		cl := src.RegisterClient(src.SuperuserToken())
		alice, bob := src.UserToken(cl, "alice"), src.UserToken(cl, "bob")
		submit(t, src, alice, map[string]any{"text": "the lighthouse keeper's logbook"})
		submit(t, src, alice, map[string]any{"text": "notes on lighthouse lenses", "permission": "shared", "shared_with": []string{bob.ID}})
		submit(t, src, bob, map[string]any{"text": "a recipe for plum cake", "permission": "public"})
		if _, err := src.C.Memories.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}

		if err := src.App.CreateBackup(context.Background(), "nightly.zip"); err != nil {
			t.Fatal(err)
		}
		zip := filepath.Join(src.App.DataDir(), "backups", "nightly.zip")
		fresh := t.TempDir()
		if err := archive.Extract(zip, fresh); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(fresh, "fernet.key")); err != nil {
			t.Fatalf("the generated Fernet key is part of the backup: %v", err)
		}
		// the vector store is not restored: vectors are rebuilt from the records
		for _, f := range []string{"vectors.db", "vectors.db.lock"} {
			_ = os.Remove(filepath.Join(fresh, f))
		}

		dst := picardtest.Start(t, picardtest.Options{DataDir: fresh, Vectors: store(t)})
		// the OAuth client and its secret come back with the backup too
		alice2, bob2 := dst.UserToken(cl, "alice"), dst.UserToken(cl, "bob")
		if alice2.ID != alice.ID || bob2.ID != bob.ID {
			t.Fatalf("users come back with their ids")
		}
		if got := list(t, dst, alice2, nil); len(got) != 2 || !strings.Contains(got[0].Text, "lighthouse") {
			t.Fatalf("alice's memories are back and decrypt with the restored key, got %+v", got)
		}
		// the server reindexes in the background (checkSpace at start); wait for it
		deadline := time.Now().Add(60 * time.Second)
		for {
			got := search(t, dst, bob2, "lighthouse", map[string]any{"limit": 1})
			if len(got) == 1 && got[0].Text == "notes on lighthouse lenses" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("search never came back after the restore, last %+v", got)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if got := search(t, dst, alice2, "plum cake", map[string]any{"limit": 1}); len(got) != 1 || got[0].Text != "a recipe for plum cake" {
			t.Fatalf("public memories searchable again, got %+v", got)
		}
	})
}
