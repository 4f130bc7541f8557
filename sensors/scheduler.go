package sensors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kitd-dev/kitd/telemetry"
)

// Sink takes a reading, typically appending it to the durable buffer. It
// is called from each sensor's own goroutine, concurrently, and must not
// keep or modify r.Values beyond the call's encoding of them. An error is
// logged and counted in the sensor's health; the reading is not retried.
type Sink func(r telemetry.Reading) error

// Scheduler polls every enabled sensor at its own interval. See the
// package documentation for the rules.
type Scheduler struct {
	sensors []*sensor
	byName  map[string]*sensor
	sink    Sink
	clk     telemetry.Clock
	log     *slog.Logger

	// epoch is the monotonic origin of progress and busySince, which are
	// kept as nanoseconds since it so they fit atomics.
	epoch    time.Time
	progress atomic.Int64
	// beatEvery is the Run loop's tick (at most 1s); stallGrace is how long
	// a sensor's loop may spend in its sink and bookkeeping, beyond its
	// driver deadlines, before the scheduler counts as wedged.
	beatEvery  time.Duration
	stallGrace time.Duration

	ran atomic.Bool

	sinkFailing atomic.Bool
	sinkMu      sync.Mutex
	sinkLost    int64
}

// sensor is one configured sensor. The loop goroutine owns the device,
// the schedule and the deadband; what is under mu is shared with
// SetInterval, SetEnabled and Health.
type sensor struct {
	name, driver string
	timeout      time.Duration
	cal          map[string]Calibration
	stagger      time.Duration

	dev       device
	band      deadband
	readFails int // consecutive read failures since the driver was opened

	// wake tells the loop that interval or enabled changed.
	wake chan struct{}
	// now carries ReadNow's requests to the loop (readnow.go).
	now chan nowRequest
	// busySince is when (ns since the scheduler's epoch) the loop left its
	// wait to use the device; 0 while it waits.
	busySince atomic.Int64

	mu           sync.Mutex
	interval     time.Duration
	enabled      bool
	h            Health
	failingSince time.Time
}

const (
	defaultBeat       = time.Second
	defaultStallGrace = time.Minute
)

// Deps are what a Scheduler is given besides its Configs (the sensors
// section of the config file).
type Deps struct {
	// Registry resolves each sensor's driver; required.
	Registry *Registry
	// Sink takes every reading; required.
	Sink Sink
	// Clock stamps readings; required.
	Clock telemetry.Clock
	// Log gets component=sensors added; nil discards.
	Log *slog.Logger
}

// NewScheduler validates cfgs with ValidateConfigs and prepares every
// sensor; no hardware is touched until Run.
func NewScheduler(cfgs []Config, deps Deps) (*Scheduler, error) {
	reg, sink, clk, log := deps.Registry, deps.Sink, deps.Clock, deps.Log
	if reg == nil || sink == nil || clk == nil {
		return nil, errors.New("sensors: NewScheduler needs a registry, a sink and a clock")
	}
	if err := ValidateConfigs(reg, cfgs); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		byName:     make(map[string]*sensor, len(cfgs)),
		sink:       sink,
		clk:        clk,
		log:        log.With("component", "sensors"),
		epoch:      time.Now(),
		beatEvery:  defaultBeat,
		stallGrace: defaultStallGrace,
	}
	for i, c := range cfgs {
		kind, _ := reg.Lookup(c.Driver)
		open, err := kind.Prepare(c.Name, NewOptions(c.Options))
		if err != nil {
			return nil, fmt.Errorf("sensors[%d] (%s).options: %w", i, c.Name, err)
		}
		timeout := timeoutFor(c, kind)
		sn := &sensor{
			name:     c.Name,
			driver:   c.Driver,
			timeout:  timeout,
			cal:      maps.Clone(c.Calibrate),
			stagger:  stagger(i, len(cfgs), c.Interval),
			dev:      device{open: open, timeout: timeout},
			band:     newDeadband(c),
			wake:     make(chan struct{}, 1),
			now:      make(chan nowRequest),
			interval: c.Interval,
			enabled:  c.IsEnabled(),
			h:        Health{Name: c.Name, Driver: c.Driver},
		}
		s.sensors = append(s.sensors, sn)
		s.byName[c.Name] = sn
	}
	return s, nil
}

