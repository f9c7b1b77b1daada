package vectorstore

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// heapInUse is the live heap after a full collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// TestEmbeddedKeepsVectorsOnDisk: a store nobody searches holds no vectors
// in memory (the default: keyword search only); the first search builds the
// int8 index, a quarter of the float32 size.
func TestEmbeddedKeepsVectorsOnDisk(t *testing.T) {
	const n, dims = 4000, 1024 // 16 MiB of float32
	floatBytes := int64(n * dims * 4)
	r := rand.New(rand.NewPCG(21, 22))
	sp := Space{Embedder: "test", Model: "disk", Dims: dims}
	items := randomWorld(r, n, dims)
	path := filepath.Join(t.TempDir(), "vectors.db")

	before := heapInUse()
	s := openTestEmbedded(t, path)
	for lo := 0; lo < n; lo += 500 {
		mustUpsert(t, s, sp, items[lo:lo+500]...)
	}
	held := heapInUse() - before
	if held > floatBytes/4 {
		t.Fatalf("after writing %d vectors (%d MiB as float32) the store holds %d MiB of heap; vectors should stay on disk",
			n, floatBytes>>20, held>>20)
	}

	q := Query{Space: sp, Vector: items[7].Vector, Filter: Filter{Any: []Clause{{}}, IncludeExpired: true}, Limit: 3}
	if hits := mustSearch(t, s, q); len(hits) == 0 || hits[0].ID != items[7].ID {
		t.Fatalf("search for an item's own vector = %v, want %s first", hits, items[7].ID)
	}
	indexed := heapInUse() - before
	if indexed > floatBytes/2 {
		t.Fatalf("with the dense index built the store holds %d MiB for %d MiB of float32 vectors; want the int8 index (about a quarter)",
			indexed>>20, floatBytes>>20)
	}
	runtime.KeepAlive(items)

	// reopening (a restart) drops the index until the next search, or
	// until WarmDenseIndex
	s.Close()
	re := openTestEmbedded(t, path)
	if idx := re.spaces[sp]; idx == nil || idx.ann != nil || len(idx.ids) != n {
		t.Fatalf("after reopen: space index %+v, want %d items and no dense index", idx != nil, n)
	}
	if err := re.WarmDenseIndex(ctxBG, sp); err != nil {
		t.Fatal(err)
	}
	if idx := re.spaces[sp]; idx.ann == nil || len(idx.ann.scales) != n {
		t.Fatal("WarmDenseIndex did not build the index")
	}
	if hits := mustSearch(t, re, q); len(hits) == 0 || hits[0].ID != items[7].ID {
		t.Fatalf("after reopen search = %v, want %s first", hits, items[7].ID)
	}
}

