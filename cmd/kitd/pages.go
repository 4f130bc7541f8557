package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// startupReleases are the times after start at which `kitd run` hands
// its binary's pages back again (it does once before the agent runs): the
// agent connects, syncs the shadow and delivers its first readings in the
// first seconds, mapping more of the binary, while its heap grows to its
// working size; releasing early keeps the two from adding up to the
// process's peak. After the last, what is mapped again is what it keeps
// using. With a shadow service that never answers, the first sync gives
// up after 10 s: the last release is after that.
var startupReleases = []time.Duration{time.Second, 4 * time.Second, 15 * time.Second}

// releaseStartupPagesNowAndLater releases the start-up pages (see
// releaseStartupPages) now and at startupReleases; the returned func
// cancels the releases still to come.
func releaseStartupPagesNowAndLater(log *slog.Logger) (stop func()) {
	release := func(after time.Duration) {
		n, err := releaseStartupPages()
		if err != nil {
			log.Debug("could not release start-up pages", "after", after, "error", err)
			return
		}
		log.Debug("released start-up pages", "after", after, "bytes", n)
	}
	release(0)
	timers := make([]*time.Timer, 0, len(startupReleases))
	for _, d := range startupReleases {
		timers = append(timers, time.AfterFunc(d, func() { release(d) }))
	}
	return func() {
		for _, t := range timers {
			t.Stop()
		}
	}
}

// releaseStartupPages unmaps kitd's own binary (code and read-only data)
// from the process, so that only what runs afterwards is mapped again; it
// returns the bytes of address range it released.
//
// Why: start-up touches nearly every part of a Go binary (each linked
// package's initialisation, config parsing, the TLS handshake), and the
// kernel maps each touched page with its neighbours (fault-around, 64
// KiB), so a freshly started `kitd run` had 94 % of its 9.5 MB binary
// resident, more than its heap, stacks and runtime together. The running
// agent uses about a quarter of it (README, Measurements). The pages stay
// in the page cache, clean: a page needed again is mapped back from there
// (a minor fault), and the kernel can reclaim the rest first when memory
// is short instead of keeping them mapped.
//
// Only mappings of the executable without write permission are advised:
// MADV_DONTNEED on a writable private mapping (.data) would discard what
// the program wrote there.
func releaseStartupPages() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	var total int64
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// 00400000-0083c000 r-xp 00000000 fd:01 1234   /usr/bin/kitd
		f := bytes.Fields(sc.Bytes())
		if len(f) != 6 || string(f[5]) != exe || len(f[1]) != 4 || f[1][0] != 'r' || f[1][1] != '-' || f[1][3] != 'p' {
			continue
		}
		lo, hi, _ := bytes.Cut(f[0], []byte("-"))
		a, err1 := strconv.ParseUint(string(lo), 16, 64)
		b, err2 := strconv.ParseUint(string(hi), 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			return total, fmt.Errorf("/proc/self/maps: bad range %q", f[0])
		}
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(a), uintptr(b-a), unix.MADV_DONTNEED); e != 0 {
			return total, fmt.Errorf("madvise %s: %w", f[0], e)
		}
		total += int64(b - a)
	}
	return total, sc.Err()
}
