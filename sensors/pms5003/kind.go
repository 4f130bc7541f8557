package pms5003

import (
	"context"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/serial"
)

// Kind is the "pms5003" driver (PMS5003 and PMS7003): pm1, pm2_5 and
// pm10 in µg/m³, atmospheric environment.
//
// Options: port (the serial device, required).
func Kind() sensors.Kind {
	return sensors.Kind{
		Name: "pms5003",
		// The answer takes 33 ms on the wire; the sensor answers a
		// passive read within a few ms. A second leaves room.
		Timeout: time.Second,
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
		m, err := d.Read(ctx)
		if err != nil {
			return nil, err
		}
		return sensors.Values{"pm1": float64(m.Atm[0]), "pm2_5": float64(m.Atm[1]), "pm10": float64(m.Atm[2])}, nil
	}
}
