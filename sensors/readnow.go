package sensors

import (
	"context"
	"errors"
	"fmt"

	"github.com/kitd-dev/kitd/telemetry"
)

// ErrDisabled is returned for a disabled sensor named in ReadNow.
var ErrDisabled = errors.New("sensor is disabled")

// NowResult is one sensor's answer to ReadNow.
type NowResult struct {
	Name string
	// Reading is stamped and calibrated like a scheduled one; valid when
	// Err is nil.
	Reading telemetry.Reading
	Err     error
}

type nowRequest struct{ reply chan NowResult }

// ReadNow reads the named sensors (none: every enabled one) at once, each
// on its own loop between its scheduled attempts, so a device is never
// used by two callers, and returns the readings in the order asked (config
// order for all). The readings are not handed to the sink and the
// deadband does not apply: the caller publishes them (the kitd.read-now
// job). Health counts the attempt like a scheduled one; the schedule is
// unchanged. An unknown name is an error and nothing is read; a disabled
// sensor's result has ErrDisabled. It waits for Run's loops, within ctx.
func (s *Scheduler) ReadNow(ctx context.Context, names []string) ([]NowResult, error) {
	var targets []*sensor
	if len(names) == 0 {
		for _, sn := range s.sensors {
			if _, on := sn.settings(); on {
				targets = append(targets, sn)
			}
		}
	} else {
		var errs []error
		for _, n := range names {
			sn, err := s.lookup(n)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			targets = append(targets, sn)
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	out := make([]NowResult, len(targets))
	replies := make([]chan NowResult, len(targets))
	for i, sn := range targets {
		out[i].Name = sn.name
		replies[i] = make(chan NowResult, 1)
		go func() {
			select {
			case sn.now <- nowRequest{reply: replies[i]}:
			case <-ctx.Done():
				replies[i] <- NowResult{Name: sn.name, Err: fmt.Errorf("not read: %w", ctx.Err())}
			}
		}()
	}
	for i := range targets {
		select {
		case r := <-replies[i]:
			out[i] = r
		case <-ctx.Done():
			out[i].Err = fmt.Errorf("not read: %w", ctx.Err())
		}
	}
	return out, nil
}

// readNow is one attempt for ReadNow, on sn's loop.
func (s *Scheduler) readNow(ctx context.Context, sn *sensor, enabled bool) NowResult {
	res := NowResult{Name: sn.name}
	if !enabled {
		res.Err = ErrDisabled
		return res
	}
	if !sn.dev.free() {
		res.Err = ErrBusy
		return res
	}
	sn.busySince.Store(s.since())
	defer sn.busySince.Store(0)
	if !sn.dev.isOpen() {
		if err := sn.dev.Open(ctx); err != nil {
			res.Err = fmt.Errorf("open: %w", err)
			s.failed(sn, res.Err)
			return res
		}
		sn.readFails = 0
	}
	v, err := sn.dev.Read(ctx)
	if err == nil {
		v, err = calibrate(v, sn.cal)
	}
	if err != nil {
		res.Err = fmt.Errorf("read: %w", err)
		s.failed(sn, res.Err)
		sn.readFails++
		return res
	}
	sn.readFails = 0
	r := telemetry.Reading{Sensor: sn.name, Time: s.clk.Now(), Mono: s.clk.Mono(), Boot: s.clk.Boot(), Values: v}
	if !s.clk.Synced() {
		r.Clock = telemetry.ClockUnsynced
	}
	s.succeeded(sn, r.Time)
	res.Reading = r
	return res
}
