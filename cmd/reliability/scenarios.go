package main

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/picard-mcp/picard/internal/faultproxy"
)

// Row is one line of the reliability table.
type Row struct {
	Scenario string
	Ops      int64 // requests sent
	Acked    int64 // writes acknowledged
	Lost     int64 // acknowledged writes missing or unsearchable afterwards
	FiveXX   int64 // HTTP 5xx answers
	Panics   int   // "panic:" in the server's output
	Degraded int64 // typed "unavailable" answers while a dependency was down
	// soak only: RSS growth after warm-up; goroutines before → after the load
	RSSGrowth, Goroutines string
	// RSSOver: the soak's RSS grew by Options.MaxRSSGrowth or more
	RSSOver bool
	Note    string
	Err     error
}

func (r Row) ok() bool {
	return r.Err == nil && r.Lost == 0 && r.Panics == 0 && r.FiveXX == 0 && !r.RSSOver
}

// ackedWrite is an acknowledged submit and the code that finds it.
type ackedWrite struct{ id, code, owner string }

// writers submits memories from every connection until ctx ends,
// recording the acknowledged ones.
func writers(ctx context.Context, conns []*mcpConn, c *counters, acked *ackLog) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, m := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code := "rc" + randHex(6)
				c.ops.Add(1)
				var mem memory
				err := m.call(ctx, "submit_memory", map[string]any{"text": "reliability note " + code + " about the lighthouse", "permission": "private"}, &mem)
				if err == nil && mem.ID != "" {
					c.acked.Add(1)
					acked.add(ackedWrite{id: mem.ID, code: code, owner: m.u.id})
				} else if ctx.Err() == nil && !errors.Is(err, errToolFailed) {
					time.Sleep(20 * time.Millisecond) // the server is gone: don't spin
				}
			}
		}()
	}
	return &wg
}

type ackLog struct {
	mu sync.Mutex
	w  []ackedWrite
}

func (a *ackLog) add(w ackedWrite) { a.mu.Lock(); a.w = append(a.w, w); a.mu.Unlock() }
func (a *ackLog) all() []ackedWrite {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]ackedWrite(nil), a.w...)
}

