package sensors

import "time"

const (
	// MaxBackoff caps the wait between attempts of a failing sensor whose
	// interval is shorter: an unplugged sensor is retried at least this often.
	MaxBackoff = 5 * time.Minute
	// ReopenAfter is how many consecutive read failures close the driver so
	// the next attempt opens it again (chip id and calibration re-read).
	ReopenAfter = 3
	// DefaultTimeout is the per-call deadline when neither the config nor
	// the driver's Kind gives one.
	DefaultTimeout = 5 * time.Second
	// maxStagger bounds the spread of the first reads after start.
	maxStagger = time.Second
)

// retryDelay is the wait after n consecutive failures: the interval after
// the first (a one-off bus glitch costs one sample), then doubling per
// failure up to MaxBackoff, but never less than the interval.
func retryDelay(interval time.Duration, n int) time.Duration {
	limit := max(MaxBackoff, interval)
	d := interval
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// nextAfter plans the attempt after the one planned at last: the first
// point of the grid start + k×interval at or after last+wait. Planning
// from planned times, not from when a read finished, keeps wake-up jitter
// from accumulating into drift; grid points already past (a slow read, a
// stalled machine) are skipped rather than run in a burst.
//
// The grid is anchored at the scheduler's start and shared by every
// sensor, so sensors whose intervals are equal (or multiples) read at the
// same instants: after its staggered first read, an enable or an interval
// change, a sensor joins the others at its next grid point. That costs the
// process one wake-up per tick instead of one per sensor, and the cloud
// gets the readings of one moment together (issue 10: wake-ups were most
// of kitd's CPU with ten sensors at 100 ms).
func nextAfter(start, last time.Time, wait, interval time.Duration, now time.Time) time.Time {
	next := last.Add(wait)
	if off := next.Sub(start) % interval; off > 0 {
		next = next.Add(interval - off)
	}
	if late := now.Sub(next); late >= 0 {
		next = next.Add((late/interval + 1) * interval)
	}
	return next
}

// stagger is sensor i of n's first-read offset: spread evenly over
// min(interval, 1s), so ten sensors on one bus do not all open (chip ids,
// calibration, first conversions) at once. Later reads share one grid.
func stagger(i, n int, interval time.Duration) time.Duration {
	if n <= 1 {
		return 0
	}
	return min(interval, maxStagger) * time.Duration(i) / time.Duration(n)
}
