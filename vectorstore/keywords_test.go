package vectorstore

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/picard-mcp/picard/internal/testpg"
)

func TestTokens(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"Caroline's dogs were RUNNING!", []string{"carolin", "dog", "were", "run"}},
		{"Order ORD-2024-7781 shipped", []string{"order", "ord", "2024", "7781", "ord-2024-7781", "ship"}},
		{"hex a3f9c2e1d4, ok.", []string{"hex", "a3f9c2e1d4", "ok"}},
		{"ｆｕｌｌwidth Ｃａｆé", []string{"fullwidth", "café"}}, // NFKC folds full-width letters
		{"...", nil},
	}
	for _, c := range cases {
		if got := Tokens(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Tokens(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func testHasher(t testing.TB) *TermHasher {
	h, err := NewTermHasher([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func doc(h *TermHasher, id, text string, m Meta) KeywordDoc {
	terms, n := h.TermCounts(text)
	return KeywordDoc{ID: id, Meta: m, Terms: terms, Len: n}
}

var kwBase = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func ownerClause(o string) Filter {
	return Filter{Any: []Clause{{OwnerID: o}}, Now: kwBase.Add(time.Hour)}
}

func searchIDs(t *testing.T, h *Hybrid, text string, f Filter, limit int) []string {
	t.Helper()
	hits, err := h.Search(context.Background(), text, f, limit)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(hits))
	for i, x := range hits {
		ids[i] = x.ID
	}
	return ids
}

// synthetic builds n memories of 100 owners from a small vocabulary, so
// every common word occurs in thousands of them.
func synthetic(h *TermHasher, n int) []KeywordDoc {
	r := mrand.New(mrand.NewPCG(7, 11))
	vocab := strings.Fields("we went to the lake and saw a heron then cooked dinner with friends about music books garden work travel school weekend coffee train city")
	docs := make([]KeywordDoc, n)
	for i := range docs {
		var w []string
		for range 6 + r.IntN(10) {
			w = append(w, vocab[r.IntN(len(vocab))])
		}
		perm := []string{"private", "public", "shared"}[r.IntN(3)]
		m := Meta{OwnerID: fmt.Sprintf("owner-%03d", i%100), Permission: perm, CreatedAt: kwBase.Add(time.Duration(i) * time.Second)}
		if perm == "shared" {
			m.SharedUsers = []string{fmt.Sprintf("owner-%03d", (i+1)%100)}
		}
		docs[i] = doc(h, fmt.Sprintf("mem-%06d", i), strings.Join(w, " "), m)
	}
	return docs
}

func indexAll(t testing.TB, k KeywordIndex, docs []KeywordDoc) {
	t.Helper()
	for lo := 0; lo < len(docs); lo += 2000 {
		if err := k.IndexDocs(context.Background(), docs[lo:min(lo+2000, len(docs))]...); err != nil {
			t.Fatal(err)
		}
	}
}

func openSQLiteKW(t *testing.T) (*sqlKeywords, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keywords.db")
	k, err := openSQLiteKeywords(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k, path
}

func openPGKW(t *testing.T) *sqlKeywords {
	t.Helper()
	s := openTestPG(t, testpg.DSN(t))
	k, err := s.Keywords()
	if err != nil {
		t.Fatal(err)
	}
	return k.(*sqlKeywords)
}

func TestKeywordsSQLite(t *testing.T) {
	testKeywords(t, func(t *testing.T) KeywordIndex { k, _ := openSQLiteKW(t); return k })
}

func TestKeywordsPG(t *testing.T) {
	testKeywords(t, func(t *testing.T) KeywordIndex { return openPGKW(t) })
}

func testKeywords(t *testing.T, open func(t *testing.T) KeywordIndex) {
	h := testHasher(t)
	ctx := context.Background()

	t.Run("rare code among 10k memories", func(t *testing.T) {
		k := open(t)
		docs := synthetic(h, 10_000)
		rare := map[int]string{
			1234: "the order number is ORD-2024-7781 for the garden chairs",
			5678: "deploy key fingerprint a3f9c2e1d4b7 on the train",
			9012: "met Zbigniew at the coffee place in the city",
		}
		for i, text := range rare {
			docs[i] = doc(h, docs[i].ID, text, Meta{OwnerID: docs[i].Meta.OwnerID, Permission: "public", CreatedAt: docs[i].Meta.CreatedAt})
		}
		indexAll(t, k, docs)
		hy := &Hybrid{Index: k, Hasher: h, Opts: DefaultHybridOptions()}
		viewer := Filter{Any: []Clause{{Permission: "public"}, {OwnerID: "owner-050"}}, Now: kwBase}
		for i, q := range map[int]string{1234: "ORD-2024-7781", 5678: "a3f9c2e1d4b7", 9012: "where did I meet zbigniew"} {
			got := searchIDs(t, hy, q, viewer, 5)
			if len(got) == 0 || got[0] != docs[i].ID {
				t.Errorf("query %q: want %s first, got %v", q, docs[i].ID, got)
			}
		}
	})

	t.Run("idf power lets one rare word outrank several common ones", func(t *testing.T) {
		k := open(t)
		m := func(i int) Meta {
			return Meta{OwnerID: "o", Permission: "private", CreatedAt: kwBase.Add(time.Duration(i) * time.Second)}
		}
		docs := []KeywordDoc{doc(h, "rare", "sailed to zanzibar today", m(0))}
		for i := range 5 {
			docs = append(docs, doc(h, fmt.Sprintf("common-%d", i), fmt.Sprintf("red blue green item%d", i), m(1+i)))
		}
		for i := range 14 {
			docs = append(docs, doc(h, fmt.Sprintf("filler-%d", i), fmt.Sprintf("plain filler note%d", i), m(10+i)))
		}
		indexAll(t, k, docs)
		for _, c := range []struct {
			power float64
			first string
		}{{1, "common-0"}, {2, "rare"}} {
			o := DefaultHybridOptions()
			o.Context, o.IDFPower = false, c.power
			got := searchIDs(t, &Hybrid{Index: k, Hasher: h, Opts: o}, "red blue green zanzibar", ownerClause("o"), 3)
			if len(got) == 0 || got[0] != c.first {
				t.Errorf("idf power %v: want %s first, got %v", c.power, c.first, got)
			}
		}
	})

	t.Run("filters apply inside the query", func(t *testing.T) {
		k := open(t)
		future, past := kwBase.Add(24*time.Hour), kwBase.Add(-time.Hour)
		docs := []KeywordDoc{
			doc(h, "alice-private", "kayak paddle trip", Meta{OwnerID: "alice", Permission: "private", CreatedAt: kwBase}),
			doc(h, "alice-shared-bob", "kayak paddle trip", Meta{OwnerID: "alice", Permission: "shared", SharedUsers: []string{"bob"}, CreatedAt: kwBase.Add(time.Second)}),
			doc(h, "alice-shared-group", "kayak paddle trip", Meta{OwnerID: "alice", Permission: "shared", SharedGroups: []string{"g1"}, CreatedAt: kwBase.Add(2 * time.Second)}),
			doc(h, "alice-public-expired", "kayak paddle trip", Meta{OwnerID: "alice", Permission: "public", ExpiresAt: past, CreatedAt: kwBase.Add(3 * time.Second)}),
			doc(h, "alice-public", "kayak paddle trip", Meta{OwnerID: "alice", Permission: "public", ExpiresAt: future, CreatedAt: kwBase.Add(4 * time.Second)}),
			doc(h, "bob-own", "kayak", Meta{OwnerID: "bob", Permission: "private", CreatedAt: kwBase}),
		}
		// many more private ones that match better: a top-k cut before
		// filtering would leave nothing for carol
		for i := range 300 {
			docs = append(docs, doc(h, fmt.Sprintf("dave-%03d", i), "kayak kayak paddle paddle trip trip", Meta{OwnerID: "dave", Permission: "private", CreatedAt: kwBase.Add(time.Duration(i) * time.Second)}))
		}
		indexAll(t, k, docs)
		hy := &Hybrid{Index: k, Hasher: h, Opts: DefaultHybridOptions()}
		viewer := func(user string, groups ...string) Filter {
			return Filter{Any: []Clause{{OwnerID: user}, {Permission: "public"}, {Permission: "shared", SharedWithUser: user, SharedWithGroups: groups}}, Now: kwBase}
		}
		for _, c := range []struct {
			name string
			f    Filter
			want []string
		}{
			{"bob", viewer("bob"), []string{"alice-public", "alice-shared-bob", "bob-own"}},
			{"carol in g1", viewer("carol", "g1"), []string{"alice-public", "alice-shared-group"}},
			{"erin", viewer("erin"), []string{"alice-public"}},
			{"alice own scope", Filter{Any: viewer("alice").Any, OwnerID: "alice", Now: kwBase}, []string{"alice-private", "alice-public", "alice-shared-bob", "alice-shared-group"}},
		} {
			got := searchIDs(t, hy, "kayak paddle", c.f, 10)
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("%s: got %v, want %v", c.name, got, c.want)
			}
		}
	})

	t.Run("updates and deletes leave no stale terms", func(t *testing.T) {
		k := open(t)
		indexAll(t, k, []KeywordDoc{
			doc(h, "m1", "the walrus sang opera", Meta{OwnerID: "u", Permission: "private", CreatedAt: kwBase}),
			doc(h, "m2", "a quiet evening", Meta{OwnerID: "u", Permission: "private", CreatedAt: kwBase.Add(time.Second)}),
		})
		hy := &Hybrid{Index: k, Hasher: h, Opts: DefaultHybridOptions()}
		hy.Opts.Context = false
		if got := searchIDs(t, hy, "walrus", ownerClause("u"), 5); !slices.Equal(got, []string{"m1"}) {
			t.Fatalf("before update: %v", got)
		}
		indexAll(t, k, []KeywordDoc{doc(h, "m1", "the penguin sang jazz", Meta{OwnerID: "u", Permission: "private", CreatedAt: kwBase})})
		if got := searchIDs(t, hy, "walrus opera", ownerClause("u"), 5); len(got) != 0 {
			t.Fatalf("old text still found after update: %v", got)
		}
		if got := searchIDs(t, hy, "penguin", ownerClause("u"), 5); !slices.Equal(got, []string{"m1"}) {
			t.Fatalf("new text not found: %v", got)
		}
		df, n, _, err := k.DocFreqs(ctx, []int64{h.Hash("walrus"), h.Hash("penguin"), h.Hash("sang")})
		if err != nil {
			t.Fatal(err)
		}
		if df[h.Hash("walrus")] != 0 || df[h.Hash("penguin")] != 1 || df[h.Hash("sang")] != 1 || n != 2 {
			t.Fatalf("df after update: %v n=%d", df, n)
		}
		if err := k.DeleteDocs(ctx, "m1", "unknown"); err != nil {
			t.Fatal(err)
		}
		if got := searchIDs(t, hy, "penguin jazz", ownerClause("u"), 5); len(got) != 0 {
			t.Fatalf("deleted memory found: %v", got)
		}
		df, n, _, err = k.DocFreqs(ctx, []int64{h.Hash("penguin"), h.Hash("quiet")})
		if err != nil {
			t.Fatal(err)
		}
		if len(df) != 1 || df[h.Hash("quiet")] != 1 || n != 1 {
			t.Fatalf("terms left after delete: %v n=%d", df, n)
		}
		terms, err := k.DocTerms(ctx, []string{"m1"})
		if err != nil || len(terms) != 0 {
			t.Fatalf("postings left after delete: %v %v", terms, err)
		}
		if n, err := k.KeywordCount(ctx); err != nil || n != 1 {
			t.Fatalf("count %d %v", n, err)
		}
	})

	t.Run("context: neighbours in time lend score", func(t *testing.T) {
		k := open(t)
		texts := []string{"we planned a trip", "booked the ferry to the island", "packed sunscreen", "tax forms are due", "the island had wild goats"}
		var docs []KeywordDoc
		for i, tx := range texts {
			docs = append(docs, doc(h, fmt.Sprintf("t%d", i), tx, Meta{OwnerID: "u", Permission: "private", CreatedAt: kwBase.Add(time.Duration(i) * time.Minute)}))
		}
		// indexed out of order, and one of another owner in between
		slices.Reverse(docs)
		docs = append(docs, doc(h, "other", "island ferry", Meta{OwnerID: "v", Permission: "private", CreatedAt: kwBase.Add(90 * time.Second)}))
		indexAll(t, k, docs)
		hy := &Hybrid{Index: k, Hasher: h, Opts: DefaultHybridOptions()}
		hits, err := hy.Search(ctx, "ferry", ownerClause("u"), 10)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]Signals{}
		var order []string
		for _, x := range hits {
			got[x.ID] = x.Signals
			order = append(order, x.ID)
		}
		if order[0] != "t1" || !got["t1"].Keyword || got["t1"].Context {
			t.Fatalf("the match itself must come first: %v %+v", order, got)
		}
		for _, id := range []string{"t0", "t2", "t3"} {
			if s, ok := got[id]; !ok || !s.Context || s.Keyword {
				t.Errorf("%s (within two of the match) should be found by context: %+v", id, got)
			}
		}
		if _, ok := got["t4"]; ok {
			t.Errorf("t4 is three away and must not be lent score: %v", order)
		}
		hy.Opts.Context = false
		if got := searchIDs(t, hy, "ferry", ownerClause("u"), 10); !slices.Equal(got, []string{"t1"}) {
			t.Errorf("context off: %v", got)
		}
		// deleting the middle memory relinks its neighbours
		if err := k.DeleteDocs(ctx, "t2"); err != nil {
			t.Fatal(err)
		}
		hy.Opts.Context = true
		ids := searchIDs(t, hy, "sunscreen tax", ownerClause("u"), 10)
		if slices.Contains(ids, "t2") {
			t.Fatalf("deleted memory found: %v", ids)
		}
		ids = searchIDs(t, hy, "goats", ownerClause("u"), 10)
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"t1", "t3", "t4"}) {
			t.Fatalf("after delete, t4's neighbours are t3 and t1: %v", ids)
		}
	})

	t.Run("pseudo-relevance feedback", func(t *testing.T) {
		k := open(t)
		var docs []KeywordDoc
		for i, tx := range []string{"my violin teacher praised my bowing", "bowing technique and rosin matter", "bought rosin and strings", "weather was grey", "grey cat slept"} {
			docs = append(docs, doc(h, fmt.Sprintf("p%d", i), tx, Meta{OwnerID: "u", Permission: "private", CreatedAt: kwBase.Add(time.Duration(i) * time.Hour)}))
		}
		indexAll(t, k, docs)
		hy := &Hybrid{Index: k, Hasher: h, Opts: DefaultHybridOptions()}
		hy.Opts.Context = false
		if got := searchIDs(t, hy, "violin", ownerClause("u"), 10); !slices.Equal(got, []string{"p0"}) {
			t.Fatalf("without feedback: %v", got)
		}
		hy.Opts.PRF, hy.Opts.PRFDocs, hy.Opts.PRFTerms = true, 1, 3
		got := searchIDs(t, hy, "violin", ownerClause("u"), 10)
		if len(got) < 2 || got[0] != "p0" || got[1] != "p1" || slices.Contains(got, "p3") {
			t.Fatalf("feedback should add p1 (shares 'bowing' with p0) after p0 and nothing unrelated: %v", got)
		}
	})
}

func TestRRFFusion(t *testing.T) {
	// relevant: a, b, c. The keyword list finds a and b, the dense list b
	// and c; each alone has 2 of 3 in its top 3, fused all 3 are in the top 3.
	kw := []RankedHit{{ID: "a", Signals: Signals{Keyword: true}}, {ID: "b", Signals: Signals{Keyword: true}}, {ID: "x"}, {ID: "y"}}
	dense := []RankedHit{{ID: "c", Signals: Signals{Dense: true}}, {ID: "b", Signals: Signals{Dense: true}}, {ID: "z"}, {ID: "w"}}
	rel := map[string]bool{"a": true, "b": true, "c": true}
	recall := func(l []RankedHit) int {
		n := 0
		for _, x := range l[:min(3, len(l))] {
			if rel[x.ID] {
				n++
			}
		}
		return n
	}
	fused := FuseRRF(60, 10, nil, kw, dense)
	if recall(fused) < max(recall(kw), recall(dense)) || recall(fused) != 3 {
		t.Fatalf("fusion must not be worse than the better list: %+v", fused)
	}
	if fused[0].ID != "b" || !fused[0].Signals.Keyword || !fused[0].Signals.Dense || fused[0].Score != 1 {
		t.Fatalf("b is in both lists: it leads with both signals and score 1: %+v", fused[0])
	}
	for i := 1; i < len(fused); i++ {
		if fused[i].Score > fused[i-1].Score {
			t.Fatalf("not sorted: %+v", fused)
		}
	}
}

func TestKeywordsNoPlaintext(t *testing.T) {
	k, path := openSQLiteKW(t)
	h := testHasher(t)
	words := []string{"xylophonist", "quarterback", "marmalade", "ord-5512-zq"}
	indexAll(t, k, []KeywordDoc{
		doc(h, "m1", "The xylophonist ate marmalade", Meta{OwnerID: "u", Permission: "private", CreatedAt: kwBase}),
		doc(h, "m2", "quarterback code ORD-5512-ZQ", Meta{OwnerID: "u", Permission: "private", CreatedAt: kwBase}),
	})
	k.Close()
	files, _ := filepath.Glob(path + "*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range words {
			for _, form := range []string{w, strings.ToUpper(w), Tokens(w)[0]} {
				if len(form) > 4 && bytes.Contains(bytes.ToLower(b), []byte(strings.ToLower(form))) {
					t.Errorf("%s holds %q in plaintext", filepath.Base(f), form)
				}
			}
		}
	}
}

func TestKeywordsBackendsAgree(t *testing.T) {
	dsn := testpg.DSN(t)
	_ = dsn
	lite, _ := openSQLiteKW(t)
	pg := openPGKW(t)
	h := testHasher(t)
	docs := synthetic(h, 3000)
	indexAll(t, lite, docs)
	indexAll(t, pg, docs)
	// some updates and deletes on both
	upd := synthetic(h, 3000)[100:200]
	for i := range upd {
		upd[i].Terms, upd[i].Len = h.TermCounts("heron garden music heron")
	}
	for _, k := range []KeywordIndex{lite, pg} {
		indexAll(t, k, upd)
		if err := k.DeleteDocs(context.Background(), "mem-000300", "mem-000301", "mem-000450"); err != nil {
			t.Fatal(err)
		}
	}
	viewers := []Filter{
		{Any: []Clause{{OwnerID: "owner-007"}, {Permission: "public"}, {Permission: "shared", SharedWithUser: "owner-007"}}, Now: kwBase.Add(time.Hour)},
		{Any: []Clause{{OwnerID: "owner-042"}}, OwnerID: "owner-042", Now: kwBase.Add(time.Hour)},
	}
	for _, opts := range []HybridOptions{DefaultHybridOptions(), {K1: 0.9, B: 0.75}, {K1: 1.2, B: 0.3, PRF: true, PRFDocs: 3, PRFTerms: 5, PRFWeight: 0.3}} {
		for _, q := range []string{"heron lake", "coffee train city weekend", "music", "friends dinner garden"} {
			for vi, f := range viewers {
				a, err := (&Hybrid{Index: lite, Hasher: h, Opts: opts}).Search(context.Background(), q, f, 20)
				if err != nil {
					t.Fatal(err)
				}
				b, err := (&Hybrid{Index: pg, Hasher: h, Opts: opts}).Search(context.Background(), q, f, 20)
				if err != nil {
					t.Fatal(err)
				}
				if len(a) != len(b) || len(a) == 0 {
					t.Fatalf("%q viewer %d: %d vs %d hits", q, vi, len(a), len(b))
				}
				for i := range a {
					if math.Abs(a[i].Score-b[i].Score) > 1e-9 || (a[i].ID != b[i].ID && math.Abs(a[i].Score-b[i].Score) > 1e-12) || a[i].Signals != b[i].Signals {
						t.Fatalf("%q viewer %d rank %d: sqlite %+v, postgres %+v", q, vi, i, a[i], b[i])
					}
				}
			}
		}
	}
}

func TestKeywordsNoPlaintextPG(t *testing.T) {
	dsn := testpg.DSN(t)
	s := openTestPG(t, dsn)
	kw, err := s.Keywords()
	if err != nil {
		t.Fatal(err)
	}
	h := testHasher(t)
	indexAll(t, kw, []KeywordDoc{
		doc(h, "m1", "The xylophonist ate marmalade", Meta{OwnerID: "u", Permission: "private", CreatedAt: kwBase}),
		doc(h, "m2", "quarterback code ORD-5512-ZQ", Meta{OwnerID: "u", Permission: "shared", SharedUsers: []string{"v"}, CreatedAt: kwBase}),
	})
	var dump strings.Builder
	for _, tbl := range []string{"kw_docs", "kw_postings", "kw_shares", "kw_terms", "kw_stats"} {
		var text string
		if err := s.pool.QueryRow(context.Background(), "SELECT coalesce(string_agg(t::text, ' '), '') FROM "+s.ident(tbl)+" t").Scan(&text); err != nil {
			t.Fatal(err)
		}
		dump.WriteString(strings.ToLower(text))
	}
	if !strings.Contains(dump.String(), "m1") {
		t.Fatalf("the dump should hold the ids: %s", dump.String())
	}
	for _, w := range []string{"xylophonist", "xylophonist", "marmalade", "marmalad", "quarterback", "ord-5512-zq", "5512"} {
		if strings.Contains(dump.String(), w) {
			t.Errorf("the keyword tables hold %q in plaintext", w)
		}
	}
}

// TestKeywordsConcurrentWriters: the same memories indexed and deleted by
// several writers at once (a request and the reconciler) end up indexed
// once, with exact document frequencies.
func TestKeywordsConcurrentWriters(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) KeywordIndex{
		"sqlite":   func(t *testing.T) KeywordIndex { k, _ := openSQLiteKW(t); return k },
		"postgres": func(t *testing.T) KeywordIndex { return openPGKW(t) },
	} {
		t.Run(name, func(t *testing.T) {
			k := open(t)
			h := testHasher(t)
			docs := synthetic(h, 200)
			errs := make(chan error, 8)
			for w := range 8 {
				go func() {
					var err error
					for i := w; i < 200 && err == nil; i += 3 {
						err = k.IndexDocs(context.Background(), docs[i], docs[(i+1)%200])
					}
					errs <- err
				}()
			}
			for range 8 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			if n, err := k.KeywordCount(context.Background()); err != nil || n != 200 {
				t.Fatalf("count %d %v", n, err)
			}
			df, _, _, err := k.DocFreqs(context.Background(), []int64{h.Hash("heron")})
			if err != nil {
				t.Fatal(err)
			}
			want := 0
			for _, d := range docs {
				if d.Terms[h.Hash("heron")] > 0 {
					want++
				}
			}
			if df[h.Hash("heron")] != want {
				t.Fatalf("df %d, want %d", df[h.Hash("heron")], want)
			}
		})
	}
}

