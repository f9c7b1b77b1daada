// Command locomo measures retrieval quality on LoCoMo conversations:
// evidence recall@5 and @10 of Picard's search (keyword BM25 over hashed
// terms with temporal context, the default; or the dense local embedder)
// per question category, on the embedded backend and, with -pg or
// PICARD_TEST_PG_DSN, on pgvector.
//
// Each turn is one memory ("<speaker>: <text>") of one user per
// conversation, stored in conversation order; each question is a search
// over that user's memories; a hit is relevant when its turn's dia_id is in
// the question's evidence. The data is not shipped: point -data at a copy
// (the development split lives in shared/data/locomo-dev beside the repo).
//
//	go run ./cmd/locomo -data ../shared/data/locomo-dev
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/picard-mcp/picard/vectorstore"
)

type turn struct {
	Speaker string `json:"speaker"`
	DiaID   string `json:"dia_id"`
	Text    string `json:"text"`
}

type qa struct {
	Question string   `json:"question"`
	Evidence []string `json:"evidence"`
	Category int      `json:"category"`
}

type conversation struct {
	owner string
	turns []turn
	qas   []qa
}

var sessionKey = regexp.MustCompile(`^session_(\d+)$`)

func main() {
	data := flag.String("data", "../shared/data/locomo-dev", "folder of LoCoMo conversation JSON files")
	mode := flag.String("mode", "hybrid", "hybrid (keyword + context, the default search), dense (local embedder) or fused (both, by reciprocal rank)")
	pg := flag.String("pg", os.Getenv("PICARD_TEST_PG_DSN"), "PostgreSQL DSN: also measure the pgvector backend")
	def := vectorstore.DefaultHybridOptions()
	denseW := flag.Float64("dense-weight", def.DenseWeight, "RRF weight of the dense list (fused)")
	k1 := flag.Float64("k1", def.K1, "BM25 k1")
	b := flag.Float64("b", def.B, "BM25 b")
	idfPow := flag.Float64("idf-power", def.IDFPower, "power of BM25's idf (1: plain BM25)")
	ctxOn := flag.Bool("context", def.Context, "temporal context")
	near := flag.Float64("near", def.ContextNear, "context weight of the ±1 neighbours")
	far := flag.Float64("far", def.ContextFar, "context weight of the ±2 neighbours")
	budget := flag.Int("budget", def.Budget, "postings budget per query (0: exact)")
	lenders := flag.Int("lenders", def.ContextLenders, "context: only the best this many keyword hits lend to their neighbours (0: all)")
	prf := flag.Bool("prf", def.PRF, "pseudo-relevance feedback")
	prfDocs := flag.Int("prf-docs", def.PRFDocs, "feedback documents")
	prfTerms := flag.Int("prf-terms", def.PRFTerms, "feedback terms")
	prfWeight := flag.Float64("prf-weight", def.PRFWeight, "feedback term weight")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run here")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	opts := vectorstore.HybridOptions{K1: *k1, B: *b, IDFPower: *idfPow, Context: *ctxOn, ContextNear: *near, ContextFar: *far,
		ContextLenders: *lenders, Candidates: def.Candidates, Budget: *budget, RRFK: def.RRFK, KeyWeight: def.KeyWeight, DenseWeight: *denseW, PRF: *prf, PRFDocs: *prfDocs, PRFTerms: *prfTerms, PRFWeight: *prfWeight}

	convs, err := load(*data)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "locomo-*")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	emb, err := vectorstore.OpenEmbedded(filepath.Join(dir, "vectors.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer emb.Close()
	fmt.Printf("mode %s; k1 %.2f b %.2f idf^%.1f context %v (near %.2f far %.2f) prf %v\n", *mode, opts.K1, opts.B, opts.IDFPower, opts.Context, opts.ContextNear, opts.ContextFar, opts.PRF)
	evaluate(ctx, "embedded", emb, convs, *mode, opts)
	if *pg != "" {
		schema := "locomo_" + randHex(4)
		store, err := vectorstore.OpenPG(ctx, vectorstore.PGConfig{DSN: *pg, Schema: schema})
		if err != nil {
			log.Fatal(err)
		}
		defer func() {
			conn, err := pgx.Connect(ctx, *pg)
			if err == nil {
				_, _ = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
				conn.Close(ctx)
			}
			store.Close()
		}()
		evaluate(ctx, "pgvector", store, convs, *mode, opts)
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func load(data string) ([]conversation, error) {
	files, err := filepath.Glob(filepath.Join(data, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no conversation files in %s (-data)", data)
	}
	sort.Strings(files)
	var out []conversation
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var conv map[string]json.RawMessage
		if err := json.Unmarshal(raw, &conv); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		c := conversation{owner: strings.TrimSuffix(filepath.Base(f), ".json")}
		var sessions []int
		for key := range conv {
			if m := sessionKey.FindStringSubmatch(key); m != nil {
				n, _ := strconv.Atoi(m[1])
				sessions = append(sessions, n)
			}
		}
		sort.Ints(sessions)
		for _, n := range sessions {
			var ts []turn
			if err := json.Unmarshal(conv["session_"+strconv.Itoa(n)], &ts); err != nil {
				return nil, fmt.Errorf("%s session %d: %w", f, n, err)
			}
			c.turns = append(c.turns, ts...)
		}
		if err := json.Unmarshal(conv["qa"], &c.qas); err != nil {
			return nil, fmt.Errorf("%s qa: %w", f, err)
		}
		out = append(out, c)
	}
	return out, nil
}

type tally struct {
	r5, r10 float64
	n       int
}

func (t *tally) add(r5, r10 float64) { t.r5 += r5; t.r10 += r10; t.n++ }
func (t tally) String() string {
	if t.n == 0 {
		return fmt.Sprintf("%6s %6s %5d", "-", "-", 0)
	}
	return fmt.Sprintf("%6.3f %6.3f %5d", t.r5/float64(t.n), t.r10/float64(t.n), t.n)
}

func evaluate(ctx context.Context, backend string, store vectorstore.Store, convs []conversation, mode string, opts vectorstore.HybridOptions) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	hasher, err := vectorstore.NewTermHasher(key)
	if err != nil {
		log.Fatal(err)
	}
	filter := func(owner string) vectorstore.Filter {
		return vectorstore.Filter{Any: []vectorstore.Clause{{OwnerID: owner}}, Now: time.Now()}
	}
	base := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	meta := func(owner string, i int) vectorstore.Meta {
		return vectorstore.Meta{OwnerID: owner, Permission: "private", CreatedAt: base.Add(time.Duration(i) * time.Minute)}
	}
	start := time.Now()
	type ranker func(ctx context.Context, owner, q string, limit int) ([]vectorstore.RankedHit, error)
	var kw, dense ranker
	if mode == "hybrid" || mode == "fused" {
		kp, ok := store.(vectorstore.KeywordProvider)
		if !ok {
			log.Fatalf("%s has no keyword index", backend)
		}
		idx, err := kp.Keywords()
		if err != nil {
			log.Fatal(err)
		}
		if err := idx.ResetKeywords(ctx); err != nil {
			log.Fatal(err)
		}
		for _, c := range convs {
			docs := make([]vectorstore.KeywordDoc, len(c.turns))
			for i, t := range c.turns {
				terms, n := hasher.TermCounts(t.Speaker + ": " + t.Text)
				docs[i] = vectorstore.KeywordDoc{ID: c.owner + "/" + t.DiaID, Meta: meta(c.owner, i), Terms: terms, Len: n}
			}
			if err := idx.IndexDocs(ctx, docs...); err != nil {
				log.Fatal(err)
			}
		}
		// rank from the in-process postings cache, as a server does
		if w, ok := idx.(interface{ WarmKeywords(context.Context) }); ok {
			w.WarmKeywords(ctx)
		}
		h := &vectorstore.Hybrid{Index: idx, Hasher: hasher, Opts: opts}
		kw = func(ctx context.Context, owner, q string, limit int) ([]vectorstore.RankedHit, error) {
			return h.Search(ctx, q, filter(owner), limit)
		}
	}
	if mode == "dense" || mode == "fused" {
		emb := vectorstore.NewLocalEmbedder()
		for _, c := range convs {
			texts := make([]string, len(c.turns))
			for i, t := range c.turns {
				texts[i] = t.Speaker + ": " + t.Text
			}
			vecs, err := emb.Embed(ctx, texts)
			if err != nil {
				log.Fatal(err)
			}
			items := make([]vectorstore.Item, len(c.turns))
			for i, t := range c.turns {
				items[i] = vectorstore.Item{ID: c.owner + "/" + t.DiaID, Vector: vecs[i], Meta: meta(c.owner, i)}
			}
			if err := store.Upsert(ctx, emb.Space(), items...); err != nil {
				log.Fatal(err)
			}
		}
		dense = func(ctx context.Context, owner, q string, limit int) ([]vectorstore.RankedHit, error) {
			qv, err := emb.Embed(ctx, []string{q})
			if err != nil {
				return nil, err
			}
			hits, err := store.Search(ctx, vectorstore.Query{Space: emb.Space(), Vector: qv[0], Limit: limit, Filter: filter(owner)})
			out := make([]vectorstore.RankedHit, len(hits))
			for i, x := range hits {
				out[i] = vectorstore.RankedHit{ID: x.ID, Score: x.Score}
			}
			return out, err
		}
	}
	var rank ranker
	switch mode {
	case "hybrid":
		rank = kw
	case "dense":
		rank = dense
	case "fused":
		rank = func(ctx context.Context, owner, q string, limit int) ([]vectorstore.RankedHit, error) {
			a, err := kw(ctx, owner, q, max(limit, opts.Candidates))
			if err != nil {
				return nil, err
			}
			b, err := dense(ctx, owner, q, max(limit, opts.Candidates))
			if err != nil {
				return nil, err
			}
			return vectorstore.FuseRRF(opts.RRFK, limit, []float64{opts.KeyWeight, opts.DenseWeight}, a, b), nil
		}
	default:
		log.Fatalf("unknown -mode %q", mode)
	}
	search := func(ctx context.Context, owner, q string, limit int) ([]string, error) {
		hits, err := rank(ctx, owner, q, limit)
		ids := make([]string, len(hits))
		for i, x := range hits {
			ids[i] = x.ID
		}
		return ids, err
	}
	loaded := time.Since(start)

	cats := map[int]*tally{}
	var all, no5 tally
	var lat []time.Duration
	for _, c := range convs {
		for _, q := range c.qas {
			if len(q.Evidence) == 0 {
				continue
			}
			t0 := time.Now()
			ids, err := search(ctx, c.owner, q.Question, 10)
			lat = append(lat, time.Since(t0))
			if err != nil {
				log.Fatal(err)
			}
			rec := func(k int) float64 {
				got := map[string]bool{}
				for _, id := range ids[:min(k, len(ids))] {
					got[id] = true
				}
				found := 0
				for _, e := range q.Evidence {
					if got[c.owner+"/"+e] {
						found++
					}
				}
				return float64(found) / float64(len(q.Evidence))
			}
			r5, r10 := rec(5), rec(10)
			if cats[q.Category] == nil {
				cats[q.Category] = &tally{}
			}
			cats[q.Category].add(r5, r10)
			all.add(r5, r10)
			if q.Category != 5 {
				no5.add(r5, r10)
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	fmt.Printf("\n%s (load %s, query p50 %s)\n", backend, loaded.Round(time.Millisecond), lat[len(lat)/2].Round(time.Microsecond))
	fmt.Printf("%-14s %6s %6s %5s\n", "category", "R@5", "R@10", "n")
	var keys []int
	for k := range cats {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	names := map[int]string{1: "1 single-hop", 2: "2 temporal", 3: "3 multi-hop", 4: "4 open-domain", 5: "5 adversarial"}
	for _, k := range keys {
		fmt.Printf("%-14s %s\n", names[k], cats[k])
	}
	fmt.Printf("%-14s %s\n", "all", all)
	fmt.Printf("%-14s %s\n", "all but 5", no5)
}
