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
				p, err := serial.Open(port, nil)
				if err != nil {
					return nil, err
				}
				d, err := New(ctx, p, nil)
				if err != nil {
					p.Close()
					return nil, err
				}
				return &driver{p: p, d: d}, nil
			}
			return open, o.Done()
		},
	}
}

type driver struct {
	p *serial.Port
	d *Dev
}

func (r *driver) Read(ctx context.Context) (sensors.Values, error) {
	pm25, pm10, err := r.d.Read(ctx)
	if err != nil {
		return nil, err
	}
	return sensors.Values{"pm2_5": pm25, "pm10": pm10}, nil
}

func (r *driver) Close() error { return r.p.Close() }
