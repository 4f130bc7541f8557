// Package proctest reads what a process has cost from /proc, for the
// benchmarks that weigh kitd or Mosquitto in CPU time.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU is the process's user+system CPU time from /proc/PID/stat, counted
// in the kernel's USER_HZ ticks (100 per second on Linux).
func CPU(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	d, err := parseStat(stat)
	if err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return d, nil
}

func parseStat(stat []byte) (time.Duration, error) {
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is the first, utime the 12th, stime the 13th.
	var f []string
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
		f = strings.Fields(string(stat[i+1:]))
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected: %s", stat)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected: %s", stat)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}
