package hw

import (
	"context"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/aht20"
)

// aht20Kind reads an AHT20 through periph (fixed address 0x38). periph's
// constructor reads the status byte and calibrates the chip if needed;
// each read checks the CRC.
//
// Options: bus, address (0x38), mux_address, mux_channel.
func (h *Host) aht20Kind() sensors.Kind {
	// Datasheet operating range: -40..85 °C, 0..100 %RH.
	limits := []limit{{"temperature", -40, 85, "°C"}, {"humidity", 0, 100, "%RH"}}
	return sensors.Kind{
		Name:    "aht20",
		Timeout: time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			t := i2cTarget(o, "AHT20", 0x38)
			open := func(ctx context.Context) (sensors.Driver, error) {
				return h.openChip(ctx, t, func(ctx context.Context, g *gate) (*chip, error) {
					opts := aht20.DefaultOpts
					dev, err := aht20.NewI2C(g, &opts)
					if err != nil {
						return nil, err
					}
					return &chip{
						read: func(context.Context) (sensors.Values, error) {
							var e physic.Env
							if err := dev.Sense(&e); err != nil {
								return nil, err
							}
							v := sensors.Values{"temperature": celsius(e.Temperature), "humidity": percentRH(e.Humidity)}
							return v, checkRanges("AHT20", v, limits...)
						},
						halt: dev.Halt,
					}, nil
				})
			}
			return open, o.Done()
		},
	}
}
