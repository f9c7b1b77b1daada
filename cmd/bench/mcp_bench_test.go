//go:build bench

// The end-to-end search benchmark (make bench, make bench-100k): seeds
// memories of 100 users (mixed permissions, some expiring, some expired)
// through the real write path (records saved through PocketBase, the
// outbox, the reconciler) and times query_memory over MCP at 1 and 50
// connections, per backend. Behind the "bench" build tag so the normal test
// run never starts it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"github.com/picard-mcp/picard/internal/mcpload"
	"github.com/picard-mcp/picard/internal/picardtest"
	"github.com/picard-mcp/picard/internal/testpg"
	"github.com/picard-mcp/picard/pb_migrations"
	"github.com/picard-mcp/picard/vectorstore"
)

var (
	benchN     = flag.Int("bench-n", 10_000, "memories to seed")
	benchQ     = flag.Int("bench-q", 2_000, "queries per backend and concurrency")
	benchConns = flag.String("bench-conns", "1,50", "concurrent MCP connections to measure")
	benchCli   = flag.String("bench-client", "thin", "MCP client: thin (internal/mcpload: posts JSON-RPC and decodes only the hits, like a load generator) or sdk (mcp-go's client, which costs about as much CPU per call as the server on the same two cores)")
	benchBack  = flag.String("bench-backends", "embedded,pgvector", "backends (pgvector needs PICARD_TEST_PG_DSN); a -dense suffix (embedded-dense) measures dense-only search, as before the keyword index")
)

const benchUsers = 100

// denseOnly is a store without its keyword index.
type denseOnly struct{ vectorstore.Store }

func TestMCPBench(t *testing.T) {
	fmt.Printf("# query_memory over MCP, -bench-client %s\n", *benchCli)
	fmt.Printf("%-15s %7s %5s %9s %9s %9s %8s %8s\n", "backend", "n", "conns", "p50", "p99", "req/s", "hits", "seed")
	for _, b := range strings.Split(*benchBack, ",") {
		t.Run(b, func(t *testing.T) {
			var store vectorstore.Store
			switch strings.TrimSuffix(b, "-dense") {
			case "pgvector":
				dsn := os.Getenv("PICARD_TEST_PG_DSN")
				if dsn == "" {
					t.Skip("PICARD_TEST_PG_DSN is not set")
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				pg, err := vectorstore.OpenPG(ctx, vectorstore.PGConfig{DSN: dsn, Schema: testpg.Schema(t, dsn)})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pg.Close() })
				store = pg
			case "embedded":
				if strings.HasSuffix(b, "-dense") {
					e, err := vectorstore.OpenEmbedded(filepath.Join(t.TempDir(), "vectors.db"))
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { e.Close() })
					store = e
				}
			default:
				t.Fatalf("unknown backend %q", b)
			}
			if strings.HasSuffix(b, "-dense") {
				// hides the keyword index: the search before hybrid
				// (dense only, local embedder), for comparison
				store = denseOnly{store}
			}
			s := picardtest.Start(t, picardtest.Options{Vectors: store})
			start := time.Now()
			users, queries := seed(t, s, *benchN)
			seeded := time.Since(start)
			s.C.Memories.WarmKeywords(context.Background()) // as `picard serve` does at start
			for _, cs := range strings.Split(*benchConns, ",") {
				var conns int
				fmt.Sscan(cs, &conns)
				lat, hits, wall := runQueries(t, s, users, queries, conns, *benchQ)
				sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
				fmt.Printf("%-15s %7d %5d %9s %9s %9.0f %8.2f %8s\n", b, *benchN, conns,
					lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond),
					float64(len(lat))/wall.Seconds(), hits, seeded.Round(time.Second))
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			fmt.Printf("%-15s %7d resident %s MiB (server, bench client and data in one process), Go heap in use %.0f MiB\n",
				b, *benchN, vmRSS(), float64(ms.HeapInuse)/(1<<20))
		})
	}
}

// vmRSS is this process's resident set size in MiB, from /proc (Linux).
func vmRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb float64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return fmt.Sprintf("%.0f", kb/1024)
		}
	}
	return "?"
}

// words is a vocabulary drawn with a Zipf distribution, so some words are
// in most memories and most words in few.
func words(r *mrand.Rand) []string {
	syl := strings.Fields("ka lo mi ra te su no vi pe da go ri la me to shi ne ba ku fe")
	out := make([]string, 5000)
	for i := range out {
		var b strings.Builder
		for range 2 + r.IntN(3) {
			b.WriteString(syl[r.IntN(len(syl))])
		}
		out[i] = b.String()
	}
	return out
}

type benchQuery struct {
	user int
	text string
}

