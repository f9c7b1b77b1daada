package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Issue 9's targets, as the bench judges them.
const (
	targetListShare    = 0.35 // get_memories' req/s over bare mcp-go's
	targetListP99      = 25 * time.Millisecond
	targetSubmitRPS    = 1500
	targetSubmitP99    = 50 * time.Millisecond
	targetMixedRPS     = 5000
	targetMixedAt      = 10_000 // memories
	targetSeedAt       = 100_000
	targetSeedTime     = 2 * time.Minute
	targetRSSAt        = 100_000
	targetRSSMiB       = 300
	targetReferenceRPS = 28_000 // bare mcp-go's req/s where the issue set them
)

// seeding is what the run's seeding took (zero Elapsed: it reused
// earlier data).
type seeding struct {
	Memories int
	Elapsed  time.Duration
}

// target is one target's verdict for one mode (or the run).
type target struct {
	what, mode, measured string
	met                  bool
	note                 string // why the verdict holds only loosely (another size of data)
}

// judgeTargets holds the run's lines against issue 9's targets. A line
// that did not run is left out; a target set for another number of
// memories is judged and says so.
func judgeTargets(results []Result, bare map[string]Result, memories int, seed seeding, mem []memRow) []target {
	var out []target
	sizeNote := func(at int) string {
		if memories == at {
			return ""
		}
		return fmt.Sprintf("the target is for %dk memories, this run has %d", at/1000, memories)
	}
	for _, r := range results {
		switch r.Workload {
		case "get_memories":
			b, ok := bare[r.Mode]
			if !ok || b.RPS() == 0 {
				continue
			}
			share := r.RPS() / b.RPS()
			out = append(out, target{
				what: fmt.Sprintf("get_memories ≥ %.0f%% of bare, p99 ≤ %s", 100*targetListShare, ms(targetListP99)), mode: r.Mode,
				measured: fmt.Sprintf("%.0f%% (%.0f/s), p99 %s", 100*share, r.RPS(), ms(r.P99)),
				met:      share >= targetListShare && r.P99 <= targetListP99 && r.Errors == 0,
			})
		case "submit_memory":
			out = append(out, target{
				what: fmt.Sprintf("submit_memory ≥ %d/s, p99 ≤ %s, 0 errors", targetSubmitRPS, ms(targetSubmitP99)), mode: r.Mode,
				measured: fmt.Sprintf("%.0f/s, p99 %s, %d errors", r.RPS(), ms(r.P99), r.Errors),
				met:      r.RPS() >= targetSubmitRPS && r.P99 <= targetSubmitP99 && r.Errors == 0,
			})
		case "mixed":
			out = append(out, target{
				what: fmt.Sprintf("mixed ≥ %d/s at %dk memories", targetMixedRPS, targetMixedAt/1000), mode: r.Mode,
				measured: fmt.Sprintf("%.0f/s, %d errors", r.RPS(), r.Errors),
				met:      r.RPS() >= targetMixedRPS && r.Errors == 0,
				note:     sizeNote(targetMixedAt),
			})
		}
	}
	if seed.Elapsed > 0 && seed.Memories > 0 {
		// at the same rate, 100k memories would take this long
		at := time.Duration(float64(seed.Elapsed) * targetSeedAt / float64(seed.Memories))
		measured := fmt.Sprintf("%v", seed.Elapsed.Round(100*time.Millisecond))
		if seed.Memories != targetSeedAt {
			measured += fmt.Sprintf(" for %d (%v at this rate)", seed.Memories, at.Round(100*time.Millisecond))
		}
		out = append(out, target{what: fmt.Sprintf("seeding %dk memories < %v", targetSeedAt/1000, targetSeedTime), mode: "—",
			measured: measured, met: at < targetSeedTime, note: sizeNote(targetSeedAt)})
	}
	if at, end, ok := peakAtSeeded(mem); ok {
		measured := fmt.Sprintf("peak %d MiB", at/1024)
		if end > at {
			measured += fmt.Sprintf(" (%d MiB after the write lines added memories)", end/1024)
		}
		out = append(out, target{what: fmt.Sprintf("RSS < %d MB at %dk memories", targetRSSMiB, targetRSSAt/1000), mode: "—",
			measured: measured, met: at/1024 < targetRSSMiB, note: sizeNote(targetRSSAt)})
	}
	return out
}

// peakAtSeeded is Picard's peak RSS (KiB) while it held the memories
// seeded and no more: the first process's samples up to the first write
// line (submit_memory, update_memory and mixed add memories); end is the
// highest peak of the run. ok is false without samples.
func peakAtSeeded(mem []memRow) (at, end int64, ok bool) {
	seeded := true
	for i, m := range mem {
		switch {
		case i > 0 && m.Mode != mem[0].Mode, m.Step == "submit_memory", m.Step == "update_memory", m.Step == "mixed":
			seeded = false
		}
		if seeded {
			at = max(at, m.PeakKB)
		}
		end = max(end, m.PeakKB)
	}
	return at, end, at > 0
}

// printTargets writes the verdicts, and where bare mcp-go stood in this
// run beside where it stood when the targets were set: the absolute
// ones (submit_memory, mixed, seeding) move with the machine's speed.
func printTargets(w io.Writer, ts []target, bare map[string]Result) {
	if len(ts) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "issue 9 target\tmode\tthis run\tverdict")
	for _, t := range ts {
		v := "met"
		if !t.met {
			v = "NOT MET"
		}
		if t.note != "" {
			v += " (" + t.note + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.what, t.mode, t.measured, v)
	}
	tw.Flush()
	var bs []string
	for _, mode := range []string{"stateful", "stateless"} {
		if b, ok := bare[mode]; ok && b.RPS() > 0 {
			bs = append(bs, fmt.Sprintf("%s %.0f/s", mode, b.RPS()))
		}
	}
	if len(bs) > 0 {
		fmt.Fprintf(w, "the targets were set where bare mcp-go answered ~%d/s; in this run bare mcp-go answered %s\n",
			targetReferenceRPS, strings.Join(bs, ", "))
	}
}