// TestKeywordsOldLayoutRebuilt: a keyword index written by the first
// layout (text ids in postings, no version table) is emptied and
// recreated on open, so the start-up check (fewer indexed memories than
// memories) reindexes everything; the new index then works.
func TestKeywordsOldLayoutRebuilt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keywords.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE kw_docs (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, permission TEXT NOT NULL, expires_at BIGINT,
			created_at BIGINT NOT NULL, len INTEGER NOT NULL, prev1 TEXT, prev2 TEXT, next1 TEXT, next2 TEXT)`,
		`CREATE TABLE kw_postings (term BIGINT NOT NULL, doc_id TEXT NOT NULL, tf INTEGER NOT NULL, PRIMARY KEY (term, doc_id))`,
		`CREATE TABLE kw_stats (id INTEGER PRIMARY KEY, n BIGINT NOT NULL, total_len BIGINT NOT NULL)`,
		`INSERT INTO kw_docs VALUES ('m1', 'u', 'private', NULL, 1, 3, NULL, NULL, NULL, NULL)`,
		`INSERT INTO kw_postings VALUES (42, 'm1', 1)`,
		`INSERT INTO kw_stats VALUES (1, 1, 3)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	k, err := openSQLiteKeywords(path)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if n, err := k.KeywordCount(context.Background()); err != nil || n != 0 {
		t.Fatalf("count after opening an old layout: %d %v, want 0 (rebuilt)", n, err)
	}
	h := testHasher(t)
	indexAll(t, k, []KeywordDoc{doc(h, "m1", "heron at the lake", Meta{OwnerID: "u", Permission: "private", CreatedAt: kwBase})})
	hy := &Hybrid{Index: k, Hasher: h, Opts: DefaultHybridOptions()}
	if got := searchIDs(t, hy, "heron", ownerClause("u"), 5); !slices.Equal(got, []string{"m1"}) {
		t.Fatalf("search after rebuild: %v", got)
	}
	// opening again keeps the data (the layout is current now)
	k.Close()
	k2, err := openSQLiteKeywords(path)
	if err != nil {
		t.Fatal(err)
	}
	defer k2.Close()
	if n, err := k2.KeywordCount(context.Background()); err != nil || n != 1 {
		t.Fatalf("count after reopening: %d %v, want 1", n, err)
	}
}

