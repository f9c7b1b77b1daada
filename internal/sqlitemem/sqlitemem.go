// Package sqlitemem keeps modernc's SQLite allocator from mapping and
// unmapping memory at every statement.
//
// modernc.org/libc serves SQLite's malloc from modernc.org/memory, which
// carves 64 KiB mmap'd pages into slots of one size class (16 B to
// 16 KiB) and unmaps a page as soon as its last slot is freed. Memory a
// statement allocates and frees by itself (a statement journal's 1 KiB
// chunks, a prepared program's arrays) then often lands in a page of its
// own: every such statement maps a page, faults it in and unmaps it, three
// system calls and a TLB shootdown that cost more than the statement's own
// work (docs/performance.md, "Writes, round 4").
//
// Retain holds one slot in each of a few pages of every size class for
// the life of the process, so those pages are never unmapped: their free
// slots serve the short-lived allocations, and a page is mapped afresh only
// when more of one class is live at once than the retained pages hold.
package sqlitemem

import (
	"sync"

	"modernc.org/libc"
)

// pagesPerClass is how many pages of each size class Retain keeps mapped
// (64 KiB of address space each; a page's memory becomes resident as its
// slots are used). Four were too few once query_memory's hit cache kept
// its prepared statements on every read connection: their long-lived
// allocations filled the retained pages, and the statement journal of
// every memories INSERT mapped and unmapped a page again (munmap 11% of
// submit_memory's CPU after a query_memory line; with 16, none).
const pagesPerClass = 16

const (
	pageSize = 64 << 10
	minLog   = 4  // 16-byte slots
	maxLog   = 14 // 16 KiB slots: larger allocations get pages of their own
)

var once sync.Once

// Retain keeps pagesPerClass pages of each slot size mapped. It is safe to
// call more than once and from any goroutine; only the first call works.
func Retain() {
	once.Do(retain)
}

// kept holds the retained slots (never freed).
var kept []uintptr

func retain() {
	tls := libc.NewTLS()
	defer tls.Close()
	for log := minLog; log <= maxLog; log++ {
		size := 1 << log
		// the allocator rounds a request up to a power of two including
		// nothing else: size itself lands in class log
		pages := map[uintptr]bool{}
		var spare []uintptr
		for len(pages) < pagesPerClass {
			p := libc.Xmalloc(tls, libc.Tsize_t(size))
			if p == 0 {
				break // out of memory: keep what is retained so far
			}
			if pg := p &^ (pageSize - 1); !pages[pg] {
				pages[pg] = true
				kept = append(kept, p)
				continue
			}
			spare = append(spare, p)
		}
		for _, p := range spare {
			libc.Xfree(tls, p)
		}
	}
}
