// Package clock tells the agent what time it is and whether to believe it.
// A Raspberry Pi has no RTC: until NTP syncs, the system clock is whatever
// fake-hwclock saved at the last shutdown, or 1970. Readings taken then are
// marked unsynced and re-stamped later from the boot-time clock.
package clock

import (
	"fmt"
	"hash/fnv"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Config is the clock section of the config file.
type Config struct {
	// TrustSystem: never flag readings unsynced (boards with an RTC, or a
	// clock kept by other means the kernel does not know about).
	TrustSystem bool `mapstructure:"trust_system"`
}

// DefaultConfig returns the defaults: trust the kernel's sync flag.
func DefaultConfig() Config { return Config{} }

// Validate has nothing to check; it is here so every section has one.
func (c Config) Validate() error { return nil }

// syncTTL is how long Synced trusts its last look at the kernel's sync
// flag. The kernel itself updates the flag once a second (it sets
// STA_UNSYNC when the clock's error bound passes 16 s, checked each
// second), so a second-old answer is as fresh as the flag's own meaning;
// asking per reading cost two adjtimex calls for each one (scheduler and
// publisher) at steady state (issue 10).
const syncTTL = time.Second

// System reads the kernel's clocks.
type System struct {
	trust bool
	boot  uint64
	// start anchors Go's monotonic clock for the sync cache.
	start time.Time
	// synced caches the last answer: (nanoseconds since start at which the
	// kernel was asked + 1) << 1 | synced, in one word so concurrent
	// readers see a time and its answer together; 0 = never asked.
	synced atomic.Int64
	// adjtimex is unix.Adjtimex; tests replace it to play a kernel whose
	// flag changes.
	adjtimex func(*unix.Timex) (int, error)
	// since is time.Since(start); tests replace it to move time on.
	since func() time.Duration
}

// New returns the system clock. The boot id comes from the kernel
// (/proc/sys/kernel/random/boot_id); where that is missing, a value made
// from the start time stands in, which only costs the ability to re-stamp
// readings across a restart of the agent within one boot.
func New(cfg Config) *System {
	s := &System{trust: cfg.TrustSystem, start: time.Now(), adjtimex: unix.Adjtimex}
	s.since = func() time.Duration { return time.Since(s.start) }
	h := fnv.New64a()
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.Write([]byte(strings.TrimSpace(string(b))))
	} else {
		fmt.Fprintf(h, "%d", time.Now().UnixNano())
	}
	s.boot = h.Sum64()
	return s
}

// Now is the wall clock.
func (s *System) Now() time.Time { return time.Now() }

// Mono is CLOCK_BOOTTIME: monotonic, and unlike Go's monotonic clock it
// keeps counting while the board is suspended.
func (s *System) Mono() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Duration(time.Now().UnixNano())
	}
	return time.Duration(ts.Nano())
}

// Boot identifies this boot.
func (s *System) Boot() uint64 { return s.boot }

// Synced reports whether the kernel considers the clock synchronized
// (adjtimex without STA_UNSYNC and not TIME_ERROR), or always true with
// trust_system. The answer is at most syncTTL old: a change of the flag is
// seen up to a second late, as if the clock had synced (or lost its sync)
// that much later. Nothing else changes: a reading flagged unsynced is
// re-stamped from its Mono once Synced says true, as before.
func (s *System) Synced() bool {
	if s.trust {
		return true
	}
	now := s.since()
	if c := s.synced.Load(); c != 0 && now-time.Duration(c>>1-1) < syncTTL {
		return c&1 == 1
	}
	ok := s.kernelSynced()
	c := int64(now+1) << 1
	if ok {
		c |= 1
	}
	s.synced.Store(c)
	return ok
}

// kernelSynced asks the kernel.
func (s *System) kernelSynced() bool {
	var tx unix.Timex
	state, err := s.adjtimex(&tx)
	if err != nil {
		return false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
