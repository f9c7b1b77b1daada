package vectorstore

import (
	"cmp"
	"context"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/testpg"
)

// loadCacheNow fills k's postings cache synchronously.
func loadCacheNow(t testing.TB, k *sqlKeywords) {
	t.Helper()
	k.cache.state.Store(cacheLoading)
	k.loadCache(context.Background())
	if k.cache.state.Load() != cacheReady {
		t.Fatal("postings cache did not load")
	}
}

// cachedSearch ranks q from the cache (syncing it first) and fails when
// the cache would leave the search to SQL.
func cachedSearch(t testing.TB, k *sqlKeywords, q KeywordQuery) []KeywordHit {
	t.Helper()
	hits, ok, err := k.searchCached(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("postings cache not ready")
	}
	return hits
}

// sameHits fails unless a and b rank the same memories with the same
// scores (memories whose scores tie within rounding may swap places).
func sameHits(t testing.TB, what string, a, b []KeywordHit) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s: %d hits from the cache, %d from SQL\ncache %v\nsql   %v", what, len(a), len(b), a, b)
	}
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
	for i := range a {
		x, y := a[i], b[i]
		if !near(x.Score, y.Score) || !near(x.BM25, y.BM25) && x.ID == y.ID || !near(x.Near, y.Near) && x.ID == y.ID || !near(x.Far, y.Far) && x.ID == y.ID {
			t.Fatalf("%s rank %d: cache %+v, sql %+v", what, i, x, y)
		}
		if x.ID != y.ID {
			// a tie: the other must be at a neighbouring place with the same score
			if (i+1 >= len(b) || b[i+1].ID != x.ID || !near(b[i+1].Score, x.Score)) && (i == 0 || b[i-1].ID != x.ID) {
				t.Fatalf("%s rank %d: cache %+v, sql %+v", what, i, x, y)
			}
		}
	}
}

// cacheCorpus is n memories of 40 owners: a Zipf vocabulary, codes that
// occur once, every permission, shares to users and groups, some expired
// and some expiring, creation times that collide (ties in the timeline).
func cacheCorpus(h *TermHasher, n int, seed uint64) ([]KeywordDoc, []string) {
	r := mrand.New(mrand.NewPCG(seed, 3))
	docs, queries := zipfDocs(h, n)
	for i := range docs {
		m := &docs[i].Meta
		m.OwnerID = fmt.Sprintf("owner-%03d", r.IntN(40))
		m.CreatedAt = kwBase.Add(time.Duration(r.IntN(n/2+1)) * time.Second)
		m.SharedUsers, m.SharedGroups = nil, nil
		switch p := r.IntN(10); {
		case p < 4:
			m.Permission = "private"
		case p < 7:
			m.Permission = "public"
		case p < 9:
			m.Permission = "shared"
			m.SharedUsers = []string{fmt.Sprintf("owner-%03d", r.IntN(40))}
			if r.IntN(3) == 0 {
				m.SharedGroups = []string{fmt.Sprintf("group-%d", r.IntN(4))}
			}
		default:
			m.Permission = "statistical"
		}
		switch e := r.IntN(20); {
		case e == 0:
			m.ExpiresAt = kwBase.Add(-time.Hour)
		case e < 3:
			m.ExpiresAt = kwBase.Add(time.Duration(1+r.IntN(48)) * time.Hour)
		}
		if i%7 == 0 {
			code := fmt.Sprintf("ref-%06x", r.Uint32()&0xffffff)
			docs[i].Terms[h.Hash(code)]++
			docs[i].Len++
			queries = append(queries, code)
		}
	}
	return docs, queries
}

func cacheViewers(r *mrand.Rand) Filter {
	u := fmt.Sprintf("owner-%03d", r.IntN(40))
	now := kwBase.Add(time.Duration(r.IntN(30)) * time.Hour)
	switch r.IntN(6) {
	case 0: // own memories only
		return Filter{Any: []Clause{{OwnerID: u}}, OwnerID: u, Now: now}
	case 1: // own only, expired included
		return Filter{Any: []Clause{{OwnerID: u}}, OwnerID: u, Now: now, IncludeExpired: true}
	case 2: // an owner's public memories (personas)
		return Filter{Any: []Clause{{Permission: "public"}}, OwnerID: fmt.Sprintf("owner-%03d", r.IntN(40)), Now: now}
	case 3: // a clause matching everything
		return Filter{Any: []Clause{{}}, Now: now}
	case 4: // a permission nobody uses, and an unknown owner
		return Filter{Any: []Clause{{Permission: "nobody"}, {OwnerID: "owner-999"}}, Now: now}
	default: // everything the viewer may read, groups too
		return Filter{Any: []Clause{{OwnerID: u}, {Permission: "public"},
			{Permission: "shared", SharedWithUser: u, SharedWithGroups: []string{fmt.Sprintf("group-%d", r.IntN(4))}}}, Now: now}
	}
}

