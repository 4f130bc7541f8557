// Package sensors reads the kit's sensors: the Driver interface every chip
// implements, the Registry that maps a config's driver name to a Kind, the
// Scheduler that polls each sensor at its own interval, and ReadOnce for
// `kitd sensors read`.
//
// # Scheduling
//
// Each enabled sensor has its own goroutine and its own schedule on the
// monotonic clock, so a wall-clock step when NTP syncs moves nothing. The
// first read of sensor i of n comes i/n × min(interval, 1s) after Run
// starts, so sensors sharing a bus do not all open at once; it stands for
// the first point of one grid, start + k×interval, anchored at Run's
// start and shared by every sensor, on which later attempts are planned.
// Sensors with equal intervals (or multiples) thus read at the same
// instants, which costs one wake-up per tick rather than one per sensor
// and gives the readings of one moment together (issue 10). An attempt is
// planned from the previous planned time, not from when the read
// finished, so wake-up jitter does not accumulate into drift; planned
// times already past (a slow read, a stalled machine) are skipped, never
// run in a burst. SetInterval re-plans the next attempt from the previous
// planned time with the new interval at once (now, if that is already
// past); SetEnabled(false) closes the driver, true opens it and reads at
// once. Either way the sensor joins the grid at the first point a whole
// interval later.
// Health's NextAttempt is the planned time.
//
// # Deadlines and abandoned calls
//
// Every driver call (open, read, close) runs under a deadline: the
// config's timeout, else the driver's Kind.Timeout, else 5s. A call that
// does not return by then is abandoned: its goroutine is left to finish,
// the attempt fails with ErrTimeout, and until the call returns the device
// is held: it is neither read nor re-opened, because two users of one
// chip corrupt each other's bus transactions. When the call finally
// returns its result is discarded (a driver it opened is closed), and the
// sensor's schedule resumes. Other sensors never wait for it.
//
// # Failures, backoff and re-open
//
// A failed attempt (open error, read error, timeout, or garbage: no
// values, or a value that is NaN or ±Inf) gives no reading. After n
// consecutive failures the next attempt waits interval × 2^(n-1), at most
// MaxBackoff (5 min) but never less than the interval, up to the next grid
// point. After ReopenAfter
// (3) consecutive read failures the driver is closed, so the next attempt
// opens it again and the driver re-reads chip id and calibration.
//
// # Calibration and deadband
//
// Each quantity's calibration (value × scale + offset) is applied first.
// With a deadband, a reading whose every value moved less than the
// deadband since the last reading kept is dropped, except that one is
// kept at least every max_silence (DefaultMaxSilence when unset) on the
// boot-time clock. A change in the set of quantities is always kept.
//
// # Readings and health
//
// A kept reading is stamped with the Clock's Now, Mono and Boot, marked
// unsynced unless the Clock is synced, and handed to the Sink; a Sink
// error loses that reading (it is counted, never retried). Health counts
// per sensor: accepted readings, failures, suppressed readings and sink
// errors, the current run of failures and its last error. The log gets
// one line when a sensor starts failing and one when it recovers, never
// one per failure, and the same for a run of sink errors. Progress
// advances each second while every sensor's goroutine is waiting or
// within its deadlines (plus a minute for the sink), for the watchdog.
package sensors
