package sensors

import (
	"context"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/telemetry"
)

// loop is one sensor's goroutine: it waits for the next planned attempt,
// a settings change, the release of a device held by an abandoned call, or
// the end of ctx. Attempts run on the loop itself, so one sensor never has
// two at once, and other sensors never wait for it. Attempts are planned
// on the grid every sensor shares, anchored at start (see nextAfter).
func (s *Scheduler) loop(ctx context.Context, sn *sensor, start time.Time) {
	// Driver calls outlive ctx by up to their deadline: shutdown lets a
	// read in progress finish rather than cutting the bus transaction.
	opCtx := context.WithoutCancel(ctx)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	interval, enabled := sn.settings()
	// next is the planned time of the next attempt while enabled; last is
	// the planned time of the previous one (zero before the first).
	var next, last time.Time
	// staggered is the first read's offset: that read stands for the
	// grid's first point, so the second comes at start+interval.
	var staggered time.Duration
	if enabled {
		next, staggered = start.Add(sn.stagger), sn.stagger
	}
	for {
		var fire <-chan time.Time
		var released <-chan struct{}
		switch {
		case !sn.dev.free():
			released = sn.dev.held
		case enabled:
			timer.Reset(time.Until(next))
			fire = timer.C
			sn.planned(next)
		}
		select {
		case <-ctx.Done():
			s.closeDevice(opCtx, sn)
			return
		case <-released:
		case req := <-sn.now:
			req.reply <- s.readNow(opCtx, sn, enabled)
		case <-sn.wake:
			iv, on := sn.settings()
			now := time.Now()
			switch {
			case on && !enabled:
				next, last, staggered = now, time.Time{}, 0
				sn.band.reset()
				s.log.Info("sensor enabled", "sensor", sn.name)
			case !on && enabled:
				s.closeDevice(opCtx, sn)
				s.disabled(sn)
				s.log.Info("sensor disabled", "sensor", sn.name)
			case on && iv != interval && !last.IsZero():
				next, staggered = last.Add(retryDelay(iv, sn.failures())), 0
				if next.Before(now) {
					next = now
				}
			}
			if iv != interval {
				s.log.Info("sensor interval changed", "sensor", sn.name, "from", interval, "to", iv)
			}
			interval, enabled = iv, on
		case <-fire:
			s.attempt(opCtx, sn)
			last, staggered = next.Add(-staggered), 0
			next = nextAfter(start, last, retryDelay(interval, sn.failures()), interval, time.Now())
		}
	}
}

// attempt opens the driver if it is not open, reads one sample, and hands
// the reading on. Failures are counted and backed off by the loop; after
// ReopenAfter read failures in a row the driver is closed, so the next
// attempt opens it afresh.
func (s *Scheduler) attempt(ctx context.Context, sn *sensor) {
	sn.busySince.Store(s.since())
	defer sn.busySince.Store(0)
	if !sn.dev.isOpen() {
		if err := sn.dev.Open(ctx); err != nil {
			s.failed(sn, fmt.Errorf("open: %w", err))
			return
		}
		sn.readFails = 0
	}
	v, err := sn.dev.Read(ctx)
	if err == nil {
		v, err = calibrate(v, sn.cal)
	}
	if err != nil {
		s.failed(sn, fmt.Errorf("read: %w", err))
		sn.readFails++
		if sn.readFails >= ReopenAfter {
			s.log.Debug("closing sensor to re-open it", "sensor", sn.name, "failures", sn.readFails)
			if err := sn.dev.Close(ctx); err != nil {
				s.log.Debug("closing sensor", "sensor", sn.name, "err", err)
			}
		}
		return
	}
	sn.readFails = 0
	r := telemetry.Reading{
		Sensor: sn.name,
		Time:   s.clk.Now(),
		Mono:   s.clk.Mono(),
		Boot:   s.clk.Boot(),
		Values: v,
	}
	if !s.clk.Synced() {
		r.Clock = telemetry.ClockUnsynced
	}
	s.succeeded(sn, r.Time)
	if !sn.band.keep(v, r.Mono) {
		s.suppressed(sn)
		return
	}
	s.delivered(sn, s.sink(r))
}

// closeDevice closes sn's driver, or arranges for it to be closed when the
// abandoned call holding it returns.
func (s *Scheduler) closeDevice(ctx context.Context, sn *sensor) {
	if !sn.dev.isOpen() {
		return
	}
	sn.busySince.Store(s.since())
	defer sn.busySince.Store(0)
	if err := sn.dev.Close(ctx); err != nil {
		s.log.Warn("closing sensor", "sensor", sn.name, "err", err)
	}
}