func compareCacheSQL(t *testing.T, k *sqlKeywords, h *TermHasher, queries []string, seed uint64, rounds int) {
	t.Helper()
	r := mrand.New(mrand.NewPCG(seed, 9))
	optsList := []KeywordQuery{
		{K1: 1.2, B: 0.3, IDFPower: 2, ContextNear: 0.5, ContextFar: 0.5, ContextLenders: 50, Budget: 2000}, // the defaults
		{K1: 1.2, B: 0.3, IDFPower: 2, ContextNear: 0.5, ContextFar: 0.5, ContextLenders: 5, Budget: 300},
		{K1: 0.9, B: 0.75},
		{K1: 1.2, B: 0.3, ContextNear: 0.7, ContextFar: 0.2, Budget: 50},
	}
	for i := range rounds {
		q := optsList[i%len(optsList)]
		text := queries[r.IntN(len(queries))]
		if r.IntN(3) == 0 {
			text += " " + queries[r.IntN(len(queries))]
		}
		q.Terms = (&Hybrid{Hasher: h}).QueryTerms(text)
		q.Filter = cacheViewers(r)
		q.Limit = []int{1, 5, 15, 50}[r.IntN(4)]
		want, err := k.searchSQL(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		got := cachedSearch(t, k, q)
		sameHits(t, fmt.Sprintf("round %d %q limit %d filter %+v", i, text, q.Limit, q.Filter), got, want)
	}
}

// eachEngine runs f as a subtest on an empty keyword index of each
// engine, SQLite and PostgreSQL.
func eachEngine(t *testing.T, f func(t *testing.T, engine string, k *sqlKeywords)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			var k *sqlKeywords
			if engine == "sqlite" {
				k, _ = openSQLiteKW(t)
			} else {
				k = openPGKW(t)
			}
			f(t, engine, k)
		})
	}
}

// loadedCache makes a corpus of n memories and its queries (cacheCorpus
// with seed), indexes the first loaded memories in k and loads k's
// postings cache from them.
func loadedCache(t testing.TB, k *sqlKeywords, n int, seed uint64, loaded int) (*TermHasher, []KeywordDoc, []string) {
	t.Helper()
	h := testHasher(t)
	docs, queries := cacheCorpus(h, n, seed)
	indexAll(t, k, docs[:loaded])
	loadCacheNow(t, k)
	return h, docs, queries
}

// termsQuery asks for at most limit memories that pass f and share a
// term with d (d's terms, each weighted 1).
func termsQuery(d KeywordDoc, f Filter, limit int) KeywordQuery {
	q := KeywordQuery{Terms: map[int64]float64{}, Filter: f, Limit: limit, K1: 1.2, B: 0.3}
	for term := range d.Terms {
		q.Terms[term] = 1
	}
	return q
}

