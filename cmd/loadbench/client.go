package main

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/picard-mcp/picard/internal/mcpload"
)

// mcpClient is the bench's thin MCP client.
type mcpClient = mcpload.Client

// newMCPClient makes a client with the run's HTTP client (-http): every
// client of a run, the bare server's included, uses the same one.
func newMCPClient(o Options, url, bearer string, stateless bool) *mcpClient {
	return mcpload.NewWith(url, bearer, stateless, o.HTTP)
}

// drive runs op on every client concurrently for d and collects latencies.
// op gets the client and its index.
func drive(ctx context.Context, clients []*mcpClient, d time.Duration, op func(*mcpClient, int) error) Result {
	var (
		mu       sync.Mutex
		all      []time.Duration
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			n := 0
			var first string
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				err := op(cl, i)
				lat = append(lat, time.Since(t0))
				if err != nil {
					n++
					if first == "" {
						first = err.Error()
					}
				}
			}
			mu.Lock()
			all = append(all, lat...)
			errs += n
			if firstErr == "" {
				firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := Result{Requests: len(all), Errors: errs, Elapsed: time.Since(start), FirstError: firstErr}
	slices.Sort(all)
	if len(all) > 0 {
		r.P50 = all[len(all)*50/100]
		r.P99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return r
}

// ms formats a latency in milliseconds.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
}

// us formats a CPU time per request in microseconds.
func us(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return strconv.FormatInt(d.Microseconds(), 10) + " µs"
}
