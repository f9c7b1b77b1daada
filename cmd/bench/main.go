// Command bench loads memories into the vector stores and times filtered
// dense searches (the store mode; `make bench-store`).
//
// It generates N deterministic memories (several owners,
// private/public/shared permissions, some expiring) whose vectors come from
// -corpus: "synthetic" (sentences from a word list, local embedder),
// "locomo" (LoCoMo turns from -data, each memory one turn or two joined,
// queries the LoCoMo questions; local embedder) or "random" (Gaussian
// vectors of -dims dimensions, the hardest case for an approximate index).
// It loads them into the embedded store (in a temporary directory) and,
// when PICARD_VECTOR_DSN or PICARD_TEST_PG_DSN is set, into pgvector (in a
// fresh schema dropped afterwards), runs Q searches with viewer filters
// against each backend and prints load time, the first query (the embedded
// store builds its dense index then), search latency and recall@limit
// against an exact scan computed by the bench itself from the float32
// vectors. Three in four queries see everything the viewer may read, one
// in four only the viewer's own memories.
//
//	go run ./cmd/bench -n 10000 -q 200 -limit 10 -corpus random -dims 1536
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/picard-mcp/picard/vectorstore"
)

func main() {
	n := flag.Int("n", 10000, "number of memories")
	q := flag.Int("q", 200, "number of queries per backend")
	limit := flag.Int("limit", 10, "results per query")
	corpus := flag.String("corpus", "synthetic", "vectors: synthetic, locomo or random")
	dims := flag.Int("dims", 1536, "dimensions of -corpus random")
	data := flag.String("data", "../shared/data/locomo-dev", "LoCoMo conversations for -corpus locomo")
	flag.Parse()
	if err := run(config{n: *n, nq: *q, limit: *limit, corpus: *corpus, dims: *dims, data: *data}); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type config struct {
	n, nq, limit int
	corpus       string
	dims         int
	data         string
}

// result is one backend's row in the table.
type result struct {
	backend   string
	load      time.Duration
	first     time.Duration // the first query (the embedded store builds its index)
	latencies []time.Duration
	cpu       time.Duration // process CPU time per query (embedded: the search itself)
	recall    float64       // share of the exact top limit found
	hits      float64       // mean hits per query
}

func run(c config) error {
	ctx := context.Background()
	start := time.Now()
	var (
		space   vectorstore.Space
		items   []vectorstore.Item
		queries []vectorstore.Query
		err     error
	)
	switch c.corpus {
	case "synthetic", "locomo":
		emb := vectorstore.NewLocalEmbedder()
		space = emb.Space()
		memTexts, queryTexts := syntheticTexts(c.n, c.nq)
		if c.corpus == "locomo" {
			if memTexts, queryTexts, err = locomoTexts(c.data, c.n, c.nq); err != nil {
				return err
			}
		}
		if items, err = memories(ctx, emb, memTexts); err != nil {
			return err
		}
		if queries, err = searches(ctx, emb, queryTexts, c.limit); err != nil {
			return err
		}
	case "random":
		space = vectorstore.Space{Embedder: "random", Model: "gauss", Dims: c.dims}
		items, queries = randomWorld(space, c.n, c.nq, c.limit)
	default:
		return fmt.Errorf("-corpus %q is not synthetic, locomo or random", c.corpus)
	}
	fmt.Printf("%s corpus: %d memories and %d queries in %v (%s)\n",
		c.corpus, c.n, c.nq, time.Since(start).Round(time.Millisecond), space)
	start = time.Now()
	cpu0 := cpuTime()
	exact := exactScan(items, queries)
	nq := time.Duration(max(len(queries), 1))
	fmt.Printf("exact float32 scan of vectors in memory (the embedded store before its dense index): %v per query, %v CPU\n\n",
		round(time.Since(start)/nq), round((cpuTime()-cpu0)/nq))

	dir, err := os.MkdirTemp("", "picard-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	emb1, err := vectorstore.OpenEmbedded(filepath.Join(dir, "vectors.db"))
	if err != nil {
		return err
	}
	defer emb1.Close()
	embRes, err := measure(ctx, "embedded", emb1, space, items, queries, exact, nil)
	if err != nil {
		return err
	}
	results := []result{embRes}

	dsn := os.Getenv("PICARD_VECTOR_DSN")
	if dsn == "" {
		dsn = os.Getenv("PICARD_TEST_PG_DSN")
	}
	if dsn != "" {
		res, err := benchPG(ctx, dsn, space, items, queries, exact)
		if err != nil {
			return err
		}
		results = append(results, res)
	} else {
		fmt.Println("pgvector skipped: set PICARD_VECTOR_DSN or PICARD_TEST_PG_DSN to include it")
	}
	printTable(results, c.n, c.nq, c.limit)
	return nil
}

func benchPG(ctx context.Context, dsn string, space vectorstore.Space, items []vectorstore.Item, queries []vectorstore.Query, exact [][]string) (result, error) {
	b := make([]byte, 6)
	rand.Read(b)
	schema := "bench_" + hex.EncodeToString(b)
	defer func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: drop schema %s: %v\n", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			fmt.Fprintf(os.Stderr, "bench: drop schema %s: %v\n", schema, err)
		}
	}()
	pg, err := vectorstore.OpenPG(ctx, vectorstore.PGConfig{DSN: dsn, Schema: schema})
	if err != nil {
		return result{}, err
	}
	defer pg.Close()
	if err := pg.Ping(ctx); err != nil {
		return result{}, err
	}
	// Query plans need table statistics; autovacuum would gather them
	// within a minute, the bench does not wait for it.
	analyze := func() error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, "SELECT table_name FROM "+pgx.Identifier{schema, "vector_spaces"}.Sanitize())
		if err != nil {
			return err
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := conn.Exec(ctx, "ANALYZE "+pgx.Identifier{schema, t}.Sanitize()); err != nil {
				return err
			}
		}
		return nil
	}
	return measure(ctx, "pgvector", pg, space, items, queries, exact, analyze)
}