// TestKeywordsCacheScoringPathsAgree: the ranking adds the common terms'
// shares either from their postings or from each candidate's own terms
// (walkPerCandidate chooses); both add the same numbers in the same order,
// so the hits, scores included, are identical to the last bit, on both
// engines (whose loads may return a memory's terms in any order).
func TestKeywordsCacheScoringPathsAgree(t *testing.T) {
	eachEngine(t, func(t *testing.T, _ string, k *sqlKeywords) {
		h, docs, queries := loadedCache(t, k, 4000, 1, 3000)
		indexAll(t, k, docs[3000:]) // these handed over by the writes
		r := mrand.New(mrand.NewPCG(5, 9))
		opts := []KeywordQuery{
			{K1: 1.2, B: 0.3, IDFPower: 2, ContextNear: 0.5, ContextFar: 0.5, ContextLenders: 50, Budget: 2000},
			{K1: 0.9, B: 0.75},
			{K1: 1.2, B: 0.3, ContextNear: 0.7, ContextFar: 0.2, Budget: 50},
		}
		defer func(w int) { walkPerCandidate = w }(walkPerCandidate)
		cachedSearch(t, k, KeywordQuery{Terms: (&Hybrid{Hasher: h}).QueryTerms(queries[0]), Filter: Filter{Any: []Clause{{}}}, Limit: 5})
		k.cache.mu.RLock()
		defer k.cache.mu.RUnlock()
		for i := range 600 {
			q := opts[i%len(opts)]
			text := queries[r.IntN(len(queries))]
			for r.IntN(2) == 0 { // long queries: memories holding several common terms
				text += " " + queries[r.IntN(len(queries))]
			}
			q.Terms = (&Hybrid{Hasher: h}).QueryTerms(text)
			q.Filter = cacheViewers(r)
			q.Limit = []int{1, 5, 15, 50}[r.IntN(4)]
			walkPerCandidate = 0
			scan := k.cache.rank(q)
			walkPerCandidate = math.MaxInt32
			walk := k.cache.rank(q)
			if !slices.Equal(scan, walk) {
				t.Fatalf("%q filter %+v: from each candidate's terms %v, from the postings %v", text, q.Filter, scan, walk)
			}
		}
	})
}

// TestKeywordsCacheMatchesSQL: the postings cache ranks exactly as the
// SQL statement does, on both engines, after a load and after updates,
// deletes and a reset that it follows by syncing.
func TestKeywordsCacheMatchesSQL(t *testing.T) {
	eachEngine(t, func(t *testing.T, _ string, k *sqlKeywords) {
		h, docs, queries := loadedCache(t, k, 4000, 1, 3000)
		compareCacheSQL(t, k, h, queries, 1, 150)

		// more memories, updates (new terms, owners, permissions,
		// times) and deletes, written after the load
		indexAll(t, k, docs[3000:])
		more, _ := cacheCorpus(h, 4000, 2)
		var upd []KeywordDoc
		for i := 0; i < 4000; i += 9 {
			d := more[i]
			d.ID = docs[i].ID
			upd = append(upd, d)
		}
		indexAll(t, k, upd)
		var del []string
		for i := 5; i < 4000; i += 13 {
			del = append(del, docs[i].ID)
		}
		if err := k.DeleteDocs(context.Background(), del...); err != nil {
			t.Fatal(err)
		}
		// an id deleted and written again before the cache syncs
		if err := k.DeleteDocs(context.Background(), docs[10].ID); err != nil {
			t.Fatal(err)
		}
		indexAll(t, k, []KeywordDoc{docs[10]})
		compareCacheSQL(t, k, h, queries, 2, 150)

		// an update that keeps the memory's key (as a permission or
		// expiry change may): rows changed in place, then noted
		var inPlace []any
		var inPlaceIDs []string
		for i := 1; i < 4000; i += 17 {
			inPlace = append(inPlace, docs[i].ID)
			inPlaceIDs = append(inPlaceIDs, docs[i].ID)
		}
		a := sqlArgs{}
		in := placeholders(&a, inPlace...)
		if _, err := k.db.Exec(k.sql(`UPDATE {docs} SET permission = 'public', expires_at = NULL WHERE id IN (`+in+`)`), a...); err != nil {
			t.Fatal(err)
		}
		k.noteWrite(inPlaceIDs...)
		compareCacheSQL(t, k, h, queries, 6, 100)
		if k.cache.n != 4000-len(del) {
			t.Fatalf("cache holds %d memories, want %d", k.cache.n, 4000-len(del))
		}

		if err := k.ResetKeywords(context.Background()); err != nil {
			t.Fatal(err)
		}
		if hits := cachedSearch(t, k, KeywordQuery{Terms: (&Hybrid{Hasher: h}).QueryTerms(queries[0]), Filter: Filter{Any: []Clause{{}}}, Limit: 5}); len(hits) != 0 {
			t.Fatalf("after a reset the cache still finds %v", hits)
		}
		indexAll(t, k, docs[:500])
		compareCacheSQL(t, k, h, queries, 3, 40)
	})
}

