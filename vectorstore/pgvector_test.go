package vectorstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/picard-mcp/picard/internal/testpg"
)

// testSchema names a fresh schema that is dropped (through dsn) when the
// test ends.
func testSchema(t *testing.T, dsn string) string {
	t.Helper()
	return testpg.Schema(t, dsn)
}

// openTestPG returns a store in a fresh schema that is dropped when the
// test ends.
func openTestPG(t *testing.T, dsn string) *PGStore {
	t.Helper()
	return openTestPGSchema(t, dsn, testSchema(t, dsn))
}

func openTestPGSchema(t *testing.T, dsn, schema string) *PGStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := OpenPG(ctx, PGConfig{DSN: dsn, Schema: schema})
	if err != nil {
		t.Fatalf("open pgvector store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPGConformance(t *testing.T) {
	dsn := testpg.DSN(t)
	testStore(t, func(t *testing.T) Store { return openTestPG(t, dsn) })
}

func TestPGSchemaLayout(t *testing.T) {
	dsn := testpg.DSN(t)
	s := openTestPG(t, dsn)
	sp := Space{Embedder: "openai", Model: "text-embedding-3-small", Dims: 8}
	mustUpsert(t, s, sp, Item{ID: "m", Meta: Meta{OwnerID: "u"}, Vector: []float32{1, 2, 3, 4, 5, 6, 7, 8}})
	name := spaceTableName(sp)
	if !strings.HasPrefix(name, "vec_openai_text_embedding_3_small_8_") || len(name) > 63 {
		t.Fatalf("table name %q is not readable or too long", name)
	}
	var indexes []string
	rows, err := s.pool.Query(ctxBG, "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2", s.schema, name)
	if err != nil {
		t.Fatal(err)
	}
	indexes, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(indexes, "\n")
	for _, want := range []string{"USING hnsw (embedding vector_cosine_ops)", "(owner_id)", "USING gin (shared_users)", "USING gin (shared_groups)"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no index %q among:\n%s", want, joined)
		}
	}
	// the registry survives a new store on the same schema
	s2, err := OpenPG(ctxBG, PGConfig{DSN: dsn, Schema: s.schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if n := mustCount(t, s2, sp); n != 1 {
		t.Fatalf("a second store sees count %d, want 1", n)
	}
	if err := s2.Delete(ctxBG, "m"); err != nil {
		t.Fatal(err)
	}
	if n := mustCount(t, s, sp); n != 0 {
		t.Fatalf("delete through a second store: count %d, want 0", n)
	}
}

func TestPGWideSpaceUsesHalfvecIndex(t *testing.T) {
	s := openTestPG(t, testpg.DSN(t))
	sp := Space{Embedder: "openai", Model: "text-embedding-3-large", Dims: 3072}
	a, b := make([]float32, 3072), make([]float32, 3072)
	a[0], b[1] = 1, 1
	mustUpsert(t, s, sp, Item{ID: "a", Meta: Meta{OwnerID: "u"}, Vector: a}, Item{ID: "b", Meta: Meta{OwnerID: "u"}, Vector: b})
	hits := mustSearch(t, s, Query{Space: sp, Vector: a, Filter: openAll, Limit: 2})
	if len(hits) != 2 || hits[0].ID != "a" || hits[0].Score < 0.999 {
		t.Fatalf("3072-dim search = %v, want a first with score 1", hits)
	}
}

func TestPGLargeSelectiveFilter(t *testing.T) {
	// With 10,000 rows and a filter passing 10 of them, PostgreSQL walks the
	// HNSW index; capping the iterative scan (hnsw.max_scan_tuples) makes it
	// give up early, and the exact fallback must still find every row.
	s := openTestPG(t, testpg.DSN(t))
	s.exactMaxRows = -1 // always the index, as in a space above pgExactMaxRows
	s.maxScanTuples = 200
	sp := Space{Embedder: "test", Model: "big", Dims: 16}
	r := mrand.New(mrand.NewPCG(21, 22))
	var items []Item
	for i := range 10000 {
		m := Meta{OwnerID: "crowd", Permission: "public"}
		if i%1000 == 0 {
			m = Meta{OwnerID: "rare", Permission: "private"}
		}
		items = append(items, Item{ID: fmt.Sprintf("m%05d", i), Meta: m, Vector: randVec(r, 16)})
	}
	mustUpsert(t, s, sp, items...)
	for _, limit := range []int{5, 10, 20} {
		q := Query{Space: sp, Vector: randVec(r, 16), Filter: Filter{Any: []Clause{{Permission: "private"}}}, Limit: limit}
		hits := mustSearch(t, s, q)
		if want := reference(items, q); !slices.Equal(hitIDs(hits), hitIDs(want)) {
			t.Fatalf("limit %d: got %v, want %v", limit, hitIDs(hits), hitIDs(want))
		}
	}
	if s.exactFallbacks.Load() == 0 {
		t.Fatal("the capped index scan never came up short: the exact fallback was not exercised")
	}
}

// TestPGUnreachable needs no database: nothing listens on port 1. The store
// opens (so the memory service can start) and every call reports
// ErrUnavailable.
func TestPGUnreachable(t *testing.T) {
	ctx := context.Background()
	s, err := OpenPG(ctx, PGConfig{DSN: "postgres://postgres@127.0.0.1:1/picard?sslmode=disable&connect_timeout=2"})
	if err != nil {
		t.Fatalf("open with the database down: %v", err)
	}
	defer s.Close()
	v := []float32{1, 0, 0, 0}
	calls := map[string]func() error{
		"ping":   func() error { return s.Ping(ctx) },
		"upsert": func() error { return s.Upsert(ctx, space4, Item{ID: "m", Vector: v}) },
		"search": func() error {
			_, err := s.Search(ctx, Query{Space: space4, Vector: v, Filter: openAll, Limit: 1})
			return err
		},
		"count":    func() error { _, err := s.Count(ctx, space4); return err },
		"delete":   func() error { return s.Delete(ctx, "m") },
		"set meta": func() error { return s.SetMeta(ctx, "m", Meta{}) },
		"reset":    func() error { return s.Reset(ctx) },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrUnavailable", name, err)
		}
	}
	if _, err := OpenPG(ctx, PGConfig{DSN: "postgres://%zz"}); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("malformed DSN: err = %v, want a configuration error", err)
	}
}

