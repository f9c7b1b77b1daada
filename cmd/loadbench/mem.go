package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
)

// memSample is where a process's resident memory is, from
// /proc/<pid>/status (Linux), in KiB: the peak (VmHWM), the current total
// and its anonymous (heaps: Go's and SQLite's page caches, which
// modernc's SQLite allocates outside the Go heap) and file-backed (the
// binary, mmap'd database files) parts.
type memSample struct {
	PeakKB, RSSKB, AnonKB, FileKB int64
	// GoSysKB and GoHeapKB are the Go runtime's own view (MemStats Sys
	// and HeapInuse from the superuser pprof route); 0 when not asked.
	GoSysKB, GoHeapKB int64
}

// readMem reads /proc/<pid>/status; ok is false where it is missing.
func readMem(pid int) (memSample, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memSample{}, false
	}
	var m memSample
	fields := map[string]*int64{"VmHWM:": &m.PeakKB, "VmRSS:": &m.RSSKB, "RssAnon:": &m.AnonKB, "RssFile:": &m.FileKB}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line) // "VmRSS:   123456 kB"
		if len(f) < 2 {
			continue
		}
		if p, ok := fields[f[0]]; ok {
			*p, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return m, m.RSSKB > 0
}

// goMem fills the Go runtime's figures from the pprof heap page (its
// debug=1 form ends with runtime.MemStats).
func (env *environment) goMem(ctx context.Context, p *picard, m *memSample) {
	if env.suToken == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, "GET", p.base+"/api/debug/pprof/heap?debug=1", nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", env.suToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		for prefix, dst := range map[string]*int64{"# Sys = ": &m.GoSysKB, "# HeapInuse = ": &m.GoHeapKB} {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				*dst = n / 1024
			}
		}
	}
}

// sampleMem is p's memory now, with the Go runtime's view.
func (env *environment) sampleMem(ctx context.Context, p *picard) (memSample, bool) {
	m, ok := readMem(p.cmd.Process.Pid)
	if ok {
		env.goMem(ctx, p, &m)
	}
	return m, ok
}

// memRow is one line of the memory table: the sample taken after a step.
type memRow struct {
	Mode, Step string
	memSample
}

// printMemTable writes where Picard's resident memory was after each step.
func printMemTable(w io.Writer, rows []memRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tafter\tpeak RSS\tRSS\tanonymous\tfile-backed\tGo runtime\tGo heap in use\toutside Go\t")
	for _, r := range rows {
		outside := "—"
		goSys, goHeap := "—", "—"
		if r.GoSysKB > 0 {
			goSys, goHeap = mib(r.GoSysKB), mib(r.GoHeapKB)
			outside = mib(r.AnonKB - r.GoSysKB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Mode, r.Step, mib(r.PeakKB), mib(r.RSSKB), mib(r.AnonKB), mib(r.FileKB), goSys, goHeap, outside)
	}
	tw.Flush()
	fmt.Fprintln(w, "resident memory of the picard process (MiB, /proc/<pid>/status): peak RSS is VmHWM since it started;")
	fmt.Fprintln(w, "file-backed is the binary and mmap'd database files; outside Go is anonymous minus the Go runtime's Sys,")
	fmt.Fprintln(w, "i.e. mostly SQLite's page caches (modernc's SQLite allocates them outside the Go heap)")
}

func mib(kb int64) string { return fmt.Sprintf("%.0f", float64(kb)/1024) }