// measure loads items into s, calls afterLoad (untimed) if given, times
// the queries and compares their hits with the exact result.
func measure(ctx context.Context, name string, s vectorstore.Store, space vectorstore.Space,
	items []vectorstore.Item, queries []vectorstore.Query, exact [][]string, afterLoad func() error) (result, error) {
	res := result{backend: name}
	start := time.Now()
	const batch = 500
	for lo := 0; lo < len(items); lo += batch {
		if err := s.Upsert(ctx, space, items[lo:min(lo+batch, len(items))]...); err != nil {
			return res, fmt.Errorf("%s: load: %w", name, err)
		}
	}
	res.load = time.Since(start)
	if afterLoad != nil {
		if err := afterLoad(); err != nil {
			return res, fmt.Errorf("%s: after load: %w", name, err)
		}
	}

	for i, q := range queries[:min(10, len(queries))] { // warm up
		t := time.Now()
		if _, err := s.Search(ctx, q); err != nil {
			return res, fmt.Errorf("%s: search: %w", name, err)
		}
		if i == 0 {
			res.first = time.Since(t)
		}
	}
	var found, total, nhits int
	cpu0 := cpuTime()
	for i, q := range queries {
		t := time.Now()
		hits, err := s.Search(ctx, q)
		res.latencies = append(res.latencies, time.Since(t))
		if err != nil {
			return res, fmt.Errorf("%s: search: %w", name, err)
		}
		got := make([]string, len(hits))
		for j, h := range hits {
			got[j] = h.ID
		}
		for _, id := range exact[i] {
			if slices.Contains(got, id) {
				found++
			}
		}
		total += len(exact[i])
		nhits += len(hits)
	}
	res.cpu = (cpuTime() - cpu0) / time.Duration(max(len(queries), 1))
	res.recall = 1
	if total > 0 {
		res.recall = float64(found) / float64(total)
	}
	res.hits = float64(nhits) / float64(max(len(queries), 1))
	return res, nil
}

// exactScan is the ground truth and the baseline: every query ranked over
// every item that passes its filter by float32 cosine similarity (ties by
// id), the vectors normalised and multiplied exactly as the embedded store
// does, held in memory as the store held them before its dense index.
func exactScan(items []vectorstore.Item, queries []vectorstore.Query) [][]string {
	vecs := make([][]float32, len(items))
	for i, it := range items {
		vecs[i] = normalised(it.Vector)
	}
	out := make([][]string, len(queries))
	type cand struct {
		id    string
		score float32
	}
	for qi, q := range queries {
		qv := normalised(q.Vector)
		better := func(a, b cand) bool { return a.score > b.score || a.score == b.score && a.id < b.id }
		top := make([]cand, 0, q.Limit+1) // best first
		for i, it := range items {
			if !q.Filter.Matches(it.Meta) {
				continue
			}
			c := cand{it.ID, vectorstore.Dot(qv, vecs[i])}
			if len(top) == q.Limit && !better(c, top[len(top)-1]) {
				continue
			}
			k := sort.Search(len(top), func(j int) bool { return better(c, top[j]) })
			top = slices.Insert(top, k, c)
			if len(top) > q.Limit {
				top = top[:q.Limit]
			}
		}
		for _, c := range top {
			out[qi] = append(out[qi], c.id)
		}
	}
	return out
}

