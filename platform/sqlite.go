package platform

import (
	"fmt"
	"path/filepath"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// pageCacheKiB is the SQLite page cache of every connection PocketBase
// opens (data.db: a read pool of dataConns plus one writer; auxiliary.db),
// in KiB: a quarter of SQLite's own default instead of PocketBase's 32 MB.
//
// modernc's SQLite allocates each cached page (4 KiB and its header) in an
// 8 KiB slot outside the Go heap, so a full cache costs twice its size in
// RSS, per connection: PocketBase's 32 MB on 33 data.db connections could
// hold 2 GiB. A read connection gains little from a large cache anyway: in
// WAL mode SQLite empties a connection's cache when it starts a read after
// another connection committed, which under load (reads write access-log
// rows) is nearly every read. Measured at 100k memories on 2 cores, 2 MB
// instead of 32 MB for the readers and for the writer changed neither
// get_memories', query_memory's nor submit_memory's CPU per request beyond
// the run-to-run noise (docs/performance.md, "Memory"). 512 KiB instead of
// 2 MB took the 2-minute soak (50 connections, 20k memories imported first)
// from 118 -> 129 MB (+9.7%) to 93 -> 100 MB (+7.5%) after its warm-up:
// the caches of 55 connections filling one by one were most of the growth.
const pageCacheKiB = 512

// sqlitePragmas are PocketBase's own (core.DefaultDBConnect in v0.36.8)
// but the cache size.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=journal_size_limit(200000000)" +
	"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_pragma=temp_store(MEMORY)"

// dbConnect opens PocketBase's databases (a core.DBConnectFunc).
func dbConnect(dbPath string) (*dbx.DB, error) {
	db, err := dbx.Open("sqlite", fmt.Sprintf("%s?%s&_pragma=cache_size(-%d)", dbPath, sqlitePragmas, pageCacheKiB))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Base(dbPath), err)
	}
	return db, nil
}

var _ core.DBConnectFunc = dbConnect
