// Command locomo measures retrieval quality on LoCoMo conversations:
// evidence recall@5 and @10 of Picard's search (keyword BM25 over hashed
// terms with temporal context, the default; a dense embedder alone; or the
// two fused by reciprocal rank, as the server does with a semantic
// embedder) per question category, on the embedded backend and, with -pg
// or PICARD_TEST_PG_DSN, on pgvector.
//
// -mode compare prints keyword, dense and fused side by side. The dense
// embedder is reached through the OpenAI client the server uses: -embedder
// openai for any OpenAI-compatible API, or one of the stand-ins served on
// loopback with fixed embeddings (internal/fixedembed): lsa, fitted on the
// conversations, whose errors are keyword search's own, and simulated, of
// a chosen quality with independent errors (-sim-noise, -sim-lsa mixes
// the two).
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
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/picard-mcp/picard/internal/fixedembed"
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
	mode := flag.String("mode", "hybrid", "hybrid (keyword + context, the default search), dense (the embedder alone), fused (both, by reciprocal rank) or compare (all three on the same indexes)")
	embName := flag.String("embedder", "local", "dense embedder: local (hashing), lsa (fitted on the conversations) or simulated (fixed vectors of a chosen quality), both served on loopback through the OpenAI API, or openai (-openai-url)")
	lsaDims := flag.Int("lsa-dims", 256, "components of the lsa embedder (and vector length of the simulated one)")
	simNoise := flag.Float64("sim-noise", 5.5, "simulated embedder: noise added to each question's vector (higher: worse recall; 5.5 gives about the published recall of text-embedding-3-small)")
	simLSA := flag.Float64("sim-lsa", 0, "simulated embedder: share (0..1) of each similarity that comes from the lsa model, so the dense signal's errors partly follow keyword search's")
	oaURL := flag.String("openai-url", os.Getenv("OPENAI_BASE_URL"), "base URL of an OpenAI-compatible embeddings API (-embedder openai)")
	oaModel := flag.String("openai-model", "text-embedding-3-small", "embedding model (-embedder openai)")
	oaDims := flag.Int("openai-dims", 0, "vector length (-embedder openai; 0: the model's default)")
	pg := flag.String("pg", os.Getenv("PICARD_TEST_PG_DSN"), "PostgreSQL DSN: also measure the pgvector backend")
	def := vectorstore.DefaultHybridOptions()
	rrfK := flag.Float64("rrf-k", def.RRFK, "reciprocal rank fusion constant (fused)")
	keyW := flag.Float64("key-weight", def.KeyWeight, "RRF weight of the keyword list (fused)")
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
		ContextLenders: *lenders, Candidates: def.Candidates, Budget: *budget, RRFK: *rrfK, KeyWeight: *keyW, DenseWeight: *denseW, PRF: *prf, PRFDocs: *prfDocs, PRFTerms: *prfTerms, PRFWeight: *prfWeight}

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
	var emb2 vectorstore.Embedder
	if *mode != "hybrid" {
		emb2, err = embedder(*embName, convs, *lsaDims, *simNoise, *simLSA, *oaURL, *oaModel, *oaDims)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("embedder %s\n", emb2.Space())
	}
	fmt.Printf("mode %s; k1 %.2f b %.2f idf^%.1f context %v (near %.2f far %.2f) prf %v\n", *mode, opts.K1, opts.B, opts.IDFPower, opts.Context, opts.ContextNear, opts.ContextFar, opts.PRF)
	evaluate(ctx, "embedded", emb, emb2, convs, *mode, opts)
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
		evaluate(ctx, "pgvector", store, emb2, convs, *mode, opts)
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