// verify checks every acknowledged write: present with its full text, and
// found by query_memory (waiting up to wait for the outbox to catch up).
// It returns the number lost.
func verify(ctx context.Context, base string, users []user, acked []ackedWrite, wait time.Duration) (int64, string, error) {
	all, err := connectAll(ctx, base, users, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return 0, "", fmt.Errorf("reconnect: %w", err)
	}
	defer closeAll(all)
	conns := map[string]*mcpConn{}
	for _, m := range all {
		conns[m.u.id] = m
	}
	stored := map[string]string{}
	for _, m := range conns {
		all, err := m.listAll(ctx)
		if err != nil {
			return 0, "", err
		}
		for id, text := range all {
			if !strings.HasPrefix(text, "reliability note rc") && !isSeedText(text) {
				return 0, "", fmt.Errorf("a half-written or foreign record is visible: %s %q", id, text)
			}
			stored[id] = text
		}
	}
	var lost, unsearchable int64
	deadline := time.Now().Add(wait)
	for _, w := range acked {
		text, ok := stored[w.id]
		if !ok || !strings.Contains(text, w.code) {
			lost++
			continue
		}
		for {
			found, err := conns[w.owner].finds(ctx, w.code, w.id)
			if err == nil && found {
				break
			}
			if time.Now().After(deadline) {
				unsearchable++
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	note := fmt.Sprintf("%d stored", len(stored))
	if unsearchable > 0 {
		note += fmt.Sprintf(", %d not searchable", unsearchable)
	}
	return lost + unsearchable, note, nil
}

// crash: writers on every connection, kill -9 mid-stream, restart, verify.
func crash(ctx context.Context, o Options, name, dsn string) Row {
	row := Row{Scenario: name}
	f, err := bootConnected(ctx, o, dsn)
	defer f.close()
	if err != nil {
		row.Err = err
		return row
	}
	s, users, conns, c := f.s, f.users, f.conns, f.c
	var acked ackLog
	wctx, stopWriters := context.WithCancel(ctx)
	wg := writers(wctx, conns, c, &acked)
	time.Sleep(o.Duration)
	s.kill9() // while the writers are mid-request
	stopWriters()
	wg.Wait()
	panics := s.panics()
	if err := s.start(ctx); err != nil {
		row.Err = fmt.Errorf("restart after kill -9: %w", err)
		return row
	}
	row.Ops, row.Acked, row.FiveXX = c.ops.Load(), c.acked.Load(), c.fiveXX.Load()
	row.Lost, row.Note, row.Err = verify(ctx, s.url(), users, acked.all(), 60*time.Second)
	row.Panics = panics + s.panics()
	return row
}

// outage: pgvector behind a proxy that is cut for o.Outage while writers
// and searchers run; writes must stay acknowledged, searches answer a
// typed "unavailable", /readyz reports it, and the backlog is indexed.
func outage(ctx context.Context, o Options, dsn string) Row {
	row := Row{Scenario: "vector store outage (pgvector)"}
	p, proxied, err := pgProxy(dsn)
	if err != nil {
		row.Err = err
		return row
	}
	defer p.Close()
	f, err := bootConnected(ctx, o, proxied)
	defer f.close()
	if err != nil {
		row.Err = err
		return row
	}
	s, users, conns, c := f.s, f.users, f.conns, f.c
	var acked ackLog
	wctx, stop := context.WithCancel(ctx)
	half := len(conns) / 2
	wg := writers(wctx, conns[:half], c, &acked)
	var degraded, searchErrs atomic.Int64
	for _, m := range conns[half:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				c.ops.Add(1)
				_, err := m.finds(wctx, "lighthouse", "")
				switch {
				case err == nil:
				case errors.Is(err, errToolFailed) && strings.Contains(err.Error(), "unavailable"):
					degraded.Add(1)
				case wctx.Err() == nil:
					searchErrs.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	time.Sleep(o.Duration / 2)
	p.Down()
	readyzDown := false
	cutUntil := time.Now().Add(o.Outage)
	for time.Now().Before(cutUntil) {
		if !ready(ctx, s.url()) {
			readyzDown = true
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := p.Up(); err != nil {
		stop()
		wg.Wait()
		row.Err = err
		return row
	}
	time.Sleep(o.Duration / 2)
	stop()
	wg.Wait()
	row.Ops, row.Acked, row.FiveXX, row.Degraded = c.ops.Load(), c.acked.Load(), c.fiveXX.Load(), degraded.Load()
	row.Lost, row.Note, row.Err = verify(ctx, s.url(), users, acked.all(), 90*time.Second)
	if row.Err == nil && !readyzDown {
		row.Err = errors.New("/readyz never reported the outage")
	}
	if row.Err == nil && searchErrs.Load() > 0 {
		row.Err = fmt.Errorf("%d searches failed with something other than a typed unavailable error", searchErrs.Load())
	}
	row.Note += fmt.Sprintf("; outage %s, /readyz down seen", o.Outage)
	row.Panics = s.panics()
	if !row.ok() {
		path := filepath.Join(o.Dir, "outage-server.log")
		if os.WriteFile(path, []byte(s.out.String()), 0o600) == nil {
			row.Note += "; server log: " + path
		}
		if su, err := superuserToken(ctx, s.url()); err == nil {
			g := filepath.Join(o.Dir, "outage-goroutines.txt")
			if s.saveProfile(ctx, su, "goroutine?debug=2", g) == nil {
				row.Note += "; goroutines: " + g
			}
		}
	}
	return row
}

// soak: a mixed MCP + REST workload for o.Soak. RSS is sampled all along
// (every o.Soak/60); its growth is the mean of the last fifth of the
// samples after a warm-up of 40% of the run (pools, SQLite's bounded page
// caches and the Go heap reaching their working size) over the mean of the
// first fifth after it, and fails the row at o.MaxRSSGrowth percent or
// more when that is set. The Go heap in use after a forced GC (pprof) is
// read at the warm-up's end and at the end too, which tells a leak from
// the allocator and caches. Goroutines are counted before the connections
// open and again after they closed: they must return to the baseline.
// Every acknowledged write is present afterwards.
func soak(ctx context.Context, o Options, dsn string) Row {
	if o.SoakConn == 0 {
		o.SoakConn = o.Clients
	}
	row := Row{Scenario: fmt.Sprintf("soak %d conns × %s", o.SoakConn, o.Soak)}
	if dsn != "" {
		row.Scenario += " (pgvector)"
	}
	s, users, err := boot(ctx, o, dsn, nil, o.SoakConn)
	if s != nil {
		defer s.stop()
	}
	if err != nil {
		row.Err = err
		return row
	}
	su, err := superuserToken(ctx, s.url())
	if err != nil {
		row.Err = err
		return row
	}
	seeded := ""
	if o.SoakSeed > 0 {
		start := time.Now()
		if err := seedSoak(ctx, s.url(), users, o.SoakSeed); err != nil {
			row.Err = err
			return row
		}
		seeded = fmt.Sprintf("%d memories imported first (%s); ", o.SoakSeed, time.Since(start).Round(time.Second))
	}
	var c counters
	hc := httpClient(&c)
	// The baseline: after one call of each kind on every connection (lazy
	// workers, such as the access log's writer, start on first use), with
	// those connections closed again.
	conns, err := connectAll(ctx, s.url(), users, hc)
	if err != nil {
		row.Err = err
		return row
	}
	for _, m := range conns {
		var mem memory
		err = errors.Join(err, m.call(ctx, "submit_memory", map[string]any{"text": "reliability note rc" + randHex(6) + " warm-up", "permission": "private"}, &mem),
			m.call(ctx, "get_memories", map[string]any{"limit": 20}, nil))
		_, ferr := m.finds(ctx, "reliability", "")
		_, rerr := postJSON(ctx, hc, s.url()+"/api/tools", "Bearer "+m.u.access, map[string]any{"tool": "get_memories", "data": map[string]any{"limit": 20}}, nil)
		err = errors.Join(err, ferr, rerr)
	}
	closeAll(conns)
	hc.CloseIdleConnections()
	if err != nil {
		row.Err = fmt.Errorf("warm-up calls: %w", err)
		return row
	}
	time.Sleep(time.Second)
	base, err := s.stats(ctx, su)
	if err != nil {
		row.Err = err
		return row
	}
	conns, err = connectAll(ctx, s.url(), users, hc)
	if err != nil {
		row.Err = err
		return row
	}
	var acked ackLog
	var failures atomic.Int64
	every := max(o.Soak/60, 100*time.Millisecond)
	rss := sampleRSS(every, s.rssKB)
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, m := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7)) //nolint:gosec // a workload mix, not a secret
			for wctx.Err() == nil {
				c.ops.Add(1)
				var err error
				switch n := rng.IntN(100); {
				case n < 10:
					code := "rc" + randHex(6)
					var mem memory
					if err = m.call(wctx, "submit_memory", map[string]any{"text": "reliability note " + code + " soak", "permission": "private"}, &mem); err == nil {
						c.acked.Add(1)
						acked.add(ackedWrite{id: mem.ID, code: code, owner: m.u.id})
					}
				case n < 30:
					_, err = m.finds(wctx, "reliability soak", "")
				case n < 65:
					err = m.call(wctx, "get_memories", map[string]any{"limit": 20}, nil)
				default: // the same read over REST
					_, err = postJSON(wctx, hc, s.url()+"/api/tools", "Bearer "+m.u.access, map[string]any{"tool": "get_memories", "data": map[string]any{"limit": 20}}, nil)
				}
				if err != nil && wctx.Err() == nil {
					failures.Add(1)
				}
			}
		}()
	}
	warm := o.Soak * 2 / 5
	time.Sleep(warm)
	warmStats, err1 := s.stats(ctx, su)
	ackedWarm := c.acked.Load()
	_ = s.saveProfile(ctx, su, "heap?gc=1", filepath.Join(o.Dir, "soak-heap-warm.pprof"))
	time.Sleep(o.Soak - warm)
	samples := rss.Stop()
	endStats, err2 := s.stats(ctx, su)
	ackedEnd := c.acked.Load()
	_ = s.saveProfile(ctx, su, "heap?gc=1", filepath.Join(o.Dir, "soak-heap-end.pprof"))
	stop()
	wg.Wait()
	closeAll(conns)
	hc.CloseIdleConnections()
	// the server's handlers and sessions end once their clients are gone
	after, err3 := s.stats(ctx, su)
	for deadline := time.Now().Add(30 * time.Second); err3 == nil && after.goroutines > base.goroutines && time.Now().Before(deadline); {
		time.Sleep(250 * time.Millisecond)
		after, err3 = s.stats(ctx, su)
	}
	_ = s.saveProfile(ctx, su, "heap?gc=1", filepath.Join(o.Dir, "soak-heap-after.pprof"))
	row.Ops, row.Acked, row.FiveXX = c.ops.Load(), c.acked.Load(), c.fiveXX.Load()
	row.Lost, row.Note, row.Err = verify(ctx, s.url(), users, acked.all(), 60*time.Second)
	if err := errors.Join(err1, err2, err3); err != nil && row.Err == nil {
		row.Err = err
	}
	rssFrom, rssTo, growth, grown := rssGrowth(samples, int(warm/every))
	if grown {
		row.RSSGrowth = fmt.Sprintf("%+.1f%%", growth)
		if o.MaxRSSGrowth > 0 && growth >= o.MaxRSSGrowth {
			row.RSSOver = true
			row.RSSGrowth += fmt.Sprintf(" ≥ %g%%", o.MaxRSSGrowth)
		}
	}
	row.Goroutines = fmt.Sprintf("%d→%d", base.goroutines, after.goroutines)
	perMemory := ""
	if n := ackedEnd - ackedWarm; n > 0 {
		perMemory = fmt.Sprintf(", %.1f KB per memory written meanwhile (%d)", float64(endStats.heapInuse-warmStats.heapInuse)/1024/float64(n), n)
	}
	row.Note += fmt.Sprintf("; %sat the warm-up's end → at the end: Go runtime Sys %.0f→%.0f MB, RSS anonymous %d→%d MB, file-backed %d→%d MB; RSS after a %s warm-up: mean %d MB in the first fifth after it → %d MB in the last fifth (%s); RSS MB every %s: %s; Go heap in use after GC %.1f→%.1f MB (%s%s), %.1f MB after the load; goroutines %d before load, %d under load, %d after; %d failed requests",
		seeded, mb(warmStats.goSys), mb(endStats.goSys), warmStats.anonKB/1024, endStats.anonKB/1024, warmStats.fileKB/1024, endStats.fileKB/1024, warm, rssFrom/1024, rssTo/1024, orDash(row.RSSGrowth), (every * 5).Round(100*time.Millisecond), formatSeries(samples, 5), mb(warmStats.heapInuse), mb(endStats.heapInuse), pct(warmStats.heapInuse, endStats.heapInuse), perMemory, mb(after.heapInuse),
		base.goroutines, endStats.goroutines, after.goroutines, failures.Load())
	if row.Err == nil && failures.Load() > 0 {
		row.Err = fmt.Errorf("%d requests failed", failures.Load())
	}
	if row.Err == nil && after.goroutines > base.goroutines+goroutineSlack {
		before, afterPath := filepath.Join(o.Dir, "goroutines-before.txt"), filepath.Join(o.Dir, "goroutines-after.txt")
		_ = os.WriteFile(before, []byte(base.goroutineProfile), 0o600)
		_ = os.WriteFile(afterPath, []byte(after.goroutineProfile), 0o600)
		row.Err = fmt.Errorf("goroutines did not return to the baseline after the load: %d before, %d after (profiles: %s, %s)", base.goroutines, after.goroutines, before, afterPath)
	}
	row.Panics = s.panics()
	return row
}

// goroutineSlack is how many goroutines above the baseline still count as
// returned: background work that happens to run at the second count (a
// PocketBase cron job and its query, a goroutine just spawned). A leak per
// connection or per request would be tens to thousands.
const goroutineSlack = 5

func pct(from, to int64) string {
	if from <= 0 {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", float64(to-from)/float64(from)*100)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// pgProxy puts a faultproxy in front of the PostgreSQL of dsn and returns
// it with the DSN that goes through it.
func pgProxy(dsn string) (*faultproxy.Proxy, string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, "", err
	}
	p, err := faultproxy.New(u.Host)
	if err != nil {
		return nil, "", err
	}
	u.Host = p.Addr()
	return p, u.String(), nil
}

// rotation: memories written under K1; the server restarted with K2,K1;
// `picard keys rotate` runs against the live data dir while writers and
// readers continue; then the server restarts with K2 alone and every
// acknowledged memory, old and new, must be readable and searchable.
func rotation(ctx context.Context, o Options, dsn string) Row {
	row := Row{Scenario: "fernet key rotation under writes"}
	k1, k2 := fernetKey(), fernetKey()
	s, users, err := boot(ctx, o, dsn, []string{"PICARD_FERNET_KEYS=" + k1}, o.Clients)
	if s != nil {
		defer s.stop()
	}
	if err != nil {
		row.Err = err
		return row
	}
	var c counters
	var acked ackLog
	var panics int
	// phase runs writers (half the users) and readers that also update
	// expiry dates (the other half) for d,
	// calling during(), if set, half way through.
	var unreadable, readErrs atomic.Int64
	phase := func(d time.Duration, during func()) error {
		conns, err := connectAll(ctx, s.url(), users, httpClient(&c))
		if err != nil {
			return err
		}
		defer closeAll(conns)
		wctx, stop := context.WithCancel(ctx)
		half := (len(conns) + 1) / 2
		wg := writers(wctx, conns[:half], &c, &acked)
		for _, m := range conns[half:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for wctx.Err() == nil {
					c.ops.Add(1)
					var page struct {
						Memories []memory `json:"memories"`
					}
					err := m.call(wctx, "get_memories", map[string]any{"limit": 20}, &page)
					if err != nil {
						if wctx.Err() == nil {
							readErrs.Add(1)
						}
						continue
					}
					for _, mem := range page.Memories {
						if !strings.HasPrefix(mem.Text, "reliability note rc") {
							unreadable.Add(1)
						}
					}
					if len(page.Memories) > 0 {
						// change only the expiry: the server loads the row (maybe
						// still under K1) and saves it back while the rotation runs
						c.ops.Add(1)
						mem := page.Memories[rand.IntN(len(page.Memories))] //nolint:gosec // a workload pick
						if err := m.call(wctx, "update_memory", map[string]any{"memory_id": mem.ID, "expiration_date": "2099-01-01T00:00:00Z"}, nil); err != nil && wctx.Err() == nil {
							readErrs.Add(1)
						}
					}
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
		time.Sleep(d / 2)
		if during != nil {
			during()
		}
		time.Sleep(d / 2)
		stop()
		wg.Wait()
		return nil
	}
	restart := func(keys string) error {
		s.stop()
		panics += s.panics()
		s.out = nil
		s.env = []string{"PICARD_FERNET_KEYS=" + keys}
		return s.start(ctx)
	}
	// Readers and writers need users that own memories: the seed phase makes
	// every user a writer.
	if err := phaseAll(ctx, s, users, &c, &acked, o.Duration/2); err != nil {
		row.Err = fmt.Errorf("seed under K1: %w", err)
		return row
	}
	seeded := len(acked.all())
	if err := restart(k2 + "," + k1); err != nil {
		row.Err = fmt.Errorf("restart with K2,K1: %w", err)
		return row
	}
	var rotOut string
	var rotErr error
	var rotTook time.Duration
	if err := phase(o.Duration, func() {
		t0 := time.Now()
		rotOut, rotErr = s.command(ctx, "keys", "rotate")
		rotTook = time.Since(t0)
	}); err != nil {
		row.Err = err
		return row
	}
	if rotErr != nil {
		row.Err = fmt.Errorf("picard keys rotate while the server runs: %w\n%s", rotErr, tail(rotOut))
		return row
	}
	if err := restart(k2); err != nil {
		row.Err = fmt.Errorf("restart with K2 only: %w", err)
		return row
	}
	row.Ops, row.Acked, row.FiveXX = c.ops.Load(), c.acked.Load(), c.fiveXX.Load()
	row.Lost, row.Note, row.Err = verify(ctx, s.url(), users, acked.all(), 60*time.Second)
	summary := rotOut
	if i := strings.LastIndex(summary, "rotated "); i >= 0 {
		summary = strings.TrimSpace(summary[i:])
	}
	row.Note += fmt.Sprintf("; %d seeded under K1; keys rotate (%s, %s) during writes; %d unreadable reads, %d failed reads or updates",
		seeded, summary, rotTook.Round(time.Millisecond), unreadable.Load(), readErrs.Load())
	row.Lost += unreadable.Load()
	if row.Err == nil && readErrs.Load() > 0 {
		row.Err = fmt.Errorf("%d reads or updates failed", readErrs.Load())
	}
	row.Panics = panics + s.panics()
	return row
}

// phaseAll runs writers on every user's connection for d.
func phaseAll(ctx context.Context, s *server, users []user, c *counters, acked *ackLog, d time.Duration) error {
	conns, err := connectAll(ctx, s.url(), users, httpClient(c))
	if err != nil {
		return err
	}
	defer closeAll(conns)
	wctx, stop := context.WithCancel(ctx)
	wg := writers(wctx, conns, c, acked)
	time.Sleep(d)
	stop()
	wg.Wait()
	return nil
}

// fernetKey is a new random Fernet key (32 bytes, URL-safe base64).
func fernetKey() string {
	b := make([]byte, 32)
	_, _ = crand.Read(b)
	return base64.URLEncoding.EncodeToString(b)
}

// connectAll opens an MCP session for every user; closeAll ends them.
// fleet is a booted server with o.Clients users, each on its own MCP
// connection whose requests are counted in c.
type fleet struct {
	s     *server
	users []user
	c     *counters
	hc    *http.Client
	conns []*mcpConn
}

// bootConnected boots a server (dsn "" = embedded) and connects every user;
// close the fleet (also after an error) to end both.
func bootConnected(ctx context.Context, o Options, dsn string) (*fleet, error) {
	f := &fleet{c: &counters{}}
	var err error
	if f.s, f.users, err = boot(ctx, o, dsn, nil, o.Clients); err != nil {
		return f, err
	}
	f.hc = httpClient(f.c)
	f.conns, err = connectAll(ctx, f.s.url(), f.users, f.hc)
	return f, err
}

func (f *fleet) close() {
	closeAll(f.conns)
	if f.s != nil {
		f.s.stop()
	}
}

func connectAll(ctx context.Context, base string, users []user, hc *http.Client) ([]*mcpConn, error) {
	conns := make([]*mcpConn, 0, len(users))
	for _, u := range users {
		m, err := connect(ctx, base, u, hc)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, m)
	}
	return conns, nil
}

func closeAll(conns []*mcpConn) {
	for _, m := range conns {
		m.c.Close()
	}
}

// boot starts picard on dsn (with extra environment env) and connects n
// users: how every scenario begins. The server is returned for stopping
// even when a later step failed.
func boot(ctx context.Context, o Options, dsn string, env []string, n int) (*server, []user, error) {
	s, err := newServer(o, dsn)
	if err != nil {
		return nil, nil, err
	}
	s.env = env
	if err := s.start(ctx); err != nil {
		return s, nil, err
	}
	users, err := setupUsers(ctx, s.url(), n)
	return s, users, err
}
