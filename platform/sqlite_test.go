package platform_test

import (
	"path/filepath"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"github.com/picard-mcp/picard/platform"
	"github.com/picard-mcp/picard/vectorstore"
)

// TestSQLiteCacheSizes: every connection PocketBase opens on data.db and
// auxiliary.db (read pools and writers) has the small page cache the
// memory budget counts on (README, "Memory"), not PocketBase's 32 MB that
// made 33 data.db connections able to hold gigabytes, and the databases
// keep PocketBase's WAL journal and foreign keys.
func TestSQLiteCacheSizes(t *testing.T) {
	dir := t.TempDir()
	vs, err := vectorstore.OpenEmbedded(filepath.Join(t.TempDir(), "vectors.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	p, err := platform.New(platform.Options{Args: []string{"serve"}, DataDir: dir, Vectors: vs, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = p.OnTerminate().Trigger(&core.TerminateEvent{App: p}, func(e *core.TerminateEvent) error { return e.App.ResetBootstrapState() })
	}()
	for name, db := range map[string]dbx.Builder{
		"data.db read pool": p.ConcurrentDB(), "data.db writer": p.NonconcurrentDB(),
		"auxiliary.db read pool": p.AuxConcurrentDB(), "auxiliary.db writer": p.AuxNonconcurrentDB(),
	} {
		var cache int
		var journal string
		var fk int
		if err := db.NewQuery("PRAGMA cache_size").Row(&cache); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := db.NewQuery("PRAGMA journal_mode").Row(&journal); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := db.NewQuery("PRAGMA foreign_keys").Row(&fk); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cache != -512 || journal != "wal" || fk != 1 {
			t.Errorf("%s: cache_size %d, journal_mode %s, foreign_keys %d; want -512 (512 KiB), wal, 1", name, cache, journal, fk)
		}
	}
}
