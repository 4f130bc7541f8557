package sds011

import (
	"context"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/serial"
)

// Kind is the "sds011" driver: pm2_5 and pm10 in µg/m³.
//
// Options: port (the serial device, required; usually /dev/ttyUSB0).
func Kind() sensors.Kind {
	return sensors.Kind{
		Name: "sds011",
		// Opening may pass over an active-mode frame (one a second)
		// before the mode answer; two seconds covers it.
		Timeout: 2 * time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			port := serial.PortOption(o, "port")
			open := func(ctx context.Context) (sensors.Driver, error) {
				return serial.OpenDriver(ctx, port, nil, func(ctx context.Context, p *serial.Port) (serial.ReadFunc, error) {
					d, err := New(ctx, p, nil)
					if err != nil {
						return nil, err
					}
					return read(d), nil
				})
			}
			return open, o.Done()
		},
	}
}

// read maps d's reading to the driver's quantities.
func read(d *Dev) serial.ReadFunc {
	return func(ctx context.Context) (sensors.Values, error) {
		pm25, pm10, err := d.Read(ctx)
		if err != nil {
			return nil, err
		}
		return sensors.Values{"pm2_5": pm25, "pm10": pm10}, nil
	}
}
