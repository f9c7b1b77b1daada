package platform

import (
	"log/slog"
	"unsafe"

	"github.com/pocketbase/pocketbase/core"
	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/picard-mcp/picard/vectorstore"
)

// pageCacheSlots is how many database pages (4 KiB and SQLite's header
// for each) every SQLite connection of the process shares in one buffer
// set up at start (SQLITE_CONFIG_PAGECACHE), before their caches fall back
// to malloc.
//
// modernc's allocator (modernc.org/memory) puts each malloc'd page in an
// 8 KiB slot of a 64 KiB mapping, and unmaps the mapping as soon as its
// last slot is freed. A read connection of data.db empties its cache when
// it starts a read after another connection committed, which under load
// happens every few reads, so its pages were freed and allocated again:
// munmap, mmap and the page faults were ~18% of query_memory's CPU
// (docs/performance.md, "SQLite's allocator").
//
// The buffer holds every cache the process keeps open at once, full:
// data.db's read pool and writer, auxiliary.db's idle connections (at
// pageCacheKiB each), the keyword index's connection and its checkpointer
// (2 MB each), and room for temporary b-trees. An earlier buffer of 2,048
// slots ran out, and SQLite treats a nearly empty buffer as memory
// pressure (caches recycle their pages instead of growing, writers spill
// dirty pages early). A full buffer only slows SQLite down that way; pages
// past it are malloc'd as before. It is resident from the start (SQLite
// links every slot into its free list): ~4.3 KiB a slot, ~29 MiB, against
// the 5-30 MiB of page caches malloc'd outside the Go heap without it.
const pageCacheSlots = (dataConns+1+core.DefaultAuxMaxIdleConns)*(pageCacheKiB/4) + 2*(vectorstore.KeywordCacheKiB/4) + tempPages

// tempPages is room for sorters and temporary b-trees (temp_store=MEMORY).
const tempPages = 1000

func init() { configurePageCache(pageCacheSlots) }

// pageHeaderSize is SQLite's header for each cached page (a global: SQLite
// writes it through a pointer).
var pageHeaderSize int32

// configurePageCache gives SQLite a page cache buffer of n slots; it must
// run before the process opens its first SQLite connection (SQLite
// refuses once initialised, and the connections then malloc their pages
// as before).
func configurePageCache(n int) {
	tls := libc.NewTLS()
	defer tls.Close()
	va := libc.NewVaList(uintptr(unsafe.Pointer(&pageHeaderSize))) //nolint:gosec // SQLite writes the size through this pointer to a package global
	rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PCACHE_HDRSZ, va)
	libc.Xfree(tls, va)
	if rc != sqlite3.SQLITE_OK {
		slog.Warn("sqlite page cache buffer not set up", "rc", rc)
		return
	}
	sz := (4096 + int(pageHeaderSize) + 7) &^ 7
	buf := libc.Xmalloc(tls, libc.Tsize_t(sz*n))
	if buf == 0 {
		return
	}
	va = libc.NewVaList(buf, int32(sz), int32(n))
	rc = sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PAGECACHE, va)
	libc.Xfree(tls, va)
	if rc != sqlite3.SQLITE_OK {
		libc.Xfree(tls, buf)
		slog.Warn("sqlite page cache buffer not set up", "rc", rc)
	}
}
