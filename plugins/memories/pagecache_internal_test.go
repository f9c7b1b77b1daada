package memories

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"github.com/picard-mcp/picard/pb_migrations"
)

// TestVersionProbeSeesEveryCommit: whatever the concurrency, a version
// read after a commit returned differs from one read before it: callers
// share probe reads, but never one that started before they asked, and
// with the WAL index mapped, an unchanged header never hides a commit.
func TestVersionProbeSeesEveryCommit(t *testing.T) {
	for _, withShm := range []bool{false, true} {
		t.Run(fmt.Sprintf("shm=%v", withShm), func(t *testing.T) { testVersionProbeSeesEveryCommit(t, withShm) })
	}
}

func testVersionProbeSeesEveryCommit(t *testing.T, withShm bool) {
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	if _, err := app.NonconcurrentDB().NewQuery("CREATE TABLE probe_test (n INTEGER)").Execute(); err != nil {
		t.Fatal(err)
	}
	p := &versionProbe{db: app.ConcurrentDB().(*dbx.DB).DB()}
	if withShm {
		p.shm = filepath.Join(app.DataDir(), "data.db-shm")
	}
	defer p.close()
	var stop atomic.Bool
	var readers sync.WaitGroup
	for range 8 { // readers keeping the probe busy, so writers share its reads
		readers.Add(1)
		go func() {
			defer readers.Done()
			for !stop.Load() {
				p.read()
			}
		}()
	}
	var writers sync.WaitGroup
	var stale atomic.Int64
	for range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for range 50 {
				before, ok := p.read()
				if !ok {
					t.Error("probe failed")
					return
				}
				if _, err := app.NonconcurrentDB().NewQuery("INSERT INTO probe_test (n) VALUES (1)").Execute(); err != nil {
					t.Error(err)
					return
				}
				if after, _ := p.read(); after == before {
					stale.Add(1)
				}
			}
		}()
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()
	if n := stale.Load(); n > 0 {
		t.Fatalf("%d reads after a commit returned the version from before it", n)
	}
	if !withShm {
		return
	}
	// no commit: reads take the versions from the unchanged header
	first, _ := p.read()
	p.mu.Lock()
	queries := p.queries
	p.mu.Unlock()
	for range 100 {
		if v, ok := p.read(); !ok || v != first {
			t.Fatalf("no commit, yet the version moved: %v -> %v", first, v)
		}
	}
	p.mu.Lock()
	ran := p.queries - queries
	p.mu.Unlock()
	if ran > 5 { // one each probeFullEvery at most
		t.Fatalf("100 reads without a commit ran %d queries: the WAL index header is not used (off %v hdrOK %v mapped %v)", ran, p.walOff, p.lastHdrOK, p.wal != nil)
	}
	// a commit through a connection of its own, as another process makes it
	other, err := sql.Open("sqlite", filepath.Join(app.DataDir(), "data.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec("INSERT INTO probe_test (n) VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if v, _ := p.read(); v == first {
		t.Fatal("a commit by another connection was not seen")
	}
}

// TestPageCacheBounded: pages put again under the same key (a new data
// version) are counted once, so the cache keeps them; past its byte bound
// it drops the least recently used pages, never the whole cache.
func TestPageCacheBounded(t *testing.T) {
	pc := newPageCache(nil, "")
	page := func(chars int) *ListResult {
		return &ListResult{Memories: []*Memory{{ID: "m", Text: strings.Repeat("x", chars)}}}
	}
	for v := range int64(10_000) {
		pc.put("alice", dbVersion{data: v}, ownerVersion{}, time.Time{}, page(1000))
	}
	if _, _, ok := pc.get(nil, "alice", "alice", dbVersion{data: 9_999}, time.Now(), new(ownerVersion)); !ok || pc.bytes.Load() > 2000 {
		t.Fatalf("one page re-put 10,000 times: cached=%v, %d bytes counted", ok, pc.bytes.Load())
	}
	for i := range 2 * pageCacheBytes / 50_000 {
		pc.put(fmt.Sprint("owner", i), dbVersion{data: 1}, ownerVersion{}, time.Time{}, page(50_000))
	}
	if b := pc.bytes.Load(); b > pageCacheBytes || pc.c.Len() < pageCacheBytes/60_000 {
		t.Fatalf("past the bound: %d bytes in %d pages", b, pc.c.Len())
	}
}

// TestOwnerCountersSharedWithinADataVersion: the counters a get_memories
// lookup reads for one data version are reused by callers that bring the
// same version, and read again for a newer one; a caller still holding an
// older version does not evict the newer version's counters. (Callers get
// versions from the probe, which gives a new one after every commit; the
// stale version here stands for a caller that probed before the commit.)
func TestOwnerCountersSharedWithinADataVersion(t *testing.T) {
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	db := app.ConcurrentDB().(*dbx.DB).DB()
	pc := newPageCache(db, "")
	defer pc.probe.close()
	defer pc.owners.close()
	sc := &stmtCache{db: db}
	bump := func() {
		t.Helper()
		if _, err := app.NonconcurrentDB().NewQuery("INSERT INTO " + pb_migrations.OwnerVersions +
			" (owner, version) VALUES ('alice', 1) ON CONFLICT (owner) DO UPDATE SET version = version + 1").Execute(); err != nil {
			t.Fatal(err)
		}
	}
	bump()
	v1, ok := pc.probe.read()
	if !ok {
		t.Fatal("probe failed")
	}
	first := pc.ownerVersion(sc, "alice", v1)
	if !first.ok {
		t.Fatal("the owner's counter was not read: are the triggers missing?")
	}
	bump()
	if again := pc.ownerVersion(sc, "alice", v1); again != first {
		t.Fatalf("at the same data version the counter was read again: %+v, then %+v", first, again)
	}
	v2, _ := pc.probe.read()
	if v2 == v1 {
		t.Fatal("the probe missed a commit")
	}
	if now := pc.ownerVersion(sc, "alice", v2); !now.ok || now.version != first.version+1 {
		t.Fatalf("at the newer data version the counter is %+v, want %d", now, first.version+1)
	}
	pc.hitc.memoMu.Lock()
	pc.hitc.memo = ownerMemo{} // as if the scan at v2 had not happened: the late caller scans
	pc.hitc.memoMu.Unlock()
	pc.ownerVersion(sc, "alice", v2)
	pc.ownerVersion(sc, "alice", v1)
	pc.hitc.memoMu.Lock()
	at := pc.hitc.memo.ver
	pc.hitc.memoMu.Unlock()
	if at != v2 {
		t.Fatalf("the counters of %+v replaced those of the newer %+v", at, v2)
	}
}
