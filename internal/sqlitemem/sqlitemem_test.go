package sqlitemem

import (
	"syscall"
	"testing"

	"modernc.org/libc"
)

func minorFaults(t *testing.T) int64 {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Minflt
}

// TestShortLivedAllocationsReuseRetainedPages: after Retain, memory that
// is allocated and freed again at once (what a statement's journal does)
// is served from the retained pages of its size class: no page is mapped
// (and faulted in) and unmapped for it, which the process's page faults
// show.
func TestShortLivedAllocationsReuseRetainedPages(t *testing.T) {
	Retain()
	Retain() // a second call changes nothing
	retained := map[uintptr]bool{}
	for _, p := range kept {
		retained[p&^(pageSize-1)] = true
	}
	if len(retained) != pagesPerClass*(maxLog-minLog+1) {
		t.Fatalf("%d pages retained, want %d", len(retained), pagesPerClass*(maxLog-minLog+1))
	}
	tls := libc.NewTLS()
	defer tls.Close()
	cycle := func(size int) {
		p := libc.Xmalloc(tls, libc.Tsize_t(size))
		if p == 0 {
			t.Fatal("out of memory")
		}
		libc.Xmemset(tls, p, 1, 1) // the memory is used
		libc.Xfree(tls, p)
	}
	sizes := []int{24, 200, 1032, 4100, 16000}
	for _, size := range sizes {
		cycle(size) // the slots' memory is resident from now on
	}
	const n = 2000
	before := minorFaults(t)
	for _, size := range sizes {
		for range n {
			cycle(size)
		}
	}
	// one fault per cycle when every cycle maps a fresh page
	if f := minorFaults(t) - before; f > n/4 {
		t.Fatalf("%d page faults in %d allocations freed at once: pages are mapped afresh", f, n*len(sizes))
	}
}