// timeoutFor is the per-call deadline: the config's, else the driver's,
// else DefaultTimeout.
func timeoutFor(c Config, k Kind) time.Duration {
	switch {
	case c.Timeout > 0:
		return c.Timeout
	case k.Timeout > 0:
		return k.Timeout
	}
	return DefaultTimeout
}

// Run opens and polls every enabled sensor until ctx is done. Then it
// stops starting attempts, lets attempts in progress finish within their
// deadlines (abandoning hung calls), closes the drivers and returns nil.
// A sink that never returns keeps Run from returning. Run may be called
// once.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.ran.CompareAndSwap(false, true) {
		return ErrRunTwice
	}
	s.beat()
	start := time.Now()
	var wg sync.WaitGroup
	enabled := 0
	for _, sn := range s.sensors {
		if sn.health().Enabled {
			enabled++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.loop(ctx, sn, start)
		}()
	}
	s.log.Info("sensor scheduler started", "sensors", len(s.sensors), "enabled", enabled)
	tick := time.NewTicker(s.beatEvery)
	defer tick.Stop()
	wedged := false
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			s.log.Info("sensor scheduler stopped")
			return nil
		case <-tick.C:
		}
		sn := s.stuck()
		switch {
		case sn == nil:
			if wedged {
				s.log.Info("sensor scheduler moving again")
			}
			wedged = false
			s.beat()
		case !wedged:
			wedged = true
			s.log.Error("sensor loop stuck past its deadlines; withholding scheduler progress",
				"sensor", sn.name)
		}
	}
}

// Progress is the last time the scheduler's loop ran and found every
// sensor loop either waiting or within its deadlines: the systemd watchdog
// stops being fed when it stops advancing. Zero before Run.
func (s *Scheduler) Progress() time.Time {
	ns := s.progress.Load()
	if ns == 0 {
		return time.Time{}
	}
	return s.epoch.Add(time.Duration(ns))
}

func (s *Scheduler) beat() { s.progress.Store(max(s.since(), 1)) }

// since is the time since the epoch, in nanoseconds, never 0.
func (s *Scheduler) since() int64 { return max(int64(time.Since(s.epoch)), 1) }

// stuck returns a sensor whose loop has used its device for longer than
// its three deadlines (open, read, close) plus the grace for the sink.
func (s *Scheduler) stuck() *sensor {
	now := s.since()
	for _, sn := range s.sensors {
		b := sn.busySince.Load()
		if b != 0 && time.Duration(now-b) > 3*sn.timeout+s.stallGrace {
			return sn
		}
	}
	return nil
}

// SetInterval changes a sensor's interval while running. The next read is
// planned from the last one with the new interval at once, so a shorter
// interval does not wait out the old one.
func (s *Scheduler) SetInterval(name string, d time.Duration) error {
	sn, err := s.lookup(name)
	if err != nil {
		return err
	}
	if err := ValidateInterval(d); err != nil {
		return fmt.Errorf("sensors.%s.interval: %w", name, err)
	}
	sn.mu.Lock()
	sn.interval = d
	sn.mu.Unlock()
	sn.poke()
	return nil
}

// SetEnabled enables or disables a sensor while running. Disabling closes
// its driver once no read holds it; enabling opens it and reads at once.
func (s *Scheduler) SetEnabled(name string, on bool) error {
	sn, err := s.lookup(name)
	if err != nil {
		return err
	}
	sn.mu.Lock()
	sn.enabled = on
	sn.mu.Unlock()
	sn.poke()
	return nil
}

// Health returns every sensor's health in config order. It is safe to call
// concurrently with everything else.
func (s *Scheduler) Health() []Health {
	out := make([]Health, len(s.sensors))
	for i, sn := range s.sensors {
		out[i] = sn.health()
	}
	return out
}

func (s *Scheduler) lookup(name string) (*sensor, error) {
	sn, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownSensor, name)
	}
	return sn, nil
}

// poke wakes the loop without blocking; changes coalesce, since the loop
// reads the latest settings.
func (sn *sensor) poke() {
	select {
	case sn.wake <- struct{}{}:
	default:
	}
}

func (sn *sensor) settings() (time.Duration, bool) {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return sn.interval, sn.enabled
}

func (sn *sensor) failures() int {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return sn.h.ConsecutiveFailures
}