// TestPGRecovers starts the store while the database is unreachable, then
// makes it reachable through a local TCP proxy: the same store must work
// without being reopened.
func TestPGRecovers(t *testing.T) {
	dsn := testpg.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("DSN is not a URL: %v", err)
	}
	target := u.Host
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr := l.Addr().String()
	l.Close() // down for now
	schema := testSchema(t, dsn)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		if l != nil {
			l.Close()
		}
		wg.Wait()
	})
	u.Host = proxyAddr
	s := openTestPGSchema(t, u.String(), schema) // closed before the proxy stops

	if err := s.Ping(ctxBG); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ping while down: %v, want ErrUnavailable", err)
	}
	l, err = net.Listen("tcp", proxyAddr)
	if err != nil {
		l = nil
		t.Skipf("cannot listen on %s again: %v", proxyAddr, err)
	}
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { proxy(c, target) })
		}
	})
	if err := s.Ping(ctxBG); err != nil {
		t.Fatalf("ping after the database came back: %v", err)
	}
	mustUpsert(t, s, space4, Item{ID: "m", Meta: Meta{OwnerID: "u"}, Vector: []float32{1, 0, 0, 0}})
	if hits := mustSearch(t, s, Query{Space: space4, Vector: []float32{1, 0, 0, 0}, Filter: openAll, Limit: 1}); len(hits) != 1 {
		t.Fatalf("search after recovery = %v", hits)
	}
}

func proxy(c net.Conn, target string) {
	defer c.Close()
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
}

func TestFilterSQLIsParameterised(t *testing.T) {
	evil := "x'); DROP TABLE users; --"
	f := Filter{OwnerID: evil, Any: []Clause{{Permission: evil, SharedWithUser: evil, SharedWithGroups: []string{evil}}}}
	var args sqlArgs
	where := filterSQL(f, &args)
	if strings.Contains(where, "DROP") || strings.Contains(where, "'") {
		t.Fatalf("values leaked into SQL: %s", where)
	}
	if len(args) != 5 {
		t.Fatalf("%d parameters, want 5 (owner, now, permission, user, groups): %s", len(args), where)
	}
}

// TestPGFilteredRecall: random high-dimensional vectors (no neighbourhood
// structure, the hard case for the HNSW graph) under viewer filters: one
// owner's 50 memories among 1,500, alone or with everything public. A
// space this small is searched exactly; through the HNSW index (ef_search
// 64, iterative scan), as every space was before, the viewer filter found
// 190 of the 200 true hits (0.30 of them at 10,000 1,536-dim vectors).
func TestPGFilteredRecall(t *testing.T) {
	s := openTestPG(t, testpg.DSN(t))
	const dims = 256
	sp := Space{Embedder: "test", Model: "random", Dims: dims}
	r := mrand.New(mrand.NewPCG(31, 32))
	var items []Item
	for i := range 1500 {
		m := Meta{OwnerID: fmt.Sprintf("crowd-%d", i%20), Permission: "private"}
		if i%3 == 0 {
			m.Permission = "public"
		}
		if i%30 == 7 {
			m.OwnerID = "owner"
		}
		items = append(items, Item{ID: fmt.Sprintf("m%05d", i), Meta: m, Vector: randVec(r, dims)})
	}
	mustUpsert(t, s, sp, items...)
	filters := map[string]Filter{
		"owner":  {Any: []Clause{{OwnerID: "owner"}}, IncludeExpired: true},
		"viewer": {Any: []Clause{{OwnerID: "owner"}, {Permission: "public"}}, IncludeExpired: true},
	}
	for name, f := range filters {
		found, total := 0, 0
		for range 20 {
			q := Query{Space: sp, Vector: randVec(r, dims), Filter: f, Limit: 10}
			want := hitIDs(reference(items, q))
			got := hitIDs(mustSearch(t, s, q))
			for _, id := range want {
				if slices.Contains(got, id) {
					found++
				}
			}
			total += len(want)
		}
		t.Logf("%s: recall %d/%d", name, found, total)
		if found != total {
			t.Errorf("%s: recall %d/%d", name, found, total)
		}
	}
}