// TestKeywordsCacheOtherProcess: on PostgreSQL another process (here a
// second index on the same schema) writes and deletes; the first one's
// cache follows at its next search.
func TestKeywordsCacheOtherProcess(t *testing.T) {
	dsn := testpg.DSN(t)
	schema := testSchema(t, dsn)
	s1, s2 := openTestPGSchema(t, dsn, schema), openTestPGSchema(t, dsn, schema)
	k1i, err := s1.Keywords()
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s2.Keywords()
	if err != nil {
		t.Fatal(err)
	}
	k1 := k1i.(*sqlKeywords)
	h, docs, queries := loadedCache(t, k1, 1500, 4, 1000)
	indexAll(t, k2, docs[1000:])
	var del []string
	for i := 3; i < 1500; i += 11 {
		del = append(del, docs[i].ID)
	}
	if err := k2.DeleteDocs(context.Background(), del...); err != nil {
		t.Fatal(err)
	}
	all := Filter{Any: []Clause{{}}, IncludeExpired: true}
	for _, i := range []int{1001, 1499, 3, 14} {
		got := cachedSearch(t, k1, termsQuery(docs[i], all, 20))
		found := slices.ContainsFunc(got, func(x KeywordHit) bool { return x.ID == docs[i].ID })
		deleted := (i-3)%11 == 0
		if found == deleted {
			t.Errorf("memory %d (deleted by the other process: %v): cache search returned %v", i, deleted, got)
		}
	}
	compareCacheSQL(t, k1, h, queries, 5, 60)

	// the other process changes a memory in place (same key, same stats
	// row: a permission change) and announces it; the first one's cache
	// drops it from public searches without any write of its own
	pub := -1
	for i := 0; i < 1500 && pub < 0; i++ {
		if docs[i].Meta.Permission == "public" && docs[i].Meta.ExpiresAt.IsZero() && (i-3)%11 != 0 {
			pub = i
		}
	}
	q := termsQuery(docs[pub], Filter{Any: []Clause{{Permission: "public"}}, Now: kwBase}, 50)
	has := func() bool {
		return slices.ContainsFunc(cachedSearch(t, k1, q), func(x KeywordHit) bool { return x.ID == docs[pub].ID })
	}
	if !has() {
		t.Fatalf("public memory %s not found before the change", docs[pub].ID)
	}
	k2s := k2.(*sqlKeywords)
	if _, err := k2s.db.Exec(k2s.sql(`UPDATE {docs} SET permission = 'private' WHERE id = $1`), docs[pub].ID); err != nil {
		t.Fatal(err)
	}
	k2s.noteWrite(docs[pub].ID)
	deadline := time.Now().Add(10 * time.Second)
	for has() {
		if time.Now().After(deadline) {
			t.Fatal("another process's permission change never reached this process's cache")
		}
		time.Sleep(20 * time.Millisecond)
	}
	compareCacheSQL(t, k1, h, queries, 7, 40)
}

