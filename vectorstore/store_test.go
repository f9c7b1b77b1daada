package vectorstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"
)

// testStore is the conformance suite every Store backend must pass. open
// returns a fresh, empty store that is closed when the test ends.
func testStore(t *testing.T, open func(t *testing.T) Store) {
	t.Run("Ranking", func(t *testing.T) { testRanking(t, open(t)) })
	t.Run("FilterSemantics", func(t *testing.T) { testFilterSemantics(t, open(t)) })
	t.Run("SelectiveFilterFillsLimit", func(t *testing.T) { testSelectiveFilter(t, open(t)) })
	t.Run("SetMetaChangesFiltering", func(t *testing.T) { testSetMeta(t, open(t)) })
	t.Run("UpsertReplaces", func(t *testing.T) { testUpsertReplaces(t, open(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("SpacesNeverMix", func(t *testing.T) { testSpaces(t, open(t)) })
	t.Run("CountAndReset", func(t *testing.T) { testCountReset(t, open(t)) })
	t.Run("RandomFiltersMatchReference", func(t *testing.T) { testRandomAgainstReference(t, open(t)) })
}

var (
	ctxBG   = context.Background()
	space4  = Space{Embedder: "test", Model: "four", Dims: 4}
	t0      = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	openAll = Filter{Any: []Clause{{}}, IncludeExpired: true}
)

func mustUpsert(t *testing.T, s Store, sp Space, items ...Item) {
	t.Helper()
	if err := s.Upsert(ctxBG, sp, items...); err != nil {
		t.Fatalf("upsert: %v", err)
	}
}

func mustSearch(t *testing.T, s Store, q Query) []Hit {
	t.Helper()
	hits, err := s.Search(ctxBG, q)
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	return hits
}

func mustCount(t *testing.T, s Store, sp Space) int {
	t.Helper()
	n, err := s.Count(ctxBG, sp)
	if err != nil {
		t.Fatalf("count %s: %v", sp, err)
	}
	return n
}

func hitIDs(hits []Hit) []string {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	return ids
}

func sortedIDs(hits []Hit) []string {
	ids := hitIDs(hits)
	sort.Strings(ids)
	return ids
}

func randVec(r *rand.Rand, dims int) []float32 {
	v := make([]float32, dims)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// cosine is the float64 reference similarity.
func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}

// reference is a brute-force search with Filter.Matches.
func reference(items []Item, q Query) []Hit {
	var hits []Hit
	for _, it := range items {
		if q.Filter.Matches(it.Meta) {
			hits = append(hits, Hit{ID: it.ID, Score: cosine(it.Vector, q.Vector)})
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].ID < hits[j].ID
	})
	if len(hits) > q.Limit {
		hits = hits[:q.Limit]
	}
	return hits
}

func checkSortedDesc(t *testing.T, hits []Hit) {
	t.Helper()
	for i := 1; i < len(hits); i++ {
		if hits[i].Score > hits[i-1].Score {
			t.Fatalf("hits not best-first at %d: %v", i, hits)
		}
	}
}

func testRanking(t *testing.T, s Store) {
	mustUpsert(t, s, space4,
		Item{ID: "same", Meta: Meta{OwnerID: "u"}, Vector: []float32{2, 0, 0, 0}}, // normalised to [1,0,0,0]
		Item{ID: "near", Meta: Meta{OwnerID: "u"}, Vector: []float32{0.9, 0.1, 0, 0}},
		Item{ID: "orthogonal", Meta: Meta{OwnerID: "u"}, Vector: []float32{0, 1, 0, 0}},
		Item{ID: "opposite", Meta: Meta{OwnerID: "u"}, Vector: []float32{-1, 0, 0, 0}},
	)
	hits := mustSearch(t, s, Query{Space: space4, Vector: []float32{1, 0, 0, 0}, Filter: openAll, Limit: 3})
	if got, want := hitIDs(hits), []string{"same", "near", "orthogonal"}; !slices.Equal(got, want) {
		t.Fatalf("ranking = %v, want %v", got, want)
	}
	wantScores := []float64{1, 0.9 / math.Sqrt(0.82), 0}
	for i, h := range hits {
		if math.Abs(h.Score-wantScores[i]) > 1e-5 {
			t.Errorf("%s score = %v, want cosine %v", h.ID, h.Score, wantScores[i])
		}
	}
	all := mustSearch(t, s, Query{Space: space4, Vector: []float32{1, 0, 0, 0}, Filter: openAll, Limit: 10})
	if len(all) != 4 || all[3].ID != "opposite" || math.Abs(all[3].Score+1) > 1e-5 {
		t.Fatalf("limit above size = %v, want all 4 with opposite last at -1", all)
	}
	if hits := mustSearch(t, s, Query{Space: space4, Vector: []float32{1, 0, 0, 0}, Filter: openAll, Limit: 0}); len(hits) != 0 {
		t.Fatalf("limit 0 returned %v", hits)
	}
	if _, err := s.Search(ctxBG, Query{Space: space4, Vector: []float32{1, 0, 0}, Filter: openAll, Limit: 1}); !errors.Is(err, ErrSpaceMismatch) {
		t.Fatalf("search with 3 dims in a 4-dim space: err = %v, want ErrSpaceMismatch", err)
	}
	if err := s.Upsert(ctxBG, space4, Item{ID: "short", Vector: []float32{1, 2}}); !errors.Is(err, ErrSpaceMismatch) {
		t.Fatalf("upsert with 2 dims in a 4-dim space: err = %v, want ErrSpaceMismatch", err)
	}
	if err := s.Upsert(ctxBG, space4, Item{ID: "zero", Vector: make([]float32, 4)}); err == nil {
		t.Fatal("upsert of a zero vector succeeded")
	}
	if n := mustCount(t, s, space4); n != 4 {
		t.Fatalf("count after rejected upserts = %d, want 4", n)
	}
}

// filterFixture is a small world of memories with every kind of access.
func filterFixture() []Item {
	r := rand.New(rand.NewPCG(1, 2))
	items := []Item{
		{ID: "alice-private", Meta: Meta{OwnerID: "alice", Permission: "private"}},
		{ID: "alice-public", Meta: Meta{OwnerID: "alice", Permission: "public"}},
		{ID: "bob-private", Meta: Meta{OwnerID: "bob", Permission: "private"}},
		{ID: "bob-shared-carol", Meta: Meta{OwnerID: "bob", Permission: "shared", SharedUsers: []string{"carol", "erin"}}},
		{ID: "bob-shared-team", Meta: Meta{OwnerID: "bob", Permission: "shared", SharedGroups: []string{"team"}}},
		{ID: "alice-expired", Meta: Meta{OwnerID: "alice", Permission: "public", ExpiresAt: t0.Add(-time.Hour)}},
		{ID: "alice-expiring", Meta: Meta{OwnerID: "alice", Permission: "public", ExpiresAt: t0.Add(time.Hour)}},
		{ID: "alice-expires-now", Meta: Meta{OwnerID: "alice", Permission: "public", ExpiresAt: t0}},
	}
	for i := range items {
		items[i].Meta.CreatedAt = t0.Add(-24 * time.Hour)
		items[i].Vector = randVec(r, 4)
	}
	return items
}

func testFilterSemantics(t *testing.T, s Store) {
	items := filterFixture()
	mustUpsert(t, s, space4, items...)
	accessibleToCarol := []Clause{
		{OwnerID: "carol"},
		{Permission: "public"},
		{Permission: "shared", SharedWithUser: "carol", SharedWithGroups: []string{"friends"}},
	}
	tests := []struct {
		name   string
		filter Filter
		want   []string
	}{
		{"owner sees own unexpired", Filter{Any: []Clause{{OwnerID: "alice"}}, Now: t0},
			[]string{"alice-expiring", "alice-private", "alice-public"}},
		{"public", Filter{Any: []Clause{{Permission: "public"}}, Now: t0},
			[]string{"alice-expiring", "alice-public"}},
		{"shared with user", Filter{Any: []Clause{{Permission: "shared", SharedWithUser: "carol"}}, Now: t0},
			[]string{"bob-shared-carol"}},
		{"shared with one of the groups", Filter{Any: []Clause{{Permission: "shared", SharedWithGroups: []string{"other", "team"}}}, Now: t0},
			[]string{"bob-shared-team"}},
		{"user or group sharing suffices", Filter{Any: []Clause{{Permission: "shared", SharedWithUser: "carol", SharedWithGroups: []string{"team"}}}, Now: t0},
			[]string{"bob-shared-carol", "bob-shared-team"}},
		{"accessible to a viewer", Filter{Any: accessibleToCarol, Now: t0},
			[]string{"alice-expiring", "alice-public", "bob-shared-carol"}},
		{"include expired", Filter{Any: []Clause{{Permission: "public"}}, Now: t0, IncludeExpired: true},
			[]string{"alice-expired", "alice-expires-now", "alice-expiring", "alice-public"}},
		{"later now expires more", Filter{Any: []Clause{{Permission: "public"}}, Now: t0.Add(2 * time.Hour)},
			[]string{"alice-public"}},
		{"zero now expires nothing", Filter{Any: []Clause{{Permission: "public"}}},
			[]string{"alice-expired", "alice-expires-now", "alice-expiring", "alice-public"}},
		{"owner restriction narrows the clauses", Filter{Any: accessibleToCarol, OwnerID: "bob", Now: t0},
			[]string{"bob-shared-carol"}},
		{"owner restriction with no clause matches nothing", Filter{OwnerID: "alice", Now: t0, IncludeExpired: true}, nil},
		{"empty any matches nothing", Filter{Now: t0, IncludeExpired: true}, nil},
		{"unconstrained clause matches all", Filter{Any: []Clause{{Permission: "nope"}, {}}, Now: t0},
			[]string{"alice-expiring", "alice-private", "alice-public", "bob-private", "bob-shared-carol", "bob-shared-team"}},
		{"permission and owner together", Filter{Any: []Clause{{Permission: "private", OwnerID: "bob"}}, Now: t0},
			[]string{"bob-private"}},
		{"sharing needs the right permission", Filter{Any: []Clause{{Permission: "public", SharedWithUser: "carol"}}, Now: t0}, nil},
		{"sharing without permission", Filter{Any: []Clause{{SharedWithUser: "erin"}}, Now: t0},
			[]string{"bob-shared-carol"}},
		{"stranger sees nothing shared", Filter{Any: []Clause{{Permission: "shared", SharedWithUser: "dave", SharedWithGroups: []string{"x"}}}, Now: t0}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := Query{Space: space4, Vector: []float32{1, 1, 1, 1}, Filter: tc.filter, Limit: 100}
			if ref := sortedIDs(reference(items, q)); !slices.Equal(ref, tc.want) {
				t.Fatalf("test table disagrees with Filter.Matches: want %v, reference %v", tc.want, ref)
			}
			got := sortedIDs(mustSearch(t, s, q))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func testSelectiveFilter(t *testing.T, s Store) {
	sp := Space{Embedder: "test", Model: "selective", Dims: 32}
	r := rand.New(rand.NewPCG(3, 4))
	var items []Item
	for i := range 2000 {
		m := Meta{OwnerID: fmt.Sprintf("hay-%d", i%50), Permission: "private"}
		if i%67 == 0 && i/67 < 30 {
			m = Meta{OwnerID: "needle", Permission: "shared", SharedGroups: []string{"g-needle"}}
		}
		items = append(items, Item{ID: fmt.Sprintf("m%04d", i), Meta: m, Vector: randVec(r, 32)})
	}
	mustUpsert(t, s, sp, items...)
	byID := make(map[string]Item, len(items))
	for _, it := range items {
		byID[it.ID] = it
	}
	tests := []struct {
		name   string
		filter Filter
		limit  int
		want   int
	}{
		{"owner", Filter{Any: []Clause{{OwnerID: "needle"}}}, 10, 10},
		{"group", Filter{Any: []Clause{{Permission: "shared", SharedWithGroups: []string{"g-needle"}}}}, 10, 10},
		{"owner restriction", Filter{OwnerID: "needle", Any: []Clause{{}}}, 25, 25},
		{"fewer match than limit", Filter{Any: []Clause{{OwnerID: "needle"}}}, 50, 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for trial := range 5 {
				q := Query{Space: sp, Vector: randVec(r, 32), Filter: tc.filter, Limit: tc.limit}
				hits := mustSearch(t, s, q)
				if len(hits) != tc.want {
					t.Fatalf("trial %d: %d hits, want %d", trial, len(hits), tc.want)
				}
				checkSortedDesc(t, hits)
				for _, h := range hits {
					if !tc.filter.Matches(byID[h.ID].Meta) {
						t.Fatalf("hit %s does not pass the filter", h.ID)
					}
				}
			}
		})
	}
}

func testSetMeta(t *testing.T, s Store) {
	v := []float32{1, 2, 3, 4}
	mustUpsert(t, s, space4, Item{ID: "m", Meta: Meta{OwnerID: "alice", Permission: "private"}, Vector: v})
	bobView := Filter{Any: []Clause{{OwnerID: "bob"}, {Permission: "public"}, {Permission: "shared", SharedWithUser: "bob"}}, Now: t0}
	q := Query{Space: space4, Vector: v, Filter: bobView, Limit: 5}
	if hits := mustSearch(t, s, q); len(hits) != 0 {
		t.Fatalf("bob sees alice's private memory: %v", hits)
	}
	steps := []struct {
		name    string
		meta    Meta
		visible bool
	}{
		{"made public", Meta{OwnerID: "alice", Permission: "public"}, true},
		{"shared with bob", Meta{OwnerID: "alice", Permission: "shared", SharedUsers: []string{"bob"}}, true},
		{"shared with someone else", Meta{OwnerID: "alice", Permission: "shared", SharedUsers: []string{"carol"}}, false},
		{"public but expired", Meta{OwnerID: "alice", Permission: "public", ExpiresAt: t0.Add(-time.Minute)}, false},
		{"public, expiry extended", Meta{OwnerID: "alice", Permission: "public", ExpiresAt: t0.Add(time.Minute)}, true},
		{"given to bob", Meta{OwnerID: "bob", Permission: "private"}, true},
		{"private again", Meta{OwnerID: "alice", Permission: "private"}, false},
	}
	for _, st := range steps {
		if err := s.SetMeta(ctxBG, "m", st.meta); err != nil {
			t.Fatalf("%s: set meta: %v", st.name, err)
		}
		hits := mustSearch(t, s, q)
		if st.visible != (len(hits) == 1) {
			t.Fatalf("%s: bob's hits = %v, visible want %v", st.name, hits, st.visible)
		}
		if st.visible && math.Abs(hits[0].Score-1) > 1e-5 {
			t.Fatalf("%s: score %v, want 1 (vector must be kept)", st.name, hits[0].Score)
		}
	}
	if err := s.SetMeta(ctxBG, "unknown", Meta{OwnerID: "bob", Permission: "public"}); err != nil {
		t.Fatalf("set meta of unknown id: %v", err)
	}
	if n := mustCount(t, s, space4); n != 1 {
		t.Fatalf("count = %d after set meta of an unknown id, want 1", n)
	}
}

func testUpsertReplaces(t *testing.T, s Store) {
	mustUpsert(t, s, space4, Item{ID: "m", Meta: Meta{OwnerID: "alice", Permission: "private"}, Vector: []float32{1, 0, 0, 0}})
	mustUpsert(t, s, space4, Item{ID: "m", Meta: Meta{OwnerID: "bob", Permission: "private"}, Vector: []float32{0, 1, 0, 0}})
	if n := mustCount(t, s, space4); n != 1 {
		t.Fatalf("count = %d after upserting the same id twice, want 1", n)
	}
	q := Query{Space: space4, Vector: []float32{0, 1, 0, 0}, Filter: Filter{Any: []Clause{{OwnerID: "alice"}}}, Limit: 5}
	if hits := mustSearch(t, s, q); len(hits) != 0 {
		t.Fatalf("old metadata still matches: %v", hits)
	}
	q.Filter = Filter{Any: []Clause{{OwnerID: "bob"}}}
	hits := mustSearch(t, s, q)
	if len(hits) != 1 || math.Abs(hits[0].Score-1) > 1e-5 {
		t.Fatalf("hits = %v, want m with the new vector (score 1)", hits)
	}
}

func testDelete(t *testing.T, s Store) {
	for _, id := range []string{"a", "b", "c"} {
		mustUpsert(t, s, space4, Item{ID: id, Meta: Meta{OwnerID: "u"}, Vector: []float32{1, 1, 0, 0}})
	}
	if err := s.Delete(ctxBG, "b", "never-stored"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := s.Delete(ctxBG); err != nil {
		t.Fatalf("delete of nothing: %v", err)
	}
	if n := mustCount(t, s, space4); n != 2 {
		t.Fatalf("count after delete = %d, want 2", n)
	}
	hits := mustSearch(t, s, Query{Space: space4, Vector: []float32{1, 1, 0, 0}, Filter: openAll, Limit: 10})
	if got := sortedIDs(hits); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("after delete search = %v, want [a c]", got)
	}
	// a deleted id can come back
	mustUpsert(t, s, space4, Item{ID: "b", Meta: Meta{OwnerID: "u"}, Vector: []float32{1, 1, 0, 0}})
	if n := mustCount(t, s, space4); n != 3 {
		t.Fatalf("count after re-adding = %d, want 3", n)
	}
}

func testSpaces(t *testing.T, s Store) {
	a := Space{Embedder: "test", Model: "a", Dims: 4}
	b := Space{Embedder: "test", Model: "b", Dims: 4}
	wide := Space{Embedder: "test", Model: "a", Dims: 6}
	mustUpsert(t, s, a, Item{ID: "m1", Meta: Meta{OwnerID: "u"}, Vector: []float32{1, 0, 0, 0}})
	mustUpsert(t, s, b,
		Item{ID: "m1", Meta: Meta{OwnerID: "u"}, Vector: []float32{0, 1, 0, 0}},
		Item{ID: "only-b", Meta: Meta{OwnerID: "u"}, Vector: []float32{1, 0, 0, 0}})
	mustUpsert(t, s, wide, Item{ID: "only-wide", Meta: Meta{OwnerID: "u"}, Vector: []float32{1, 0, 0, 0, 0, 0}})

	hits := mustSearch(t, s, Query{Space: a, Vector: []float32{1, 0, 0, 0}, Filter: openAll, Limit: 10})
	if len(hits) != 1 || hits[0].ID != "m1" || math.Abs(hits[0].Score-1) > 1e-5 {
		t.Fatalf("space a search = %v, want only a's m1 with score 1", hits)
	}
	hits = mustSearch(t, s, Query{Space: b, Vector: []float32{1, 0, 0, 0}, Filter: openAll, Limit: 10})
	if got := hitIDs(hits); !slices.Equal(got, []string{"only-b", "m1"}) || math.Abs(hits[1].Score) > 1e-5 {
		t.Fatalf("space b search = %v, want only-b then b's m1 (score 0)", hits)
	}
	unknown := Space{Embedder: "test", Model: "never", Dims: 4}
	if hits := mustSearch(t, s, Query{Space: unknown, Vector: []float32{1, 0, 0, 0}, Filter: openAll, Limit: 10}); len(hits) != 0 {
		t.Fatalf("unknown space search = %v", hits)
	}
	for _, c := range []struct {
		sp   Space
		want int
	}{{a, 1}, {b, 2}, {wide, 1}, {unknown, 0}} {
		if n := mustCount(t, s, c.sp); n != c.want {
			t.Errorf("count %s = %d, want %d", c.sp, n, c.want)
		}
	}
	// Delete and SetMeta reach every space.
	if err := s.SetMeta(ctxBG, "m1", Meta{OwnerID: "v"}); err != nil {
		t.Fatal(err)
	}
	for _, sp := range []Space{a, b} {
		hits := mustSearch(t, s, Query{Space: sp, Vector: []float32{1, 0, 0, 0}, Filter: Filter{Any: []Clause{{OwnerID: "v"}}}, Limit: 10})
		if got := hitIDs(hits); !slices.Equal(got, []string{"m1"}) {
			t.Errorf("after set meta, owner v in %s = %v, want [m1]", sp, got)
		}
	}
	if err := s.Delete(ctxBG, "m1"); err != nil {
		t.Fatal(err)
	}
	if na, nb := mustCount(t, s, a), mustCount(t, s, b); na != 0 || nb != 1 {
		t.Fatalf("after delete counts a=%d b=%d, want 0 and 1", na, nb)
	}
}

func testCountReset(t *testing.T, s Store) {
	a := Space{Embedder: "test", Model: "a", Dims: 4}
	b := Space{Embedder: "test", Model: "b", Dims: 8}
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 25 {
		mustUpsert(t, s, a, Item{ID: fmt.Sprint("a", i), Meta: Meta{OwnerID: "u"}, Vector: randVec(r, 4)})
	}
	mustUpsert(t, s, b, Item{ID: "b", Meta: Meta{OwnerID: "u"}, Vector: randVec(r, 8)})
	if na, nb := mustCount(t, s, a), mustCount(t, s, b); na != 25 || nb != 1 {
		t.Fatalf("counts a=%d b=%d, want 25 and 1", na, nb)
	}
	if err := s.Reset(ctxBG); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if na, nb := mustCount(t, s, a), mustCount(t, s, b); na != 0 || nb != 0 {
		t.Fatalf("after reset counts a=%d b=%d, want 0", na, nb)
	}
	if hits := mustSearch(t, s, Query{Space: a, Vector: randVec(r, 4), Filter: openAll, Limit: 10}); len(hits) != 0 {
		t.Fatalf("after reset search = %v", hits)
	}
	mustUpsert(t, s, a, Item{ID: "again", Meta: Meta{OwnerID: "u"}, Vector: randVec(r, 4)})
	if n := mustCount(t, s, a); n != 1 {
		t.Fatalf("count after reset and upsert = %d, want 1", n)
	}
	if err := s.Ping(ctxBG); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// randomWorld builds n items with random metadata over a few owners,
// permissions, users and groups.
func randomWorld(r *rand.Rand, n, dims int) []Item {
	users := []string{"u0", "u1", "u2", "u3", "u4"}
	groups := []string{"g0", "g1", "g2"}
	perms := []string{"private", "public", "shared", "stats"}
	pick := func(list []string, max int) []string {
		var out []string
		for range r.IntN(max + 1) {
			out = append(out, list[r.IntN(len(list))])
		}
		return out
	}
	items := make([]Item, n)
	for i := range items {
		m := Meta{
			OwnerID:      users[r.IntN(len(users))],
			Permission:   perms[r.IntN(len(perms))],
			SharedUsers:  pick(users, 2),
			SharedGroups: pick(groups, 2),
			CreatedAt:    t0.Add(-time.Duration(r.IntN(1000)) * time.Hour),
		}
		switch r.IntN(3) {
		case 1:
			m.ExpiresAt = t0.Add(-time.Duration(r.IntN(100)+1) * time.Minute)
		case 2:
			m.ExpiresAt = t0.Add(time.Duration(r.IntN(100)) * time.Minute)
		}
		items[i] = Item{ID: fmt.Sprintf("r%04d", i), Meta: m, Vector: randVec(r, dims)}
	}
	return items
}

func randomFilter(r *rand.Rand) Filter {
	users := []string{"u0", "u1", "u2", "u3", "u4", "nobody"}
	groups := []string{"g0", "g1", "g2", "g9"}
	perms := []string{"private", "public", "shared", "stats"}
	maybe := func(list []string) string {
		if r.IntN(2) == 0 {
			return ""
		}
		return list[r.IntN(len(list))]
	}
	f := Filter{Now: t0.Add(time.Duration(r.IntN(60)-30) * time.Minute), IncludeExpired: r.IntN(4) == 0}
	if r.IntN(4) == 0 {
		f.OwnerID = users[r.IntN(len(users))]
	}
	for range r.IntN(4) {
		c := Clause{Permission: maybe(perms), OwnerID: maybe(users), SharedWithUser: maybe(users)}
		for range r.IntN(3) {
			c.SharedWithGroups = append(c.SharedWithGroups, groups[r.IntN(len(groups))])
		}
		f.Any = append(f.Any, c)
	}
	return f
}

func testRandomAgainstReference(t *testing.T, s Store) {
	const dims = 16
	r := rand.New(rand.NewPCG(7, 8))
	items := randomWorld(r, 600, dims)
	mustUpsert(t, s, Space{Embedder: "test", Model: "random", Dims: dims}, items...)
	nonEmpty := 0
	for i := range 80 {
		q := Query{Space: Space{Embedder: "test", Model: "random", Dims: dims}, Vector: randVec(r, dims), Filter: randomFilter(r), Limit: 1000}
		want := reference(items, q)
		got := mustSearch(t, s, q)
		if !slices.Equal(sortedIDs(got), sortedIDs(want)) {
			t.Fatalf("query %d filter %+v: got %d ids, reference %d", i, q.Filter, len(got), len(want))
		}
		checkSortedDesc(t, got)
		ref := make(map[string]float64, len(want))
		for _, h := range want {
			ref[h.ID] = h.Score
		}
		for _, h := range got {
			if math.Abs(h.Score-ref[h.ID]) > 1e-5 {
				t.Fatalf("query %d: %s score %v, reference %v", i, h.ID, h.Score, ref[h.ID])
			}
		}
		if len(want) > 0 {
			nonEmpty++
		}
	}
	if nonEmpty < 20 {
		t.Fatalf("only %d of 80 random filters matched anything; the test is too weak", nonEmpty)
	}
}
