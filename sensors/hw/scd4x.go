package hw

import (
	"context"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/scd4x"
)

// scd4xKind reads an SCD40/SCD41 CO2 sensor (address 0x62) with package
// scd4x, in periodic mode: a new value every 5 s.
//
// Opening stops any periodic measurement left running (500 ms), reads
// the serial number and starts periodic measurement. The first
// measurement is ready about 5 s after that: the first read polls
// data-ready until it is, within the read's deadline (the 15 s default
// timeout covers it; a timeout under 6 s fails the first read of every
// open). Later reads find a measurement ready, or wait at most 5 s for
// the next one. Close stops periodic measurement.
//
// Options: bus, address (0x62), mux_address, mux_channel.
func (h *Host) scd4xKind() sensors.Kind {
	// Datasheet: output range 0..40000 ppm; operating conditions -10..60
	// °C, 0..95 %RH non-condensing (100 allowed: it is what it reports
	// when wet).
	limits := []limit{
		{"co2", 0, 40000, "ppm"},
		{"temperature", -10, 60, "°C"},
		{"humidity", 0, 100, "%RH"},
	}
	return sensors.Kind{
		Name:    "scd4x",
		Timeout: 15 * time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			t := i2cTarget(o, "SCD4x", 0x62)
			open := func(ctx context.Context) (sensors.Driver, error) {
				return h.openChip(ctx, t, func(ctx context.Context, g *gate) (*chip, error) {
					dev, err := scd4x.NewI2C(ctx, g, t.addr, &scd4x.Opts{Sleep: h.sleep})
					if err != nil {
						return nil, err
					}
					return &chip{
						read: func(ctx context.Context) (sensors.Values, error) {
							m, err := dev.Sense(ctx)
							if err != nil {
								return nil, err
							}
							v := sensors.Values{"co2": float64(m.CO2), "temperature": m.Temperature, "humidity": m.Humidity}
							return v, checkRanges("SCD4x", v, limits...)
						},
						halt: dev.Halt,
					}, nil
				})
			}
			return open, o.Done()
		},
	}
}
