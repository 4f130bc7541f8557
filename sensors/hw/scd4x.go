package hw

import (
	"context"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/sensirion"
	"periph.io/x/devices/v3/scd4x"
)

// SCD4x commands used before periph takes over (datasheet 3.5, 3.9).
var (
	scd4xStop   = []byte{0x3f, 0x86}
	scd4xSerial = []byte{0x36, 0x82}
)

// scd4xStopTime is how long stop_periodic_measurement takes (500 ms).
const scd4xStopTime = 500 * time.Millisecond

// scd4xKind reads an SCD40/SCD41 CO2 sensor through periph (address
// 0x62) in periodic mode: a new value every 5 s. The first read after
// opening waits for the first measurement, up to about 11 s, hence the
// 15 s default timeout.
//
// Opening stops any periodic measurement left running (a restarted agent
// finds the sensor measuring, and then it answers no other command),
// reads the serial number, whose CRCs prove an SCD4x answers, and lets
// periph start periodic measurement. Close stops it.
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
					if err := g.Tx(t.addr, scd4xStop, nil); err != nil {
						return nil, fmt.Errorf("scd4x: stop periodic measurement: %w", err)
					}
					if err := h.Sleep(ctx, scd4xStopTime); err != nil {
						return nil, err
					}
					// Write, wait the command's 1 ms execution time, read.
					if err := g.Tx(t.addr, scd4xSerial, nil); err != nil {
						return nil, fmt.Errorf("scd4x: serial number: %w", err)
					}
					if err := h.Sleep(ctx, time.Millisecond); err != nil {
						return nil, err
					}
					var r [9]byte
					if err := g.Tx(t.addr, nil, r[:]); err != nil {
						return nil, fmt.Errorf("scd4x: serial number: %w", err)
					}
					if _, err := sensirion.Words(r[:]); err != nil {
						return nil, fmt.Errorf("scd4x: serial number: %w", err)
					}
					dev, err := scd4x.NewI2C(g, t.addr)
					if err != nil {
						return nil, err
					}
					return &chip{
						read: func(context.Context) (sensors.Values, error) {
							var e scd4x.Env
							if err := dev.Sense(&e); err != nil {
								return nil, err
							}
							v := sensors.Values{
								"co2":         float64(e.CO2),
								"temperature": celsius(e.Temperature),
								"humidity":    percentRH(e.Humidity),
							}
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
