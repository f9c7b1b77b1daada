// Command loadbench measures Picard's MCP hot path against a bare mcp-go
// server in the same run.
//
// It starts the real `picard serve` (this binary re-executed as picard) on
// a free loopback port with a temporary data directory (pgvector in a
// throw-away database when -dsn or PICARD_TEST_PG_DSN is set), signs in the
// superuser, registers a confidential client, creates users and their
// tokens through /api/user-tokens/user-token, seeds memories with
// submit_memory over MCP, then drives real HTTP `tools/call` requests (C
// keep-alive connections for D seconds each) and prints req/s, p50, p99 and
// errors per workload. A bare mcp-go server with one trivial tool, on the
// same streamable HTTP transport and in its own process, is measured in the
// same run, before and after Picard's lines; every Picard line is printed
// as a ratio of the two together. Both stateful
// and PICARD_MCP_STATELESS modes are measured.
//
//	go run ./cmd/loadbench                       # quick defaults
//	go run ./cmd/loadbench -n 10000 -c 50 -d 5s  # the targets
//	go run ./cmd/loadbench -profile /tmp/prof    # CPU + allocation profiles per line
//	go run ./cmd/loadbench -n 100000 -data /tmp/lb100k  # seed once, reuse in later runs
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/picard-mcp/picard/internal/mcpload"
	"github.com/picard-mcp/picard/platform"
)

// childRole is set in the environment of a re-executed child.
const childRole = "LOADBENCH_ROLE"