func normalised(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	inv := 1 / math.Sqrt(sum)
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func printTable(results []result, n, nq, limit int) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "backend\tmemories\tqueries\tlimit\tload\tfirst query\tp50\tp99\tmean\tCPU/query\thits/query\trecall vs exact\t")
	for _, r := range results {
		lat := slices.Clone(r.latencies)
		slices.Sort(lat)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		mean := time.Duration(0)
		if len(lat) > 0 {
			mean = sum / time.Duration(len(lat))
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%v\t%v\t%v\t%v\t%v\t%v\t%.1f\t%.3f\t\n", r.backend, n, nq, limit,
			r.load.Round(time.Millisecond), round(r.first), round(pct(lat, 50)), round(pct(lat, 99)), round(mean), round(r.cpu), r.hits, r.recall)
	}
	w.Flush()
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p+99)/100 - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func round(d time.Duration) time.Duration {
	if d > 10*time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

// The synthetic world: users, their groups, and sentences built from word
// lists.
var (
	subjects = strings.Fields("I we my-sister my-brother our-team the-dog my-friend grandma the-neighbours my-manager")
	verbs    = strings.Fields("visited cooked painted fixed planned discussed photographed bought learned remembered booked cleaned")
	objects  = strings.Fields("the-garden pasta a-bicycle the-kitchen a-birthday-party the-budget a-concert-ticket sourdough-bread the-roof a-guitar a-novel the-quarterly-report tomatoes a-hiking-trip the-car")
	places   = strings.Fields("in-Lisbon at-home near-the-river in-the-office at-the-beach in-the-mountains downtown at-school in-Kyoto at-the-market")
	times    = strings.Fields("yesterday last-week on-Sunday in-March this-morning last-summer on-my-birthday after-work during-the-holidays in-2021")
	extras   = strings.Fields("it-was-wonderful it-took-hours we-should-do-it-again it-rained-all-day everyone-laughed remember-to-call-back the-price-was-high")
)

const (
	numUsers  = 20
	numGroups = 5
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func user(i int) string { return fmt.Sprintf("user-%02d", i) }

// groupsOf gives each user one or two groups.
func groupsOf(u int) []string {
	g := []string{fmt.Sprint("group-", u%numGroups)}
	if u%3 == 0 {
		g = append(g, fmt.Sprint("group-", (u/3)%numGroups))
	}
	return g
}

func sentence(r *mrand.Rand) string {
	pick := func(list []string) string { return strings.ReplaceAll(list[r.IntN(len(list))], "-", " ") }
	s := pick(subjects) + " " + pick(verbs) + " " + pick(objects) + " " + pick(places) + " " + pick(times)
	if r.IntN(2) == 0 {
		s += ", " + pick(extras)
	}
	return s + "."
}

// syntheticTexts are n memory and nq query sentences.
func syntheticTexts(n, nq int) (mems, queries []string) {
	r := mrand.New(mrand.NewPCG(1, 1))
	for range n {
		mems = append(mems, sentence(r))
	}
	r = mrand.New(mrand.NewPCG(2, 2))
	for range nq {
		queries = append(queries, sentence(r))
	}
	return mems, queries
}

// locomoTexts are LoCoMo turns ("speaker: text"; past the number of turns,
// two random turns joined) and questions, cycled.
func locomoTexts(dir string, n, nq int) (mems, queries []string, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		return nil, nil, fmt.Errorf("no LoCoMo conversations in %s (-data)", dir)
	}
	type turn struct{ Speaker, Text string }
	var turns, questions []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		var conv map[string]json.RawMessage
		if err := json.Unmarshal(raw, &conv); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f, err)
		}
		for k := 1; ; k++ {
			sess, ok := conv["session_"+strconv.Itoa(k)]
			if !ok {
				break
			}
			var ts []turn
			if err := json.Unmarshal(sess, &ts); err != nil {
				return nil, nil, fmt.Errorf("%s session %d: %w", f, k, err)
			}
			for _, t := range ts {
				turns = append(turns, t.Speaker+": "+t.Text)
			}
		}
		var qa []struct{ Question string }
		if err := json.Unmarshal(conv["qa"], &qa); err != nil {
			return nil, nil, fmt.Errorf("%s qa: %w", f, err)
		}
		for _, q := range qa {
			questions = append(questions, q.Question)
		}
	}
	if len(turns) == 0 || len(questions) == 0 {
		return nil, nil, fmt.Errorf("no turns or questions in %s", dir)
	}
	r := mrand.New(mrand.NewPCG(3, 3))
	for i := range n {
		if i < len(turns) {
			mems = append(mems, turns[i])
		} else {
			mems = append(mems, turns[r.IntN(len(turns))]+" "+turns[r.IntN(len(turns))])
		}
	}
	for i := range nq {
		queries = append(queries, questions[i%len(questions)])
	}
	return mems, queries, nil
}