func seed(t *testing.T, s *picardtest.Server, n int) ([]picardtest.User, []benchQuery) {
	t.Helper()
	c := s.RegisterClient(s.SuperuserToken())
	users := make([]picardtest.User, benchUsers)
	for i := range users {
		users[i] = s.UserToken(c, fmt.Sprintf("benchuser%03d", i))
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	vocab := words(r)
	zipf := mrand.NewZipf(r, 1.1, 2, uint64(len(vocab)-1))
	col, err := s.App.FindCollectionByNameOrId(pb_migrations.Memories)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var queries []benchQuery
	for lo := 0; lo < n; lo += 1000 {
		err := s.App.RunInTransaction(func(tx core.App) error {
			for i := lo; i < min(lo+1000, n); i++ {
				owner := i % benchUsers
				var w []string
				for range 8 + r.IntN(20) {
					w = append(w, vocab[zipf.Uint64()])
				}
				if i%10 == 0 {
					w = append(w, fmt.Sprintf("ref-%08x", r.Uint32()))
				}
				text := strings.Join(w, " ")
				rec := core.NewRecord(col)
				rec.Set("owner", users[owner].ID)
				rec.Set("text", text)
				switch p := r.IntN(10); {
				case p < 5:
					rec.Set("permission", "private")
				case p < 8:
					rec.Set("permission", "public")
				default:
					rec.Set("permission", "shared")
					rec.Set("shared_users", []string{users[(owner+1+r.IntN(benchUsers-1))%benchUsers].ID})
				}
				switch e := r.IntN(20); {
				case e == 0: // expired
					rec.Set("expires_at", types.NowDateTime().Add(-time.Hour))
				case e < 3:
					dt, _ := types.ParseDateTime(now.Add(time.Duration(1+r.IntN(1000)) * time.Hour))
					rec.Set("expires_at", dt)
				}
				if err := tx.Save(rec); err != nil {
					return err
				}
				if r.IntN(n/1000+1) == 0 && len(queries) < 5000 {
					k := 2 + r.IntN(3)
					start := r.IntN(max(1, len(w)-k))
					queries = append(queries, benchQuery{owner, strings.Join(w[start:min(start+k, len(w))], " ")})
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.C.Memories.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for {
		var pending int
		if err := s.App.DB().Select("count(*)").From(pb_migrations.Memories).Where(dbx.HashExp{"index_status": "pending"}).Row(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if _, err := s.C.Memories.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return users, queries
}

func connect(t *testing.T, s *picardtest.Server, u picardtest.User) *mcpclient.Client {
	c, err := mcpclient.NewStreamableHttpClient(s.URL+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + u.Access}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "picard-bench", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

// caller is one MCP session of the bench: callQuery returns the number of
// memories a query_memory call answered.
type caller struct {
	callQuery func(q benchQuery) (int, error)
	close     func()
}

// connectCaller opens a session for u with the client -bench-client names.
func connectCaller(t *testing.T, s *picardtest.Server, u picardtest.User) caller {
	if *benchCli == "sdk" {
		c := connect(t, s, u)
		return caller{close: func() { c.Close() }, callQuery: func(q benchQuery) (int, error) {
			req := mcp.CallToolRequest{}
			req.Params.Name = "query_memory"
			req.Params.Arguments = map[string]any{"query": q.text, "limit": 10}
			res, err := c.CallTool(context.Background(), req)
			if err != nil {
				return 0, err
			}
			if res.IsError {
				return 0, fmt.Errorf("tool error: %+v", res.Content)
			}
			if m, ok := res.StructuredContent.(map[string]any); ok {
				if l, ok := m["memories"].([]any); ok {
					return len(l), nil
				}
			}
			return 0, nil
		}}
	}
	if *benchCli != "thin" {
		t.Fatalf("unknown -bench-client %q (thin or sdk)", *benchCli)
	}
	c := mcpload.New(s.URL+"/mcp", u.Access, false)
	if err := c.Initialize(context.Background()); err != nil {
		t.Fatal(err)
	}
	return caller{close: func() {}, callQuery: func(q benchQuery) (int, error) {
		data, _, err := c.PostRaw(context.Background(), c.Request("tools/call", map[string]any{
			"name": "query_memory", "arguments": map[string]any{"query": q.text, "limit": 10}}))
		if err != nil {
			return 0, err
		}
		// the answer is checked and its hits counted; the text copy of
		// the result (content[0].text) is skipped, not decoded
		var r struct {
			Result *struct {
				IsError           bool `json:"isError"`
				StructuredContent struct {
					Memories []struct {
						ID string `json:"id"`
					} `json:"memories"`
				} `json:"structuredContent"`
			} `json:"result"`
		}
		if err := json.Unmarshal(data, &r); err != nil || r.Result == nil || r.Result.IsError {
			return 0, fmt.Errorf("not a query_memory result (%v): %s", err, mcpload.Truncate(string(data)))
		}
		return len(r.Result.StructuredContent.Memories), nil
	}}
}

// runQueries sends total queries over conns MCP sessions (each a different user)
// and returns every call's latency, the mean hit count and the wall time.
func runQueries(t *testing.T, s *picardtest.Server, users []picardtest.User, qs []benchQuery, conns, total int) ([]time.Duration, float64, time.Duration) {
	clients := make([]caller, conns)
	for i := range clients {
		clients[i] = connectCaller(t, s, users[i%len(users)])
		defer clients[i].close()
	}
	var next atomic.Int64
	var hits atomic.Int64
	lat := make([]time.Duration, total)
	var wg sync.WaitGroup
	start := time.Now()
	for ci := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				q := qs[(i*7919+ci)%len(qs)]
				t0 := time.Now()
				n, err := clients[ci].callQuery(q)
				lat[i] = time.Since(t0)
				if err != nil {
					t.Errorf("query_memory: %v", err)
					return
				}
				hits.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	return lat, float64(hits.Load()) / float64(total), time.Since(start)
}