func main() {
	switch os.Getenv(childRole) {
	case "picard":
		if err := platform.Run(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "picard:", err)
			os.Exit(1)
		}
		return
	case "bare":
		if err := runBare(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "bare:", err)
			os.Exit(1)
		}
		return
	}
	var o Options
	flag.IntVar(&o.Memories, "n", 1000, "memories to seed")
	flag.StringVar(&o.Seed, "seed", "import", "how to seed: import (each user's POST /api/memories/import) or submit (submit_memory over MCP, -c connections)")
	flag.IntVar(&o.Users, "users", 10, "users (each with its own token)")
	flag.IntVar(&o.Conns, "c", 50, "concurrent keep-alive connections")
	flag.DurationVar(&o.Duration, "d", 3*time.Second, "duration of each workload")
	flag.StringVar(&o.Workloads, "workloads", strings.Join(allWorkloads, ","), "comma-separated workloads")
	flag.StringVar(&o.Modes, "modes", "stateful,stateless", "comma-separated MCP modes")
	flag.StringVar(&o.DSN, "dsn", os.Getenv("PICARD_TEST_PG_DSN"), "PostgreSQL+pgvector DSN (a throw-away database is created in it); empty = embedded store")
	flag.StringVar(&o.ProfileDir, "profile", "", "directory for CPU and allocation profiles of Picard during each workload")
	flag.BoolVar(&o.Trace, "trace", false, "with -profile, also save an execution trace of each workload (go tool trace)")
	flag.StringVar(&o.DataDir, "data", "", "keep Picard's data here (embedded store only); when it already holds a run's data, reuse it instead of seeding")
	httpClient := flag.String("http", "fast", "the load generator's HTTP client for every connection of the run, the bare server's included: fast (fasthttp, the least CPU taken from the server on the shared cores) or net (net/http)")
	clientProfile := flag.String("client-profile", "", "write a CPU profile of this process, the load generator, to this file")
	flag.Parse()
	var err error
	if o.HTTP, err = mcpload.ParseHTTP(*httpClient); err != nil {
		fmt.Fprintln(os.Stderr, "loadbench: -http:", err)
		os.Exit(2)
	}
	var prof *os.File
	if *clientProfile != "" {
		if prof, err = os.Create(*clientProfile); err == nil {
			err = pprof.StartCPUProfile(prof)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadbench: client profile:", err)
			os.Exit(1)
		}
	}
	err = Run(context.Background(), os.Stdout, o)
	if prof != nil {
		pprof.StopCPUProfile()
		_ = prof.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

// Options are the bench's knobs.
type Options struct {
	Memories, Users, Conns int
	Duration               time.Duration
	Workloads, Modes       string
	DSN                    string
	ProfileDir             string
	Trace                  bool
	Seed                   string
	// DataDir, when set, is kept after the run, and a later run with the
	// same -users reuses what an earlier one seeded there.
	DataDir string
	// HTTP is the load generator's HTTP client, for all its connections.
	HTTP mcpload.HTTP
}

// Result is one line of the table.
type Result struct {
	Mode, Workload string
	Requests       int
	Errors         int
	Elapsed        time.Duration
	P50, P99       time.Duration
	FirstError     string
	// CPU is the server process's CPU time during the line (0: unknown).
	CPU time.Duration
	// ClientCPU is this process's (the load generator's) CPU time while it
	// drove the line (0: unknown).
	ClientCPU time.Duration
	// LogRows is how many access-log rows the line wrote (-1: unknown).
	LogRows int64
}

// CPUPerRequest is the server's CPU time per request: unlike req/s it does
// not depend on how much of the shared machine the server was given.
func (r Result) CPUPerRequest() time.Duration {
	if r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// RPS is requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Run runs the whole bench and writes the table to w.
func Run(ctx context.Context, w io.Writer, o Options) error {
	if o.Users < 1 || o.Conns < 1 || o.Duration <= 0 {
		return fmt.Errorf("need -users ≥ 1, -c ≥ 1 and -d > 0")
	}
	if o.Seed == "" {
		o.Seed = "import"
	}
	if o.Seed != "import" && o.Seed != "submit" {
		return fmt.Errorf("unknown -seed %q (import, submit)", o.Seed)
	}
	workloads := splitList(o.Workloads)
	for _, wl := range workloads {
		if !isWorkload(wl) {
			return fmt.Errorf("unknown workload %q (have %s)", wl, strings.Join(allWorkloads, ", "))
		}
	}
	modes := splitList(o.Modes)
	for _, m := range modes {
		if m != "stateful" && m != "stateless" {
			return fmt.Errorf("unknown mode %q (stateful, stateless)", m)
		}
	}
	fmt.Fprintf(w, "loadbench: %d memories, %d users, %d connections, %v per line, store %s, client %s; load average %s\n",
		o.Memories, o.Users, o.Conns, o.Duration, map[bool]string{true: "pgvector", false: "embedded"}[o.DSN != ""], httpName(o.HTTP), loadAverage())

	env, err := newEnvironment(ctx, o)
	if err != nil {
		return err
	}
	defer env.Close()

	var results []Result
	var mem []memRow
	var seed seeding
	bare := map[string]Result{}
	for i, mode := range modes {
		b, err := measureBare(ctx, o, mode)
		if err != nil {
			return err
		}
		results = append(results, b)

		p, err := env.startPicard(ctx, mode == "stateless")
		if err != nil {
			return err
		}
		if i == 0 {
			start := time.Now()
			if err := env.setup(ctx, p); err != nil {
				p.Stop()
				return err
			}
			el := time.Since(start)
			if env.reused {
				fmt.Fprintf(w, "reused the memories seeded earlier in %s\n", o.DataDir)
			} else {
				seed = seeding{o.Memories, el}
				how := map[string]string{"import": "POST /api/memories/import", "submit": "submit_memory"}[o.Seed]
				fmt.Fprintf(w, "seeded %d memories for %d users in %v (%.0f memories/s through %s, until indexed; load average %s)\n",
					o.Memories, o.Users, el.Round(time.Millisecond), float64(o.Memories)/el.Seconds(), how, loadAverage())
			}
			if m, ok := env.sampleMem(ctx, p); ok {
				mem = append(mem, memRow{mode, map[bool]string{true: "start", false: "seeding"}[env.reused], m})
			}
		} else if m, ok := env.sampleMem(ctx, p); ok {
			mem = append(mem, memRow{mode, "start", m})
		}
		for _, wl := range workloads {
			r, err := env.measure(ctx, p, mode, wl)
			if err != nil {
				p.Stop()
				return err
			}
			results = append(results, r)
			if m, ok := env.sampleMem(ctx, p); ok {
				mem = append(mem, memRow{mode, wl, m})
			}
		}
		p.Stop()
		// the bare server again after Picard: the ratio's base is both
		// runs together, which evens out load that came and went meanwhile
		b2, err := measureBare(ctx, o, mode)
		if err != nil {
			return err
		}
		b2.Workload += " (again)"
		results = append(results, b2)
		bare[mode] = Result{Mode: mode, Workload: b.Workload, Requests: b.Requests + b2.Requests, Elapsed: b.Elapsed + b2.Elapsed, CPU: b.CPU + b2.CPU,
			ClientCPU: b.ClientCPU + b2.ClientCPU}
	}
	fmt.Fprintln(w)
	printTable(w, results, bare, o.HTTP)
	fmt.Fprintf(w, "load average at the end: %s\n", loadAverage())
	printMemTable(w, mem)
	printTargets(w, judgeTargets(results, bare, o.Memories, seed, mem), bare)
	return nil
}

// httpName names the load generator's HTTP client for the output.
func httpName(h mcpload.HTTP) string {
	if h == mcpload.FastHTTP {
		return "fasthttp (-http fast)"
	}
	return "net/http (-http net)"
}

// loadAverage is the 1-minute load average of the machine ("?" when
// /proc/loadavg cannot be read): figures of a shared machine need it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
