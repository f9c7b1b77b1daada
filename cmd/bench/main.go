// Command bench loads synthetic memories into the vector stores and times
// filtered searches.
//
// It generates N deterministic memories (sentences from a word list, several
// owners, private/public/shared permissions, some expiring), embeds them with
// the local embedder and loads them into the embedded store (in a temporary
// directory) and, when PICARD_VECTOR_DSN or PICARD_TEST_PG_DSN is set, into
// pgvector (in a fresh schema dropped afterwards). It then runs Q searches
// with viewer filters against each backend and prints a table of load time
// and search latency, plus how many of each backend's hits agree with the
// exact (embedded) result.
//
//	go run ./cmd/bench -n 10000 -q 200 -limit 10
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/picard-mcp/picard/vectorstore"
)

func main() {
	n := flag.Int("n", 10000, "number of memories")
	q := flag.Int("q", 200, "number of queries per backend")
	limit := flag.Int("limit", 10, "results per query")
	flag.Parse()
	if err := run(*n, *q, *limit); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one backend's row in the table.
type result struct {
	backend   string
	load      time.Duration
	latencies []time.Duration
	agreement float64 // share of hits also in the exact result
	hits      float64 // mean hits per query
}

func run(n, nq, limit int) error {
	ctx := context.Background()
	emb := vectorstore.NewLocalEmbedder()
	space := emb.Space()

	start := time.Now()
	items, err := memories(ctx, emb, n)
	if err != nil {
		return err
	}
	queries, err := searches(ctx, emb, nq, limit)
	if err != nil {
		return err
	}
	fmt.Printf("generated and embedded %d memories and %d queries in %v (local embedder, %d dims)\n\n",
		n, nq, time.Since(start).Round(time.Millisecond), space.Dims)

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
	exact, embRes, err := measure(ctx, "embedded", emb1, space, items, queries, nil, nil)
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
	printTable(results, n, nq, limit)
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
	_, res, err := measure(ctx, "pgvector", pg, space, items, queries, exact, analyze)
	return res, err
}

// measure loads items into s, calls afterLoad (untimed) if given, and
// times the queries; it returns each query's hit ids and, when exact is
// given, the agreement with it.
func measure(ctx context.Context, name string, s vectorstore.Store, space vectorstore.Space,
	items []vectorstore.Item, queries []vectorstore.Query, exact [][]string, afterLoad func() error) ([][]string, result, error) {
	res := result{backend: name}
	start := time.Now()
	const batch = 500
	for lo := 0; lo < len(items); lo += batch {
		if err := s.Upsert(ctx, space, items[lo:min(lo+batch, len(items))]...); err != nil {
			return nil, res, fmt.Errorf("%s: load: %w", name, err)
		}
	}
	res.load = time.Since(start)
	if afterLoad != nil {
		if err := afterLoad(); err != nil {
			return nil, res, fmt.Errorf("%s: after load: %w", name, err)
		}
	}

	for _, q := range queries[:min(10, len(queries))] { // warm up
		if _, err := s.Search(ctx, q); err != nil {
			return nil, res, fmt.Errorf("%s: search: %w", name, err)
		}
	}
	ids := make([][]string, len(queries))
	var agree, total, nhits int
	for i, q := range queries {
		t := time.Now()
		hits, err := s.Search(ctx, q)
		res.latencies = append(res.latencies, time.Since(t))
		if err != nil {
			return nil, res, fmt.Errorf("%s: search: %w", name, err)
		}
		for _, h := range hits {
			ids[i] = append(ids[i], h.ID)
			if exact == nil || slices.Contains(exact[i], h.ID) {
				agree++
			}
		}
		nhits += len(hits)
		total += len(hits)
		if exact != nil && len(exact[i]) > len(hits) {
			total += len(exact[i]) - len(hits) // missed rows count against agreement
		}
	}
	if total > 0 {
		res.agreement = float64(agree) / float64(total)
	} else {
		res.agreement = 1
	}
	res.hits = float64(nhits) / float64(max(len(queries), 1))
	return ids, res, nil
}

func printTable(results []result, n, nq, limit int) {
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "backend\tmemories\tqueries\tlimit\tload\tp50\tp99\tmean\thits/query\tvs exact\t")
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
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%v\t%v\t%v\t%v\t%.1f\t%.1f%%\t\n", r.backend, n, nq, limit,
			r.load.Round(time.Millisecond), round(pct(lat, 50)), round(pct(lat, 99)), round(mean), r.hits, 100*r.agreement)
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

func memories(ctx context.Context, emb vectorstore.Embedder, n int) ([]vectorstore.Item, error) {
	r := mrand.New(mrand.NewPCG(1, 1))
	texts := make([]string, n)
	items := make([]vectorstore.Item, n)
	for i := range items {
		texts[i] = sentence(r)
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
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("embed memories: %w", err)
	}
	for i := range items {
		items[i].Vector = vecs[i]
	}
	return items, nil
}

// searches are viewer queries: three in four search everything the viewer
// may read, one in four only the viewer's own memories.
func searches(ctx context.Context, emb vectorstore.Embedder, nq, limit int) ([]vectorstore.Query, error) {
	r := mrand.New(mrand.NewPCG(2, 2))
	texts := make([]string, nq)
	queries := make([]vectorstore.Query, nq)
	for i := range queries {
		texts[i] = sentence(r)
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
		queries[i] = vectorstore.Query{Space: emb.Space(), Filter: f, Limit: limit}
	}
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("embed queries: %w", err)
	}
	for i := range queries {
		queries[i].Vector = vecs[i]
	}
	return queries, nil
}
