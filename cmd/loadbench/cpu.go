package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of /proc/<pid>/stat times;
// 100 on every Linux this runs on.
const clockTick = 10 * time.Millisecond

// cpuTime is the user+system CPU time a process has used so far, from
// /proc (Linux); ok is false where that is not available.
func cpuTime(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// the command name (field 2) may hold spaces; fields after ")" start at 3
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * clockTick, true
}

// measureCPU runs f and returns the CPU time pid spent meanwhile.
func measureCPU(pid int, f func()) time.Duration {
	before, ok1 := cpuTime(pid)
	f()
	after, ok2 := cpuTime(pid)
	if !ok1 || !ok2 {
		return 0
	}
	return after - before
}
