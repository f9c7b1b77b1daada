package platform

import (
	"log/slog"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// pageCacheSlots is how many database pages (4 KiB and SQLite's header
// for each) every SQLite connection of the process shares in one buffer
// set up at start (SQLITE_CONFIG_PAGECACHE), before their caches fall back
// to malloc.
//
// modernc's allocator (modernc.org/memory) puts each malloc'd page in an
// 8 KiB slot of a 64 KiB mapping, and unmaps the mapping as soon as its
// last slot is freed. A read connection of data.db empties its cache when
// it starts a read after another connection committed, nearly every read
// under load, so its pages were freed and allocated again at every
// request: munmap, mmap and the page faults were ~18% of query_memory's
// CPU (docs/performance.md, "SQLite's allocator"). The buffer is mapped
// once, resident from the start (SQLite links every slot into its free
// list) and never freed: pageCacheSlots * ~4.3 KiB of RSS.
const pageCacheSlots = 2048

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
	va := libc.NewVaList(uintptr(unsafe.Pointer(&pageHeaderSize)))
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
