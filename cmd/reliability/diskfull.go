package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	_ "modernc.org/sqlite" // integrity_check of the data dir's databases
)

// setFileSizeLimit sets the soft RLIMIT_FSIZE of a running process (bytes;
// unix.RLIM_INFINITY lifts it). With a limit of 0 the kernel refuses every
// write to a regular file with EFBIG (the process's SIGXFSZ is ignored by
// the Go runtime), exactly what a full or read-only disk does to SQLite's
// writes, for any user: unlike chmod it also holds for root, and unlike a
// small tmpfs it needs no mount privileges. Pipes and sockets are not files:
// the server still logs and answers.
func setFileSizeLimit(pid int, limit uint64) error {
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &old); err != nil {
		return fmt.Errorf("read RLIMIT_FSIZE of %d: %w", pid, err)
	}
	if limit > old.Max {
		limit = old.Max
	}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: old.Max}, nil); err != nil {
		return fmt.Errorf("set RLIMIT_FSIZE of %d: %w", pid, err)
	}
	return nil
}

// fullDiskPhase is what one window of the disk-full scenario saw.
type fullDiskPhase struct {
	writes, acked, typed, other atomic.Int64 // submit attempts; acknowledged; refused with the storage error; failed otherwise
	restWrites, rest507         atomic.Int64 // REST submits; answered 507 with the storage error
	reads, readErrs             atomic.Int64
	slowest                     atomic.Int64 // longest write call, ns
	firstOther                  atomic.Value // string
}

// storageRefusal is the start of the message a write gets while the data
// dir refuses writes.
const storageRefusal = "storage unavailable"