// TestKeywordsContextReceiversFiltered: the memories next to two strong
// public hits are private, so the best context totals all belong to
// memories the viewer may not read; the search still fills its page with
// the weaker public hit (the quick form's cut is rerun exactly) and never
// returns a private neighbour.
func TestKeywordsContextReceiversFiltered(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) KeywordIndex{
		"sqlite":   func(t *testing.T) KeywordIndex { k, _ := openSQLiteKW(t); return k },
		"postgres": func(t *testing.T) KeywordIndex { return openPGKW(t) },
	} {
		t.Run(name, func(t *testing.T) {
			k := open(t)
			h := testHasher(t)
			var docs []KeywordDoc
			i := 0
			add := func(id, text, perm string) {
				docs = append(docs, doc(h, id, text, Meta{OwnerID: "o", Permission: perm, CreatedAt: kwBase.Add(time.Duration(i) * time.Minute)}))
				i++
			}
			for _, strong := range []string{"a1", "a2"} {
				add(strong+"-p1", "tea", "private")
				add(strong+"-p2", "tea", "private")
				add(strong, "heron heron heron", "public")
				add(strong+"-n1", "tea", "private")
				add(strong+"-n2", "tea", "private")
			}
			add("c", "heron with a long list of other words about the lake shore today", "public")
			indexAll(t, k, docs)
			hy := &Hybrid{Index: k, Hasher: h, Opts: DefaultHybridOptions()}
			viewer := Filter{Any: []Clause{{Permission: "public"}}, Now: kwBase}
			got := searchIDs(t, hy, "heron", viewer, 3)
			if !slices.Equal(got, []string{"a1", "a2", "c"}) && !slices.Equal(got, []string{"a2", "a1", "c"}) {
				t.Fatalf("got %v, want a1, a2 and c", got)
			}
		})
	}
}

