package vectorstore

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func openTestEmbedded(t *testing.T, path string) *EmbeddedStore {
	t.Helper()
	s, err := OpenEmbedded(path)
	if err != nil {
		t.Fatalf("open embedded: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestEmbeddedConformance(t *testing.T) {
	testStore(t, func(t *testing.T) Store {
		return openTestEmbedded(t, filepath.Join(t.TempDir(), "vectors.db"))
	})
}

// snapshot captures what a user would see: counts and search results for a
// few filters.
func snapshot(t *testing.T, s Store, spaces []Space, queries []Query) string {
	t.Helper()
	out := ""
	for _, sp := range spaces {
		out += fmt.Sprintf("count %s=%d\n", sp, mustCount(t, s, sp))
	}
	for _, q := range queries {
		for _, h := range mustSearch(t, s, q) {
			out += fmt.Sprintf("%s %.6f\n", h.ID, h.Score)
		}
		out += "--\n"
	}
	return out
}

func persistenceWorld(t *testing.T, s Store) ([]Space, []Query) {
	t.Helper()
	r := rand.New(rand.NewPCG(11, 12))
	a := Space{Embedder: "test", Model: "a", Dims: 8}
	b := Space{Embedder: "test", Model: "b", Dims: 3}
	items := randomWorld(r, 200, 8)
	mustUpsert(t, s, a, items...)
	mustUpsert(t, s, b, Item{ID: "r0001", Meta: Meta{OwnerID: "u9", Permission: "public"}, Vector: []float32{1, 2, 3}})
	if err := s.Delete(ctxBG, "r0002", "r0003", "r0004"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta(ctxBG, "r0005", Meta{OwnerID: "u9", Permission: "shared", SharedGroups: []string{"g7"}, ExpiresAt: t0.Add(time.Hour + 1500*time.Nanosecond)}); err != nil {
		t.Fatal(err)
	}
	var queries []Query
	for range 10 {
		queries = append(queries, Query{Space: a, Vector: randVec(r, 8), Filter: randomFilter(r), Limit: 20})
	}
	queries = append(queries,
		Query{Space: a, Vector: randVec(r, 8), Filter: Filter{Any: []Clause{{OwnerID: "u9"}}, Now: t0.Add(time.Hour)}, Limit: 5},
		Query{Space: a, Vector: randVec(r, 8), Filter: Filter{Any: []Clause{{SharedWithGroups: []string{"g7"}}}, Now: t0}, Limit: 5},
		Query{Space: b, Vector: []float32{1, 2, 3}, Filter: openAll, Limit: 5},
	)
	return []Space{a, b}, queries
}

func TestEmbeddedPersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "vectors.db")
	s, err := OpenEmbedded(path)
	if err != nil {
		t.Fatal(err)
	}
	spaces, queries := persistenceWorld(t, s)
	before := snapshot(t, s, spaces, queries)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Search(ctxBG, queries[0]); err == nil {
		t.Fatal("search on a closed store succeeded")
	}
	re := openTestEmbedded(t, path)
	if after := snapshot(t, re, spaces, queries); after != before {
		t.Fatalf("state changed across reopen:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// the set-meta expiry (kept to the microsecond) still applies
	q := Query{Space: spaces[0], Vector: make([]float32, 8), Filter: Filter{Any: []Clause{{OwnerID: "u9"}}}, Limit: 5}
	q.Vector[0] = 1
	for _, c := range []struct {
		now  time.Time
		want int
	}{{t0.Add(time.Hour), 1}, {t0.Add(time.Hour + time.Microsecond), 0}} {
		q.Filter.Now = c.now
		if hits := mustSearch(t, re, q); len(hits) != c.want {
			t.Errorf("expiry after reopen, now %v: %d hits, want %d", c.now, len(hits), c.want)
		}
	}
}

// TestEmbeddedSurvivesCrash opens the file again without closing the first
// store (as after a crash), then with a torn record appended.
func TestEmbeddedSurvivesCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors.db")
	s := openTestEmbedded(t, path)
	spaces, queries := persistenceWorld(t, s)
	before := snapshot(t, s, spaces, queries)

	s.lock.Close() // the dead process's flock goes with it
	crashed := openTestEmbedded(t, path)
	if got := snapshot(t, crashed, spaces, queries); got != before {
		t.Fatalf("acknowledged writes lost after a crash:\nbefore:\n%s\nafter:\n%s", before, got)
	}
	crashed.Close()
	s.Close()

	tests := []struct {
		name string
		tail []byte
	}{
		{"torn header", []byte{0x10, 0x00}},
		{"torn payload", []byte{0x40, 0, 0, 0, 1, 2, 3, 4, opUpsert, 1, 2}},
		{"bad checksum", []byte{0x02, 0, 0, 0, 9, 9, 9, 9, opReset, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write(tc.tail)
			f.Close()
			re, err := OpenEmbedded(path)
			if err != nil {
				t.Fatalf("reopen with a %s: %v", tc.name, err)
			}
			if got := snapshot(t, re, spaces, queries); got != before {
				t.Fatalf("state changed:\n%s\nwant:\n%s", got, before)
			}
			// writing after the repair must leave a readable log
			mustUpsert(t, re, spaces[1], Item{ID: "tmp", Meta: Meta{OwnerID: "x"}, Vector: []float32{3, 2, 1}})
			if err := re.Delete(ctxBG, "tmp"); err != nil {
				t.Fatal(err)
			}
			re.Close()
			re2 := openTestEmbedded(t, path)
			if got := snapshot(t, re2, spaces, queries); got != before {
				t.Fatalf("state changed after writing past a repaired tail")
			}
			re2.Close()
		})
	}
}

func TestEmbeddedRejectsForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors.db")
	if err := os.WriteFile(path, []byte("this is not a vector store"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEmbedded(path); err == nil {
		t.Fatal("opening a foreign file succeeded")
	}
}

func TestEmbeddedCompactsLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors.db")
	s := openTestEmbedded(t, path)
	sp := Space{Embedder: "test", Model: "c", Dims: 64}
	r := rand.New(rand.NewPCG(13, 14))
	item := func(i int) Item {
		return Item{ID: "m", Meta: Meta{OwnerID: "u", Permission: fmt.Sprint(i)}, Vector: randVec(r, 64)}
	}
	mustUpsert(t, s, sp, item(0))
	st, _ := os.Stat(path)
	recordSize := st.Size() - int64(len(logMagic))
	const writes = 3000
	var last Item
	for i := 1; i <= writes; i++ {
		last = item(i)
		mustUpsert(t, s, sp, last)
	}
	st, _ = os.Stat(path)
	if st.Size() > recordSize*(compactMinGarbage+10) {
		t.Fatalf("log is %d bytes after %d overwrites of one item (%d per record): not compacted", st.Size(), writes, recordSize)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary compaction file left behind: %v", err)
	}
	s.Close()
	re := openTestEmbedded(t, path)
	hits := mustSearch(t, re, Query{Space: sp, Vector: last.Vector, Filter: Filter{Any: []Clause{{Permission: fmt.Sprint(writes)}}}, Limit: 3})
	if len(hits) != 1 || hits[0].Score < 0.9999 {
		t.Fatalf("after compaction and reopen hits = %v, want the last version of m", hits)
	}
}

func TestEmbeddedResetPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors.db")
	s := openTestEmbedded(t, path)
	mustUpsert(t, s, space4, Item{ID: "a", Meta: Meta{OwnerID: "u"}, Vector: []float32{1, 0, 0, 0}})
	if err := s.Reset(ctxBG); err != nil {
		t.Fatal(err)
	}
	mustUpsert(t, s, space4, Item{ID: "b", Meta: Meta{OwnerID: "u"}, Vector: []float32{1, 0, 0, 0}})
	s.Close()
	re := openTestEmbedded(t, path)
	hits := mustSearch(t, re, Query{Space: space4, Vector: []float32{1, 0, 0, 0}, Filter: openAll, Limit: 5})
	if got := hitIDs(hits); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("after reset and reopen = %v, want [b]", got)
	}
}

