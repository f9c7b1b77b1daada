package vectorstore

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// zipfDocs are n memories of 100 owners over a Zipf-distributed
// vocabulary, as in the MCP bench.
func zipfDocs(h *TermHasher, n int) ([]KeywordDoc, []string) {
	r := mrand.New(mrand.NewPCG(1, 2))
	syl := strings.Fields("ka lo mi ra te su no vi pe da go ri la me to shi ne ba ku fe")
	vocab := make([]string, 5000)
	for i := range vocab {
		var b strings.Builder
		for range 2 + r.IntN(3) {
			b.WriteString(syl[r.IntN(len(syl))])
		}
		vocab[i] = b.String()
	}
	zipf := mrand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))
	docs := make([]KeywordDoc, n)
	var queries []string
	for i := range docs {
		var w []string
		for range 8 + r.IntN(20) {
			w = append(w, vocab[zipf.Uint64()])
		}
		perm := []string{"private", "private", "public", "shared"}[r.IntN(4)]
		m := Meta{OwnerID: fmt.Sprintf("owner-%03d", i%100), Permission: perm, CreatedAt: kwBase.Add(time.Duration(i) * time.Second)}
		if perm == "shared" {
			m.SharedUsers = []string{fmt.Sprintf("owner-%03d", r.IntN(100))}
		}
		docs[i] = doc(h, fmt.Sprintf("mem-%06d", i), strings.Join(w, " "), m)
		if i%10 == 0 {
			k := 2 + r.IntN(3)
			s := r.IntN(len(w) - k)
			queries = append(queries, strings.Join(w[s:s+k], " "))
		}
	}
	return docs, queries
}

// BenchmarkKeywordSearchSQLite10k: one search at a time, ranked by the
// SQL statement (sql) or by the postings cache (cache).
func BenchmarkKeywordSearchSQLite10k(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := map[bool]string{false: "sql", true: "cache"}[cached]
		b.Run(name, func(b *testing.B) { benchKeywordSearch(b, 10_000, cached) })
	}
}

// BenchmarkKeywordCache100k: search over the postings cache of 100k
// memories, reporting the heap the cache holds (MB-cache).
//
//	go test -run '^$' -bench KeywordCache100k -benchtime 2000x ./vectorstore
func BenchmarkKeywordCache100k(b *testing.B) {
	benchKeywordSearch(b, 100_000, true)
}

func benchKeywordSearch(b *testing.B, n int, cached bool) {
	h := testHasher(b)
	k, err := openSQLiteKeywords(filepath.Join(b.TempDir(), "kw.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	queries := func() []string { // the docs are garbage before the cache loads
		docs, queries := zipfDocs(h, n)
		indexAll(b, k, docs)
		return queries
	}()
	k.noCache = !cached
	if cached {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		loadCacheNow(b, k)
		took := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		defer func() { // after the loop: ResetTimer drops reported metrics
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MB-cache")
			b.ReportMetric(took.Seconds(), "s-load")
		}()
	}
	hy := &Hybrid{Index: k, Hasher: h, Opts: DefaultHybridOptions()}
	if v := os.Getenv("BENCH_BUDGET"); v != "" {
		hy.Opts.Budget, _ = strconv.Atoi(v)
	}
	if v := os.Getenv("BENCH_LENDERS"); v != "" {
		hy.Opts.ContextLenders, _ = strconv.Atoi(v)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		u := fmt.Sprintf("owner-%03d", i%100)
		f := Filter{Any: []Clause{{OwnerID: u}, {Permission: "public"}, {Permission: "shared", SharedWithUser: u}}, Now: kwBase}
		if _, err := hy.Search(context.Background(), queries[i%len(queries)], f, 20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeywordSearchSQLite10kParallel: 25 searches at once, in SQL
// (BENCH_CONNS sets the connections) or over the cache with BENCH_CACHE=1.
func BenchmarkKeywordSearchSQLite10kParallel(b *testing.B) {
	if v := os.Getenv("BENCH_CONNS"); v != "" {
		sqliteConns, _ = strconv.Atoi(v)
	}
	h := testHasher(b)
	k, err := openSQLiteKeywords(filepath.Join(b.TempDir(), "kw.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	docs, queries := zipfDocs(h, 10_000)
	indexAll(b, k, docs)
	k.noCache = os.Getenv("BENCH_CACHE") == ""
	if !k.noCache {
		loadCacheNow(b, k)
	}
	hy := &Hybrid{Index: k, Hasher: h, Opts: DefaultHybridOptions()}
	b.SetParallelism(25)
	b.ResetTimer()
	var n atomicCounter
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.next()
			u := fmt.Sprintf("owner-%03d", i%100)
			f := Filter{Any: []Clause{{OwnerID: u}, {Permission: "public"}, {Permission: "shared", SharedWithUser: u}}, Now: kwBase}
			if _, err := hy.Search(context.Background(), queries[i%len(queries)], f, 20); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

type atomicCounter struct{ v atomic.Int64 }

func (c *atomicCounter) next() int { return int(c.v.Add(1)) }

// BenchmarkKeywordCacheRank10k: postingsCache.rank alone (no hashing, no
// SQL, no sync) over 10k memories of 100 owners with the default hybrid
// options (budget 2000, 50 context lenders), the viewer's filter as
// query_memory builds it, limit 5 as loadbench asks.
//
//	go test -run '^$' -bench KeywordCacheRank10k -benchmem ./vectorstore
func BenchmarkKeywordCacheRank10k(b *testing.B) {
	h := testHasher(b)
	k, err := openSQLiteKeywords(filepath.Join(b.TempDir(), "kw.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	docs, texts := zipfDocs(h, 10_000)
	indexAll(b, k, docs)
	loadCacheNow(b, k)
	hy := &Hybrid{Index: k, Hasher: h, Opts: DefaultHybridOptions()}
	o := hy.Opts
	queries := make([]KeywordQuery, len(texts))
	for i, t := range texts {
		u := fmt.Sprintf("owner-%03d", i%100)
		f := Filter{Any: []Clause{{OwnerID: u}, {Permission: "public"}, {Permission: "shared", SharedWithUser: u}}, Now: kwBase}
		queries[i] = KeywordQuery{Terms: hy.QueryTerms(t), Filter: f, Limit: 5, K1: o.K1, B: o.B, IDFPower: o.IDFPower,
			Budget: o.Budget, ContextNear: o.ContextNear, ContextFar: o.ContextFar, ContextLenders: o.ContextLenders}
	}
	c := k.cache
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.mu.RLock()
		c.rank(queries[i%len(queries)])
		c.mu.RUnlock()
	}
}
