package sensors_test

import (
	"context"
	"testing"
	"time"

	"github.com/kitd-dev/kitd/clock"
	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/sim"
	"github.com/kitd-dev/kitd/telemetry"
)

// BenchmarkSchedulerSim is the scheduler's cost per reading: the read in
// its own goroutine under a deadline, calibration, garbage check,
// deadband, stamping from the system clock, health and the sink call,
// around the sim driver and a sink that does nothing.
func BenchmarkSchedulerSim(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  sensors.Config
	}{
		{"plain", sensors.Config{}},
		{"calibrated+deadband", sensors.Config{
			Calibrate: map[string]sensors.Calibration{"temperature": {Offset: -0.5}},
			Deadband:  0.01,
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			reg, err := sensors.NewRegistry(sim.Kind())
			if err != nil {
				b.Fatal(err)
			}
			c := bc.cfg
			c.Name, c.Driver, c.Interval = "sim", "sim", time.Second
			var n int
			sink := func(telemetry.Reading) error { n++; return nil }
			s, err := sensors.NewScheduler([]sensors.Config{c}, sensors.Deps{Registry: reg, Sink: sink, Clock: clock.New(clock.Config{})})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			s.Step(ctx, "sim") // opens the driver
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				s.Step(ctx, "sim")
			}
			b.StopTimer()
			s.Close(ctx, "sim")
			if h := s.Health()[0]; h.Failures != 0 || h.Readings+h.Suppressed != int64(b.N)+1 || int64(n) != h.Readings {
				b.Fatalf("health %+v after %d steps", h, b.N+1)
			}
		})
	}
}
