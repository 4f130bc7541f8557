package sensors

import "time"

// Health is one sensor's state as the shadow and the logs report it.
type Health struct {
	Name, Driver string
	// Interval and Enabled are the live settings (after shadow deltas).
	Interval time.Duration
	Enabled  bool
	// OK: the sensor is enabled and its last attempt gave a reading. False
	// before the first attempt and while disabled.
	OK bool
	// LastError is the error of the current run of failures; "" once a
	// read succeeds.
	LastError string
	// ConsecutiveFailures counts failed attempts (open, read, timeout,
	// garbage) since the last success; it drives the backoff.
	ConsecutiveFailures int
	// LastReading is the time (the Clock's Now) of the last successful
	// read, kept or suppressed by the deadband.
	LastReading time.Time
	// NextAttempt is when the next attempt is planned (with the monotonic
	// reading): on the scheduler's grid, except a staggered first read and
	// the read at once after an enable or an interval change; zero while
	// the sensor is disabled. While an abandoned call holds the device it
	// is the attempt that waits for the device.
	NextAttempt time.Time
	// Readings counts readings the sink accepted; Failures counts failed
	// attempts; Suppressed counts readings the deadband dropped;
	// SinkErrors counts readings the sink refused (lost, never retried).
	Readings, Failures, Suppressed, SinkErrors int64
}

// failed records a failed attempt. It logs only the first failure of a
// run: a sensor unplugged for a day must not fill the journal, and its
// health says how long the run is.
func (s *Scheduler) failed(sn *sensor, err error) {
	sn.mu.Lock()
	sn.h.OK = false
	sn.h.LastError = err.Error()
	sn.h.ConsecutiveFailures++
	sn.h.Failures++
	first := sn.h.ConsecutiveFailures == 1
	if first {
		sn.failingSince = time.Now()
	}
	sn.mu.Unlock()
	if first {
		s.log.Warn("sensor failing; further failures are counted in its health until it recovers",
			"sensor", sn.name, "driver", sn.driver, "err", err)
	}
}

// succeeded records a successful read taken at at, and logs the recovery
// that ends a run of failures.
func (s *Scheduler) succeeded(sn *sensor, at time.Time) {
	sn.mu.Lock()
	n, since := sn.h.ConsecutiveFailures, sn.failingSince
	sn.h.OK = true
	sn.h.LastError = ""
	sn.h.ConsecutiveFailures = 0
	sn.h.LastReading = at
	sn.mu.Unlock()
	if n > 0 {
		s.log.Info("sensor recovered", "sensor", sn.name, "driver", sn.driver,
			"failures", n, "after", time.Since(since).Round(time.Millisecond))
	}
}

// suppressed counts a reading the deadband dropped.
func (s *Scheduler) suppressed(sn *sensor) {
	sn.mu.Lock()
	sn.h.Suppressed++
	sn.mu.Unlock()
}

// disabled resets the run of failures: a sensor enabled again starts
// afresh, without the old backoff, and logs its first failure again.
func (s *Scheduler) disabled(sn *sensor) {
	sn.mu.Lock()
	sn.h.OK = false
	sn.h.ConsecutiveFailures = 0
	sn.h.NextAttempt = time.Time{}
	sn.mu.Unlock()
}

// planned records the time of the next attempt for Health.
func (sn *sensor) planned(next time.Time) {
	sn.mu.Lock()
	sn.h.NextAttempt = next
	sn.mu.Unlock()
}

// delivered records the sink's answer for one reading. Like sensor
// failures, a run of refusals (a full disk) logs one line when it starts
// and one when it ends, with the count lost in between.
func (s *Scheduler) delivered(sn *sensor, err error) {
	sn.mu.Lock()
	if err != nil {
		sn.h.SinkErrors++
	} else {
		sn.h.Readings++
	}
	sn.mu.Unlock()
	if err == nil && !s.sinkFailing.Load() {
		return
	}
	s.sinkMu.Lock()
	var started, ended bool
	var lost int64
	if err != nil {
		s.sinkLost++
		started = !s.sinkFailing.Swap(true)
	} else if s.sinkFailing.Swap(false) {
		ended, lost = true, s.sinkLost
		s.sinkLost = 0
	}
	s.sinkMu.Unlock()
	switch {
	case started:
		s.log.Error("buffer refused a reading; readings are lost until it accepts again",
			"sensor", sn.name, "err", err)
	case ended:
		s.log.Info("buffer accepts readings again", "sensor", sn.name, "lost", lost)
	}
}

// health returns a copy of sn's health with its live settings.
func (sn *sensor) health() Health {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	h := sn.h
	h.Interval, h.Enabled = sn.interval, sn.enabled
	if !sn.enabled {
		h.OK = false
	}
	return h
}