// diskFull: clients write and read; the server's data dir stops accepting
// writes (RLIMIT_FSIZE 0 on the server process) for o.Duration; writes must
// fail fast with a typed storage error (MCP tool error, REST 507), reads
// keep working; then the limit is lifted and writes succeed again without a
// restart. Every acknowledged write is present and searchable, and SQLite's
// integrity_check passes on the data dir's databases.
func diskFull(ctx context.Context, o Options) Row {
	row := Row{Scenario: "data dir refuses writes (disk full)"}
	f, err := bootConnected(ctx, o, "")
	defer f.close()
	if err != nil {
		row.Err = err
		return row
	}
	s, users, conns, c, hc := f.s, f.users, f.conns, f.c, f.hc
	var acked ackLog
	var phases [3]fullDiskPhase // before, full, after
	var phase atomic.Int32
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	half := (len(conns) + 1) / 2
	plain := &http.Client{Timeout: 30 * time.Second} // 507s are expected here: not counted as 5xx
	for i, m := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; wctx.Err() == nil; n++ {
				p := &phases[phase.Load()]
				c.ops.Add(1)
				if i >= half { // readers: MCP list and search, REST list
					p.reads.Add(1)
					var err error
					switch n % 3 {
					case 0:
						err = m.call(wctx, "get_memories", map[string]any{"limit": 20}, nil)
					case 1:
						_, err = m.finds(wctx, "lighthouse", "")
					default:
						_, err = postJSON(wctx, hc, s.url()+"/api/tools", "Bearer "+m.u.access, map[string]any{"tool": "get_memories", "data": map[string]any{"limit": 20}}, nil)
					}
					if err != nil && wctx.Err() == nil {
						p.readErrs.Add(1)
						p.firstOther.CompareAndSwap(nil, "read: "+err.Error())
					}
					time.Sleep(5 * time.Millisecond)
					continue
				}
				code := "rc" + randHex(6)
				text := "reliability note " + code + " about the lighthouse"
				t0 := time.Now()
				cctx, cancel := context.WithTimeout(wctx, 15*time.Second)
				var mem memory
				var err error
				rest := n%4 == 3
				if rest {
					p.restWrites.Add(1)
					err = restSubmit(cctx, plain, s.url(), m.u.access, text, &mem, p)
				} else {
					err = m.call(cctx, "submit_memory", map[string]any{"text": text, "permission": "private"}, &mem)
				}
				cancel()
				if d := int64(time.Since(t0)); d > p.slowest.Load() {
					p.slowest.Store(d)
				}
				p.writes.Add(1)
				switch {
				case err == nil && mem.ID != "":
					p.acked.Add(1)
					c.acked.Add(1)
					acked.add(ackedWrite{id: mem.ID, code: code, owner: m.u.id})
				case wctx.Err() != nil:
				case errors.Is(err, errToolFailed) && strings.Contains(err.Error(), storageRefusal),
					errors.Is(err, errStorage507):
					p.typed.Add(1)
					time.Sleep(20 * time.Millisecond) // a client backing off
				default:
					p.other.Add(1)
					p.firstOther.CompareAndSwap(nil, fmt.Sprintf("write: %v", err))
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	pid := s.cmd.Process.Pid
	time.Sleep(o.Duration / 2)
	phase.Store(1)
	if err := setFileSizeLimit(pid, 0); err != nil {
		stop()
		wg.Wait()
		row.Err = err
		return row
	}
	time.Sleep(o.Duration)
	if err := setFileSizeLimit(pid, unix.RLIM_INFINITY); err != nil {
		stop()
		wg.Wait()
		row.Err = err
		return row
	}
	phase.Store(2)
	time.Sleep(o.Duration / 2)
	stop()
	wg.Wait()
	row.Ops, row.Acked, row.FiveXX = c.ops.Load(), c.acked.Load(), c.fiveXX.Load()
	row.Lost, row.Note, row.Err = verify(ctx, s.url(), users, acked.all(), 60*time.Second)
	full, after := &phases[1], &phases[2]
	row.Degraded = full.typed.Load()
	row.Note += fmt.Sprintf("; while full: %d writes, %d refused with the typed storage error (%d of %d REST as 507), %d acknowledged, %d other failures, slowest %s; %d reads, %d failed; after: %d of %d writes acknowledged",
		full.writes.Load(), full.typed.Load(), full.rest507.Load(), full.restWrites.Load(), full.acked.Load(), full.other.Load(),
		time.Duration(full.slowest.Load()).Round(time.Millisecond), full.reads.Load(), full.readErrs.Load(), after.acked.Load(), after.writes.Load())
	integrity, ierr := integrityCheck(ctx, s.dataDir)
	row.Note += "; integrity_check " + integrity
	for i := range phases {
		if v, ok := phases[i].firstOther.Load().(string); ok {
			row.Note += fmt.Sprintf("; first unexpected failure in phase %d: %s", i, v)
		}
	}
	row.Panics = s.panics()
	if line := firstLineWith(s.out.String(), "ERROR"); line != "" {
		row.Note += "; first server error: " + line
	}
	switch {
	case row.Err != nil:
	case ierr != nil:
		row.Err = ierr
	case full.typed.Load() == 0:
		row.Err = errors.New("no write was refused while the data dir refused writes: the fault did not take")
	case full.other.Load() > 0 || phases[0].other.Load() > 0 || after.other.Load() > 0:
		row.Err = errors.New("writes failed with something other than the typed storage error")
	case full.restWrites.Load() > 0 && full.rest507.Load() == 0:
		row.Err = errors.New("REST writes were not answered 507 while the data dir refused writes")
	case full.readErrs.Load() > 0 || phases[0].readErrs.Load() > 0 || after.readErrs.Load() > 0:
		row.Err = errors.New("reads failed")
	case after.acked.Load() == 0 || after.typed.Load() > after.acked.Load():
		row.Err = errors.New("writes did not recover after the data dir accepted writes again")
	}
	return row
}

var errStorage507 = errors.New("507 storage unavailable")

// restSubmit is submit_memory over POST /api/tools; a 507 with the storage
// error is errStorage507 and counted in p.
func restSubmit(ctx context.Context, hc *http.Client, base, access, text string, out *memory, p *fullDiskPhase) error {
	body, _ := json.Marshal(map[string]any{"tool": "submit_memory", "data": map[string]any{"text": text, "permission": "private"}})
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/tools", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusInsufficientStorage && strings.Contains(string(rb), storageRefusal) {
		p.rest507.Add(1)
		return errStorage507
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("REST submit: %d %s", resp.StatusCode, rb)
	}
	return json.Unmarshal(rb, out)
}

// integrityCheck runs PRAGMA integrity_check on the data dir's SQLite
// databases (read-only, next to the running server).
func integrityCheck(ctx context.Context, dataDir string) (string, error) {
	var results []string
	for _, name := range []string{"data.db", "auxiliary.db"} {
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, name)+"?mode=ro")
		if err != nil {
			return "", err
		}
		var res string
		err = db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res)
		db.Close()
		if err != nil {
			return "", fmt.Errorf("integrity_check %s: %w", name, err)
		}
		results = append(results, name+" "+res)
		if res != "ok" {
			return strings.Join(results, ", "), fmt.Errorf("integrity_check %s: %s", name, res)
		}
	}
	return strings.Join(results, ", "), nil
}

// firstLineWith is the first line of out containing sub, shortened.
func firstLineWith(out, sub string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, sub) {
			if len(line) > 300 {
				line = line[:300] + "…"
			}
			return line
		}
	}
	return ""
}