// evaluate indexes convs in store and prints, and returns by ranker name,
// the recall of the rankers mode names.
func evaluate(ctx context.Context, backend string, store vectorstore.Store, emb vectorstore.Embedder, convs []conversation, mode string, opts vectorstore.HybridOptions) map[string]result {
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
	var kw, dense ranker
	if mode != "dense" {
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
	if mode != "hybrid" {
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
	fused := func(ctx context.Context, owner, q string, limit int) ([]vectorstore.RankedHit, error) {
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
	var names []string
	var rankers []ranker
	switch mode {
	case "hybrid":
		names, rankers = []string{"keyword"}, []ranker{kw}
	case "dense":
		names, rankers = []string{"dense"}, []ranker{dense}
	case "fused":
		names, rankers = []string{"fused"}, []ranker{fused}
	case "compare":
		names, rankers = []string{"keyword", "dense", "fused"}, []ranker{kw, dense, fused}
	default:
		log.Fatalf("unknown -mode %q", mode)
	}
	loaded := time.Since(start)
	results := make([]result, len(rankers))
	for i, r := range rankers {
		results[i] = score(ctx, convs, r)
	}
	fmt.Printf("\n%s (load %s; query p50", backend, loaded.Round(time.Millisecond))
	for i, r := range results {
		fmt.Printf(" %s %s", names[i], r.p50.Round(time.Microsecond))
	}
	fmt.Printf(")\n%-14s", "category")
	for _, n := range names {
		fmt.Printf(" %13s", n+" R@5 R@10")
	}
	fmt.Printf(" %5s\n", "n")
	labels := map[int]string{1: "1 single-hop", 2: "2 temporal", 3: "3 multi-hop", 4: "4 open-domain", 5: "5 adversarial"}
	row := func(label string, pick func(r result) tally) {
		fmt.Printf("%-14s", label)
		for _, r := range results {
			t := pick(r)
			fmt.Printf(" %6.3f %6.3f", t.r5/float64(max(t.n, 1)), t.r10/float64(max(t.n, 1)))
		}
		fmt.Printf(" %5d\n", pick(results[0]).n)
	}
	var keys []int
	for k := range results[0].cats {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		row(labels[k], func(r result) tally { return *r.cats[k] })
	}
	row("all", func(r result) tally { return r.all })
	row("all but 5", func(r result) tally { return r.no5 })
	out := map[string]result{}
	for i, n := range names {
		out[n] = results[i]
	}
	return out
}

type ranker func(ctx context.Context, owner, q string, limit int) ([]vectorstore.RankedHit, error)

type result struct {
	cats     map[int]*tally
	all, no5 tally
	p50      time.Duration
}

// score runs every question with evidence through rank and tallies
// evidence recall@5 and @10.
func score(ctx context.Context, convs []conversation, rank ranker) result {
	res := result{cats: map[int]*tally{}}
	var lat []time.Duration
	for _, c := range convs {
		for _, q := range c.qas {
			if len(q.Evidence) == 0 {
				continue
			}
			t0 := time.Now()
			hits, err := rank(ctx, c.owner, q.Question, 10)
			lat = append(lat, time.Since(t0))
			if err != nil {
				log.Fatal(err)
			}
			rec := func(k int) float64 {
				got := map[string]bool{}
				for _, h := range hits[:min(k, len(hits))] {
					got[h.ID] = true
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
			if res.cats[q.Category] == nil {
				res.cats[q.Category] = &tally{}
			}
			res.cats[q.Category].add(r5, r10)
			res.all.add(r5, r10)
			if q.Category != 5 {
				res.no5.add(r5, r10)
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		res.p50 = lat[len(lat)/2]
	}
	return res
}

// embedder returns the dense embedder named by -embedder. lsa fits its
// model on every turn of convs and serves it on loopback; the returned
// embedder then reaches it through the OpenAI client the server uses.
func embedder(name string, convs []conversation, lsaDims int, noise, lsaShare float64, url, model string, dims int) (vectorstore.Embedder, error) {
	switch name {
	case "simulated":
		t := simulate(convs, lsaDims, noise)
		if lsaShare > 0 {
			m, err := fitLSA(convs, lsaDims)
			if err != nil {
				return nil, err
			}
			a, b := float32(math.Sqrt(lsaShare)), float32(math.Sqrt(1-lsaShare))
			for text, v := range t.Vectors {
				l, _ := m.Embed(text)
				mixed := make([]float32, 0, len(l)+len(v))
				for _, x := range l {
					mixed = append(mixed, a*x)
				}
				for _, x := range v {
					mixed = append(mixed, b*x)
				}
				t.Vectors[text] = mixed
			}
			t.Dims += m.Len()
		}
		srv, err := fixedembed.Serve(t, "simulated")
		if err != nil {
			return nil, err
		}
		return vectorstore.NewOpenAIEmbedder(vectorstore.OpenAIConfig{BaseURL: srv.URL, Model: "simulated", Dims: t.Dims})
	case "local":
		return vectorstore.NewLocalEmbedder(), nil
	case "lsa":
		m, err := fitLSA(convs, lsaDims)
		if err != nil {
			return nil, err
		}
		srv, err := fixedembed.Serve(m, "lsa")
		if err != nil {
			return nil, err
		}
		// the server lives as long as the command
		return vectorstore.NewOpenAIEmbedder(vectorstore.OpenAIConfig{BaseURL: srv.URL, Model: "lsa", Dims: m.Dims})
	case "openai":
		if url == "" && os.Getenv("OPENAI_API_KEY") == "" {
			return nil, fmt.Errorf("-embedder openai needs -openai-url or OPENAI_API_KEY")
		}
		return vectorstore.NewOpenAIEmbedder(vectorstore.OpenAIConfig{APIKey: os.Getenv("OPENAI_API_KEY"), BaseURL: url, Model: model, Dims: dims})
	}
	return nil, fmt.Errorf("unknown -embedder %q (local, lsa, simulated, openai)", name)
}

// fitLSA fits the lsa model on every turn of convs.
func fitLSA(convs []conversation, dims int) (*fixedembed.LSA, error) {
	var corpus []string
	for _, c := range convs {
		for _, t := range c.turns {
			corpus = append(corpus, t.Speaker+": "+t.Text)
		}
	}
	return fixedembed.Fit(corpus, dims, 1)
}

// simulate fixes embeddings of a chosen quality whose errors are
// independent of keyword search's: every turn gets a random unit vector;
// a question's vector is the normalised sum of its evidence turns' vectors
// plus Gaussian noise of about noise × unit length. It measures what
// fusion does with a dense signal that knows what the words do not say
// (an upper bound on a real embedder's independence; -embedder lsa is the
// lower bound, a signal with keyword search's own errors).
func simulate(convs []conversation, dims int, noise float64) *fixedembed.Table {
	rng := mrand.New(mrand.NewPCG(7, 11)) //nolint:gosec // a fixed seed: the same simulated vectors every run
	unit := func(v []float64) []float32 {
		var n float64
		for _, x := range v {
			n += x * x
		}
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x / math.Sqrt(n))
		}
		return out
	}
	gauss := func() []float64 {
		v := make([]float64, dims)
		for i := range v {
			v[i] = rng.NormFloat64() / math.Sqrt(float64(dims))
		}
		return v
	}
	t := &fixedembed.Table{Vectors: map[string][]float32{}, Dims: dims}
	for _, c := range convs {
		byID := map[string][]float32{}
		for _, tr := range c.turns {
			text := tr.Speaker + ": " + tr.Text
			v, ok := t.Vectors[text]
			if !ok {
				v = unit(gauss())
				t.Vectors[text] = v
			}
			byID[tr.DiaID] = v
		}
		for _, q := range c.qas {
			sum := make([]float64, dims)
			for _, e := range q.Evidence {
				for i, x := range byID[e] {
					sum[i] += float64(x)
				}
			}
			a := unit(sum)
			g := gauss()
			v := make([]float64, dims)
			for i := range v {
				if len(q.Evidence) > 0 && !math.IsNaN(float64(a[i])) {
					v[i] = float64(a[i])
				}
				v[i] += noise * g[i]
			}
			t.Vectors[q.Question] = unit(v)
		}
	}
	return t
}
