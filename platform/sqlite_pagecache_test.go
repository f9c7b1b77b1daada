package platform

import (
	"database/sql"
	"path/filepath"
	"testing"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

var statusCur, statusHigh int32

// TestPageCacheBuffer: the connections' page caches take their pages from
// the buffer set up at start, not from malloc (see pageCacheSlots).
func TestPageCacheBuffer(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (x TEXT); WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 200) INSERT INTO t SELECT hex(randomblob(500)) FROM s`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM t WHERE x LIKE '%AB%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	tls := libc.NewTLS()
	defer tls.Close()
	status := func(op int32) int32 {
		if rc := sqlite3.Xsqlite3_status(tls, op, uintptr(unsafe.Pointer(&statusCur)), uintptr(unsafe.Pointer(&statusHigh)), 0); rc != sqlite3.SQLITE_OK {
			t.Fatalf("sqlite3_status(%d) = %d", op, rc)
		}
		return statusCur
	}
	used, overflow := status(sqlite3.SQLITE_STATUS_PAGECACHE_USED), status(sqlite3.SQLITE_STATUS_PAGECACHE_OVERFLOW)
	if used < 10 || overflow != 0 {
		t.Errorf("page cache: %d pages in the buffer, %d bytes malloc'd; want the pages in the buffer", used, overflow)
	}
}