// TestEmbeddedExactTopK checks that small limits return exactly the
// reference top k, in order.
func TestEmbeddedExactTopK(t *testing.T) {
	s := openTestEmbedded(t, filepath.Join(t.TempDir(), "vectors.db"))
	r := rand.New(rand.NewPCG(15, 16))
	sp := Space{Embedder: "test", Model: "topk", Dims: 24}
	items := randomWorld(r, 1500, 24)
	mustUpsert(t, s, sp, items...)
	for i := range 100 {
		q := Query{Space: sp, Vector: randVec(r, 24), Filter: randomFilter(r), Limit: 1 + r.IntN(12)}
		want, got := reference(items, q), mustSearch(t, s, q)
		if !slices.Equal(hitIDs(got), hitIDs(want)) {
			t.Fatalf("query %d limit %d: got %v, want %v", i, q.Limit, hitIDs(got), hitIDs(want))
		}
	}
}

func TestEmbeddedConcurrentUse(t *testing.T) {
	s := openTestEmbedded(t, filepath.Join(t.TempDir(), "vectors.db"))
	sp := Space{Embedder: "test", Model: "conc", Dims: 16}
	const workers, rounds = 8, 60
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 99))
			owner := fmt.Sprint("w", w)
			for i := range rounds {
				id := fmt.Sprintf("%s-%d", owner, i)
				if err := s.Upsert(ctxBG, sp, Item{ID: id, Meta: Meta{OwnerID: owner}, Vector: randVec(r, 16)}); err != nil {
					errs <- err
				}
				hits, err := s.Search(ctxBG, Query{Space: sp, Vector: randVec(r, 16), Filter: Filter{Any: []Clause{{OwnerID: owner}}}, Limit: 5})
				if err != nil {
					errs <- err
				}
				for _, h := range hits {
					if h.ID[:len(owner)+1] != owner+"-" {
						errs <- fmt.Errorf("worker %s saw %s", owner, h.ID)
					}
				}
				if i%2 == 1 {
					if err := s.Delete(ctxBG, id); err != nil {
						errs <- err
					}
				} else if err := s.SetMeta(ctxBG, id, Meta{OwnerID: owner, Permission: "public"}); err != nil {
					errs <- err
				}
				if _, err := s.Count(ctxBG, sp); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := mustCount(t, s, sp); n != workers*rounds/2 {
		t.Fatalf("count = %d, want %d", n, workers*rounds/2)
	}
}

func BenchmarkEmbeddedSearch10kx384(b *testing.B) {
	s, err := OpenEmbedded(filepath.Join(b.TempDir(), "vectors.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 1))
	sp := Space{Embedder: "bench", Model: "m", Dims: 384}
	items := randomWorld(r, 10000, 384)
	if err := s.Upsert(ctxBG, sp, items...); err != nil {
		b.Fatal(err)
	}
	q := Query{Space: sp, Vector: randVec(r, 384), Limit: 10,
		Filter: Filter{Any: []Clause{{OwnerID: "u1"}, {Permission: "public"}, {Permission: "shared", SharedWithUser: "u1"}}, Now: t0}}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Search(ctxBG, q); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEmbeddedOneProcessAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vectors.db")
	s, err := OpenEmbedded(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenEmbedded(path); !errors.Is(err, ErrStoreLocked) {
		t.Fatalf("second open while the first is open: want ErrStoreLocked, got %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenEmbedded(path)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	s2.Close()
}