// TestRRFDefaultsKeepKeywordTop: with the default fusion settings a dense
// list of mostly wrong hits cannot push the keyword list's best hits down,
// while its first hit, which keyword search missed, still enters the top
// 10; k 60 with equal weights lets the wrong hits in between.
func TestRRFDefaultsKeepKeywordTop(t *testing.T) {
	var kw, dense []RankedHit
	for i := range 10 {
		id := fmt.Sprintf("k%d", i) // k0..k2 relevant
		kw = append(kw, RankedHit{ID: id, Signals: Signals{Keyword: true}})
		id = fmt.Sprintf("j%d", i) // j0 relevant, the rest wrong
		if i == 0 {
			id = "d0"
		}
		dense = append(dense, RankedHit{ID: id, Signals: Signals{Dense: true}})
	}
	o := DefaultHybridOptions()
	fused := FuseRRF(o.RRFK, 10, []float64{o.KeyWeight, o.DenseWeight}, kw, dense)
	top := func(l []RankedHit, n int) []string {
		var ids []string
		for _, x := range l[:min(n, len(l))] {
			ids = append(ids, x.ID)
		}
		return ids
	}
	if got := top(fused, 3); !slices.Equal(got, []string{"k0", "k1", "k2"}) {
		t.Fatalf("keyword's best three stay first with the defaults: %v", top(fused, 10))
	}
	if !slices.Contains(top(fused, 10), "d0") {
		t.Fatalf("the dense list's first hit enters the top 10: %v", top(fused, 10))
	}
	flat := FuseRRF(60, 10, []float64{1, 1}, kw, dense)
	if slices.Equal(top(flat, 3), []string{"k0", "k1", "k2"}) {
		t.Fatalf("k 60 with equal weights mixes the lists' ranks (this case shows why it is not the default): %v", top(flat, 10))
	}
}