// metas gives n memories deterministic owners, permissions and expiry.
func metas(n int) []vectorstore.Item {
	r := mrand.New(mrand.NewPCG(1, 2))
	items := make([]vectorstore.Item, n)
	for i := range items {
		m := vectorstore.Meta{OwnerID: user(r.IntN(numUsers)), CreatedAt: now.Add(-time.Duration(r.IntN(365*24)) * time.Hour)}
		switch p := r.IntN(10); {
		case p < 5:
			m.Permission = "private"
		case p < 8:
			m.Permission = "public"
		default:
			m.Permission = "shared"
			for range 1 + r.IntN(3) {
				m.SharedUsers = append(m.SharedUsers, user(r.IntN(numUsers)))
			}
			if r.IntN(10) < 3 {
				m.SharedGroups = []string{fmt.Sprint("group-", r.IntN(numGroups))}
			}
		}
		if r.IntN(10) == 0 {
			m.ExpiresAt = now.Add(time.Duration(r.IntN(48)-24) * time.Hour)
		}
		items[i] = vectorstore.Item{ID: fmt.Sprintf("mem-%06d", i), Meta: m}
	}
	return items
}

func memories(ctx context.Context, emb vectorstore.Embedder, texts []string) ([]vectorstore.Item, error) {
	items := metas(len(texts))
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("embed memories: %w", err)
	}
	for i := range items {
		items[i].Vector = vecs[i]
	}
	return items, nil
}

// viewerQueries are nq queries without vectors: three in four search
// everything the viewer may read, one in four only the viewer's own
// memories.
func viewerQueries(space vectorstore.Space, nq, limit int) []vectorstore.Query {
	r := mrand.New(mrand.NewPCG(2, 3))
	queries := make([]vectorstore.Query, nq)
	for i := range queries {
		u := r.IntN(numUsers)
		f := vectorstore.Filter{Now: now}
		if i%4 == 3 {
			f.Any = []vectorstore.Clause{{OwnerID: user(u)}}
		} else {
			f.Any = []vectorstore.Clause{
				{OwnerID: user(u)},
				{Permission: "public"},
				{Permission: "shared", SharedWithUser: user(u), SharedWithGroups: groupsOf(u)},
			}
		}
		queries[i] = vectorstore.Query{Space: space, Filter: f, Limit: limit}
	}
	return queries
}

func searches(ctx context.Context, emb vectorstore.Embedder, texts []string, limit int) ([]vectorstore.Query, error) {
	queries := viewerQueries(emb.Space(), len(texts), limit)
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("embed queries: %w", err)
	}
	for i := range queries {
		queries[i].Vector = vecs[i]
	}
	return queries, nil
}

// randomWorld is n memories and nq queries with Gaussian vectors.
func randomWorld(space vectorstore.Space, n, nq, limit int) ([]vectorstore.Item, []vectorstore.Query) {
	r := mrand.New(mrand.NewPCG(4, 4))
	vec := func() []float32 {
		v := make([]float32, space.Dims)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	items := metas(n)
	for i := range items {
		items[i].Vector = vec()
	}
	queries := viewerQueries(space, nq, limit)
	for i := range queries {
		queries[i].Vector = vec()
	}
	return items, queries
}
