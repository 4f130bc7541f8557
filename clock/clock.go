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

// System reads the kernel's clocks.
type System struct {
	trust bool
	boot  uint64
}

// New returns the system clock. The boot id comes from the kernel
// (/proc/sys/kernel/random/boot_id); where that is missing, a value made
// from the start time stands in, which only costs the ability to re-stamp
// readings across a restart of the agent within one boot.
func New(cfg Config) *System {
	s := &System{trust: cfg.TrustSystem}
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
// trust_system.
func (s *System) Synced() bool {
	if s.trust {
		return true
	}
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return false
	}
	return state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
}