// TestKeywordsCacheReloadsAfterBulkWrites: more writes than the cache
// remembers ids of (a reindex) send searches to SQL while the cache
// reloads in the background, then the cache ranks again, current.
func TestKeywordsCacheReloadsAfterBulkWrites(t *testing.T) {
	old := maxPending
	maxPending = 50
	t.Cleanup(func() { maxPending = old })
	k, _ := openSQLiteKW(t)
	h, docs, queries := loadedCache(t, k, 600, 8, 300)
	indexAll(t, k, docs[300:])
	q := KeywordQuery{Terms: (&Hybrid{Hasher: h}).QueryTerms(queries[0]), Filter: Filter{Any: []Clause{{}}, IncludeExpired: true}, Limit: 10, K1: 1.2, B: 0.3}
	if _, ok, err := k.searchCached(context.Background(), q); err != nil || ok {
		t.Fatalf("after a bulk write the cache answered (ok %v, err %v) instead of reloading", ok, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for k.cache.state.Load() != cacheReady {
		if time.Now().After(deadline) {
			t.Fatal("the cache never finished reloading")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if k.cache.n != 600 {
		t.Fatalf("cache holds %d memories after the reload, want 600", k.cache.n)
	}
	compareCacheSQL(t, k, h, queries, 9, 60)
}

// TestTopNMatchesBestN: the ranking's inline selection keeps the same
// memories as bestN with the comparison it replaces
// (score or total descending, then key), ties on the score included.
func TestTopNMatchesBestN(t *testing.T) {
	r := mrand.New(mrand.NewPCG(7, 7))
	for round := range 200 {
		xs := make([]cacheScore, r.IntN(300))
		for i, k := range r.Perm(len(xs)) {
			// few distinct values: many ties, decided by the key
			xs[i] = cacheScore{slot: uint32(i), k: int64(k), score: float64(r.IntN(8)), total: float64(r.IntN(5)) / 2}
		}
		for _, total := range []bool{false, true} {
			byKey := func(x, y cacheScore) int {
				if v, w := x.val(total), y.val(total); v != w {
					return cmp.Compare(w, v)
				}
				return cmp.Compare(x.k, y.k)
			}
			for _, n := range []int{0, 1, 5, 50, len(xs), len(xs) + 3} {
				want := bestN(xs, n, byKey)
				got := topN(xs, n, total, nil)
				slices.SortFunc(got, byKey) // topN keeps them in no order
				if len(got) != len(want) {
					t.Fatalf("round %d n %d total %v: %d kept, want %d", round, n, total, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("round %d n %d total %v place %d: %+v, want %+v", round, n, total, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestRankScratchWraps: when the per-query stamp wraps, marks left by
// earlier queries must not pass for the new query's (a memory seen long
// ago would be skipped as a duplicate candidate).
func TestRankScratchWraps(t *testing.T) {
	var r rankScratch
	r.begin(8)
	r.stamp[3] = r.cur // a mark of query 1
	r.cur = math.MaxUint32
	r.begin(8)
	for s, v := range r.stamp {
		if v == r.cur {
			t.Fatalf("slot %d marked for the new query after the stamp wrapped (cur %d)", s, r.cur)
		}
	}
	r.begin(100) // a grown cache: the arrays cover every slot
	if len(r.stamp) < 100 || len(r.at) < 100 {
		t.Fatalf("scratch of %d/%d slots for 100", len(r.stamp), len(r.at))
	}
}

// cacheReads counts the tables' reads of k's cache syncs (onRead).
type cacheReads struct {
	mu     sync.Mutex
	ids    []string // read again by id
	ranges int      // stats row and keys above seenK
}

func watchReads(k *sqlKeywords) *cacheReads {
	r := &cacheReads{}
	k.cache.onRead = func(what string, ids []string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if what == "ids" {
			r.ids = append(r.ids, ids...)
		} else {
			r.ranges++
		}
	}
	return r
}

func (r *cacheReads) take() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids, n := r.ids, r.ranges
	r.ids, r.ranges = nil, 0
	return ids, n
}

// TestKeywordsCacheAppliesOwnWrites: what this process's writes commit
// (new memories, updates in place and moved, deletes, an id deleted and
// written again) reaches its postings cache as written, without the sync
// reading it back from the tables (on SQLite not even the stats row), and
// the cache still ranks exactly as SQL. A write the cache cannot account
// for (a raw statement, then noted) is still read again.
func TestKeywordsCacheAppliesOwnWrites(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string, k *sqlKeywords) {
		ctx := context.Background()
		h, docs, queries := loadedCache(t, k, 1500, 11, 1000)
		reads := watchReads(k)

		more, _ := cacheCorpus(h, 1500, 12)
		var writes [][]KeywordDoc
		for lo := 1000; lo < 1500; lo += 50 {
			writes = append(writes, docs[lo:lo+50]) // new memories, one batch at a time
		}
		for i := 0; i < 1000; i += 23 {
			d := more[i] // new terms, permission, expiry, sharing
			d.ID, d.Meta.OwnerID, d.Meta.CreatedAt = docs[i].ID, docs[i].Meta.OwnerID, docs[i].Meta.CreatedAt
			writes = append(writes, []KeywordDoc{d})
		}
		for i := 2; i < 1000; i += 97 {
			d := docs[i] // same terms and length (no stats change), another permission
			d.Meta.Permission, d.Meta.SharedUsers, d.Meta.SharedGroups = "public", nil, nil
			writes = append(writes, []KeywordDoc{d})
			m := more[i+1] // moved in its owner's timeline: a new key
			m.ID = docs[i+1].ID
			writes = append(writes, []KeywordDoc{m})
		}
		for _, w := range writes {
			if err := k.IndexDocs(ctx, w...); err != nil {
				t.Fatal(err)
			}
		}
		var del []string
		for i := 4; i < 1500; i += 31 {
			del = append(del, docs[i].ID)
		}
		if err := k.DeleteDocs(ctx, del...); err != nil {
			t.Fatal(err)
		}
		if err := k.DeleteDocs(ctx, docs[7].ID); err != nil {
			t.Fatal(err)
		}
		indexAll(t, k, []KeywordDoc{docs[7]})
		compareCacheSQL(t, k, h, queries, 13, 80)
		if k.cache.n != 1500-len(del) {
			t.Fatalf("cache holds %d memories, want %d", k.cache.n, 1500-len(del))
		}
		ids, ranges := reads.take()
		if len(ids) > 0 {
			t.Fatalf("the cache read back %d memories its own writes had just committed (%v …)", len(ids), ids[:min(5, len(ids))])
		}
		if engine == "sqlite" && ranges > 0 {
			t.Fatalf("the cache read the stats row %d times after its own writes, which told it", ranges)
		}

		// a change the cache cannot see (a raw statement on another
		// connection), then noted: read again
		pub := docs[9].ID
		if _, err := k.db.Exec(k.sql(`UPDATE {docs} SET permission = 'nobody-else' WHERE id = $1`), pub); err != nil {
			t.Fatal(err)
		}
		k.noteWrite(pub)
		q := termsQuery(docs[9], Filter{Any: []Clause{{Permission: "nobody-else"}}, IncludeExpired: true}, 5)
		if got := cachedSearch(t, k, q); len(got) != 1 || got[0].ID != pub {
			t.Fatalf("a noted raw change was not read again: %v", got)
		}
		if ids, _ := reads.take(); !slices.Equal(ids, []string{pub}) {
			t.Fatalf("read again %v, want [%s]", ids, pub)
		}
		compareCacheSQL(t, k, h, queries, 14, 30)
	})
}

// TestKeywordsCacheSeesSecondWriter: a second index on the same SQLite
// file (another connection, as another process would be) writes memories
// this process's cache was not told of; at this process's next write the
// counts it reads back disagree with the cache, which reloads: the other
// writer's memories are found and the ranking is SQL's.
func TestKeywordsCacheSeesSecondWriter(t *testing.T) {
	k, path := openSQLiteKW(t)
	k2, err := openSQLiteKeywords(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k2.Close() })
	ctx := context.Background()
	h, docs, queries := loadedCache(t, k, 900, 15, 600)
	indexAll(t, k2, docs[600:899])
	if err := k2.DeleteDocs(ctx, docs[1].ID, docs[2].ID); err != nil {
		t.Fatal(err)
	}
	indexAll(t, k, docs[899:]) // this process's own write
	compareCacheSQL(t, k, h, queries, 16, 60)
	if k.cache.n != 898 {
		t.Fatalf("cache holds %d memories, want 898", k.cache.n)
	}
	q := termsQuery(docs[700], Filter{Any: []Clause{{}}, IncludeExpired: true}, 20)
	if got := cachedSearch(t, k, q); !slices.ContainsFunc(got, func(x KeywordHit) bool { return x.ID == docs[700].ID }) {
		t.Fatalf("the second writer's memory is not found: %v", got)
	}
}

// TestKeywordsCacheTimelineTies: memories created at the same time take
// their places in the owner's timeline by id, however many share the
// time, and each is found at its place (as the context lenders look it up).
func TestKeywordsCacheTimelineTies(t *testing.T) {
	h := testHasher(t)
	c := newPostingsCache(false)
	r := mrand.New(mrand.NewPCG(3, 4))
	var ids []string
	for i, n := range r.Perm(60) {
		created := kwBase
		if n >= 50 {
			created = kwBase.Add(time.Duration(n) * time.Second) // after the 50 ties
		}
		d := doc(h, fmt.Sprintf("mem-%03d", n), "a tie", Meta{OwnerID: "u", Permission: "private", CreatedAt: created})
		row := committedRow(&d, int64(i+1))
		c.put(&row)
		ids = append(ids, d.ID)
	}
	slices.Sort(ids)
	tl := c.timeline[c.owners["u"]]
	for i, e := range tl {
		if got := c.docs[e.slot].id; got != ids[i] {
			t.Fatalf("place %d holds %s, want %s", i, got, ids[i])
		}
		if p := c.timelinePos(e.slot); p != i {
			t.Fatalf("%s found at %d, it is at %d", ids[i], p, i)
		}
	}
}