// TestEmbeddedDenseIndexFollowsWrites interleaves upserts (new and
// replacing), metadata changes, deletes, compactions and a reopen with
// searches once the index is built, and checks every result against an
// exact scan of what was acknowledged: no stale vector, no deleted item,
// no lost item.
func TestEmbeddedDenseIndexFollowsWrites(t *testing.T) {
	const dims = 32
	r := rand.New(rand.NewPCG(23, 24))
	sp := Space{Embedder: "test", Model: "follow", Dims: dims}
	path := filepath.Join(t.TempDir(), "vectors.db")
	s := openTestEmbedded(t, path)
	live := map[string]Item{}
	for _, it := range randomWorld(r, 300, dims) {
		live[it.ID] = it
	}
	all := func() []Item {
		out := make([]Item, 0, len(live))
		for _, it := range live {
			out = append(out, it)
		}
		slices.SortFunc(out, func(a, b Item) int { return cmpString(a.ID, b.ID) })
		return out
	}
	mustUpsert(t, s, sp, all()...)

	check := func(step string) {
		t.Helper()
		items := all()
		for range 5 {
			// a limit whose candidate window covers every item: exact
			q := Query{Space: sp, Vector: randVec(r, dims), Filter: randomFilter(r), Limit: 1000}
			want, got := reference(items, q), mustSearch(t, s, q)
			if !slices.Equal(hitIDs(got), hitIDs(want)) {
				t.Fatalf("%s: got %v\nwant %v", step, hitIDs(got), hitIDs(want))
			}
		}
		// an item's own vector finds it first (an updated item is found
		// by its new vector, never its old one)
		for range 5 {
			it := items[r.IntN(len(items))]
			q := Query{Space: sp, Vector: it.Vector, Filter: Filter{Any: []Clause{{}}, IncludeExpired: true}, Limit: 1}
			if got := mustSearch(t, s, q); len(got) != 1 || got[0].ID != it.ID || got[0].Score < 0.9999 {
				t.Fatalf("%s: searching %s's vector = %v", step, it.ID, got)
			}
		}
	}
	check("built")
	next := 300
	for round := range 1400 {
		switch op := r.IntN(10); {
		case op < 5: // replace a vector (and metadata)
			old := all()[r.IntN(len(live))]
			it := randomWorld(r, 1, dims)[0]
			it.ID = old.ID
			live[it.ID] = it
			mustUpsert(t, s, sp, it)
		case op < 7: // new item
			it := randomWorld(r, 1, dims)[0]
			it.ID = fmt.Sprintf("n%05d", next)
			next++
			live[it.ID] = it
			mustUpsert(t, s, sp, it)
		case op < 8: // metadata only
			it := all()[r.IntN(len(live))]
			it.Meta = randomWorld(r, 1, dims)[0].Meta
			live[it.ID] = it
			if err := s.SetMeta(ctxBG, it.ID, it.Meta); err != nil {
				t.Fatal(err)
			}
		default:
			it := all()[r.IntN(len(live))]
			delete(live, it.ID)
			if err := s.Delete(ctxBG, it.ID); err != nil {
				t.Fatal(err)
			}
		}
		if round%200 == 199 {
			check(fmt.Sprintf("after %d writes", round+1))
		}
	}
	s.Close()
	s = openTestEmbedded(t, path)
	check("after reopen")
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestEmbeddedDenseRecall measures the approximate search against the
// exact scan on a world larger than the rescoring window: recall@10 must
// stay near 1, returned scores are exact, and a selective filter (fewer
// matches than candidates) is answered exactly.
func TestEmbeddedDenseRecall(t *testing.T) {
	for _, dims := range []int{128, 768} {
		t.Run(fmt.Sprint(dims), func(t *testing.T) { testDenseRecall(t, dims) })
	}
}

func testDenseRecall(t *testing.T, dims int) {
	const n = 4000
	r := rand.New(rand.NewPCG(25, uint64(dims)))
	sp := Space{Embedder: "test", Model: "recall", Dims: dims}
	items := randomWorld(r, n, dims)
	for i := range items {
		items[i].Meta.OwnerID = fmt.Sprintf("owner-%02d", i%50)
	}
	byID := map[string]Item{}
	for _, it := range items {
		byID[it.ID] = it
	}
	s := openTestEmbedded(t, filepath.Join(t.TempDir(), "vectors.db"))
	mustUpsert(t, s, sp, items...)
	broad := Filter{Any: []Clause{{}}, IncludeExpired: true}
	var found, total int
	for i := range 60 {
		q := Query{Space: sp, Vector: randVec(r, dims), Filter: broad, Limit: 10}
		want, got := reference(items, q), mustSearch(t, s, q)
		checkSortedDesc(t, got)
		for _, h := range got {
			exact := cosine(byID[h.ID].Vector, q.Vector)
			if d := h.Score - exact; d > 1e-5 || d < -1e-5 {
				t.Fatalf("query %d: %s score %v, exact %v", i, h.ID, h.Score, exact)
			}
		}
		for _, h := range want {
			total++
			if slices.Contains(hitIDs(got), h.ID) {
				found++
			}
		}
		// one owner: 80 matches, all rescored: exact
		q.Filter = Filter{Any: []Clause{{OwnerID: fmt.Sprintf("owner-%02d", i%50)}}, IncludeExpired: true}
		if want, got := reference(items, q), mustSearch(t, s, q); !slices.Equal(hitIDs(got), hitIDs(want)) {
			t.Fatalf("query %d, one owner: got %v, want %v", i, hitIDs(got), hitIDs(want))
		}
	}
	recall := float64(found) / float64(total)
	t.Logf("%d random vectors of %d dims: recall@10 %.3f", n, dims, recall)
	if recall < 0.95 {
		t.Fatalf("recall@10 of the approximate search = %.3f, want >= 0.95", recall)
	}
}

func TestQuantizeRoundTrip(t *testing.T) {
	v := []float32{0.5, -0.25, 0, 0.125, -0.5}
	c := make([]int8, len(v))
	scale := quantize(c, v)
	for i, x := range v {
		if d := float32(c[i])*scale - x; d > 0.5/127 || d < -0.5/127 {
			t.Fatalf("coordinate %d: %v -> %d×%v", i, x, c[i], scale)
		}
	}
	var want int32
	for _, x := range c {
		want += int32(x) * int32(x)
	}
	if got := dotInt8(c, c); got != want || c[0] != 127 || c[4] != -127 {
		t.Fatalf("codes %v, dotInt8 = %d, want %d", c, got, want)
	}
}

// BenchmarkEmbeddedDenseSearch is one filtered dense query (a viewer's
// own, public and shared memories) over 30k random 1536-dim vectors, the
// dense index built.
func BenchmarkEmbeddedDenseSearch(b *testing.B) {
	const n, dims = 30000, 1536
	s, err := OpenEmbedded(filepath.Join(b.TempDir(), "vectors.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 1))
	sp := Space{Embedder: "bench", Model: "m", Dims: dims}
	for lo := 0; lo < n; lo += 1000 {
		items := randomWorld(r, 1000, dims)
		for i := range items {
			items[i].ID = fmt.Sprintf("m%06d", lo+i)
		}
		if err := s.Upsert(ctxBG, sp, items...); err != nil {
			b.Fatal(err)
		}
	}
	q := Query{Space: sp, Vector: randVec(r, dims), Limit: 10,
		Filter: Filter{Any: []Clause{{OwnerID: "u1"}, {Permission: "public"}, {Permission: "shared", SharedWithUser: "u1"}}, Now: t0}}
	if _, err := s.Search(ctxBG, q); err != nil { // builds the index
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Search(ctxBG, q); err != nil {
			b.Fatal(err)
		}
	}
}
