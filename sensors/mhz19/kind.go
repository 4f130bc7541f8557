package mhz19

import (
	"context"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/serial"
)

// Kind is the "mhz19" driver: co2 in ppm.
//
// Options: port (the serial device, required), warmup (the preheat time
// after boot during which reads are errors; default 3m, the MH-Z19B's;
// 1m suits the MH-Z19C; 0s turns the check off).
func Kind() sensors.Kind { return KindWith(nil) }

// KindWith is Kind with the sensor's uptime from uptime instead of the
// boot-time clock, for tests; nil means the clock.
func KindWith(uptime func() (time.Duration, error)) sensors.Kind {
	return sensors.Kind{
		Name: "mhz19",
		// An answer takes 10 ms on the wire and the sensor answers at
		// once; a second leaves room for a loaded machine.
		Timeout: time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			port := serial.PortOption(o, "port")
			opts := Opts{Warmup: o.Duration("warmup", DefaultOpts.Warmup), Uptime: uptime}
			if opts.Warmup < 0 || opts.Warmup > time.Hour {
				o.Fail("warmup", "%v out of range 0s..1h", opts.Warmup)
			}
			open := func(ctx context.Context) (sensors.Driver, error) {
				return serial.OpenDriver(ctx, port, nil, func(_ context.Context, p *serial.Port) (serial.ReadFunc, error) {
					return read(New(p, &opts)), nil
				})
			}
			return open, o.Done()
		},
	}
}

// read maps d's reading to the driver's quantities.
func read(d *Dev) serial.ReadFunc {
	return func(ctx context.Context) (sensors.Values, error) {
		ppm, err := d.CO2(ctx)
		if err != nil {
			return nil, err
		}
		return sensors.Values{"co2": float64(ppm)}, nil
	}
}
