package memories

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
)

// TestVersionProbeSeesEveryCommit: whatever the concurrency, a version
// read after a commit returned differs from one read before it: callers
// share probe reads, but never one that started before they asked.
func TestVersionProbeSeesEveryCommit(t *testing.T) {
	app, err := tests.NewTestAppWithConfig(core.BaseAppConfig{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Cleanup)
	if _, err := app.NonconcurrentDB().NewQuery("CREATE TABLE probe_test (n INTEGER)").Execute(); err != nil {
		t.Fatal(err)
	}
	p := &versionProbe{db: app.ConcurrentDB().(*dbx.DB).DB()}
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
}
