package systemd

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"time"
)

// WatchdogInterval is the watchdog timeout systemd asks for, from the
// values of $WATCHDOG_USEC and $WATCHDOG_PID, or 0 when the watchdog is
// off: usec empty, zero, unparsable or infinite, or pid naming another
// process (the variables leaked into a child). An empty pid counts as
// ours, as in sd_watchdog_enabled(3): systemd always sets it, and a test
// that starts the agent cannot know the pid before the start.
func WatchdogInterval(usec, pid string) time.Duration {
	u, err := strconv.ParseUint(usec, 10, 64)
	if err != nil || u == 0 || u > math.MaxInt64/uint64(time.Microsecond) {
		return 0
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p != os.Getpid() {
			return 0
		}
	}
	return time.Duration(u) * time.Microsecond
}

// Check is a liveness check: nil while the part of the agent it watches is
// healthy. now is the watchdog's clock reading (with Go's monotonic clock),
// the same for every check of one round.
type Check func(now time.Time) error

// RunWatchdog pings the watchdog every interval/2 while every check
// returns nil, and stops pinging while any check fails, so that systemd
// kills and restarts an agent whose loop is wedged. Checks run once per
// round, all of them, so each failure is logged as it starts and ends,
// once per change rather than every round. It returns when ctx is done,
// or at once when interval is not positive (the watchdog is off).
func RunWatchdog(ctx context.Context, n *Notifier, interval time.Duration, checks []Check, log *slog.Logger) {
	if interval <= 0 {
		return
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := watchdog{n: n, checks: checks, log: log, failing: make([]error, len(checks))}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	w.round(time.Now())
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			w.round(now)
		}
	}
}

// watchdog is RunWatchdog's state; one goroutine owns it.
type watchdog struct {
	n       *Notifier
	checks  []Check
	log     *slog.Logger
	failing []error // per check: its error while it fails
	sick    bool    // pings withheld in the last round
	pingErr bool    // the last ping failed
}

func (w *watchdog) round(now time.Time) {
	sick := false
	for i, check := range w.checks {
		err := check(now)
		switch {
		case err != nil && w.failing[i] == nil:
			w.log.Error("watchdog: check failed, withholding pings so systemd restarts the agent if it stays wedged", "err", err)
		case err == nil && w.failing[i] != nil:
			w.log.Info("watchdog: check healthy again", "was", w.failing[i])
		}
		w.failing[i] = err
		sick = sick || err != nil
	}
	if w.sick && !sick {
		w.log.Info("watchdog: all checks healthy, pings resume")
	}
	w.sick = sick
	if sick {
		return
	}
	err := w.n.Watchdog()
	switch {
	case err != nil && !w.pingErr:
		w.log.Warn("watchdog: ping failed", "err", err)
	case err == nil && w.pingErr:
		w.log.Info("watchdog: ping delivered again")
	}
	w.pingErr = err != nil
}

// ProgressCheck fails when progress has not moved for longer than maxAge.
// progress returns the time the watched loop last went round; the loop
// must update it every round, idle rounds included, so maxAge must exceed
// the loop's longest wait.
//
// The check notes when the value last changed by the watchdog's monotonic
// clock instead of comparing it with the wall clock: a Pi has no RTC and
// its clock steps by months when NTP first syncs, which must not look like
// a wedged loop (nor hide one). The first round therefore counts as
// progress; a loop that never starts fails maxAge after the first round.
func ProgressCheck(name string, progress func() time.Time, maxAge time.Duration) Check {
	var (
		mu    sync.Mutex
		last  time.Time // the progress value seen last
		since time.Time // when last was first seen; zero before the first round
	)
	return func(now time.Time) error {
		p := progress()
		mu.Lock()
		defer mu.Unlock()
		if since.IsZero() || !p.Equal(last) {
			last, since = p, now
		}
		if age := now.Sub(since); age > maxAge {
			return fmt.Errorf("%s: no progress for %s (limit %s)", name, age.Round(time.Millisecond), maxAge)
		}
		return nil
	}
}
