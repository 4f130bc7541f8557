package hw

import (
	"context"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"github.com/kitd-dev/kitd/sensors/sht3x"
	"github.com/kitd-dev/kitd/sensors/sht4x"
	"periph.io/x/conn/v3/physic"
)

// Datasheet operating ranges: SHT3x-DIS and SHT4x both -40..125 °C.
var shtLimits = []limit{
	{"temperature", -40, 125, "°C"},
	{"humidity", 0, 100, "%RH"},
}

// levels maps the config's words to the Sensirion settings, which share
// the order high, medium, low.
var levels = map[string]uint8{"high": 0, "medium": 1, "low": 2}

// sht3xKind reads an SHT30/31/35 with our own driver (periph has none).
//
// Options: bus, address (0x44 or 0x45), mux_address, mux_channel,
// repeatability (high, medium or low; default high).
func (h *Host) sht3xKind() sensors.Kind {
	return sensors.Kind{
		Name:    "sht3x",
		Timeout: time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			t := i2cTarget(o, "SHT3x", 0x44, 0x45)
			opts := sht3x.Opts{Repeatability: sht3x.Repeatability(level(o, "repeatability")), Sleep: h.sleep}
			open := func(ctx context.Context) (sensors.Driver, error) {
				return h.openChip(ctx, t, func(ctx context.Context, g *gate) (*chip, error) {
					dev, err := sht3x.NewI2C(ctx, g, t.addr, &opts)
					if err != nil {
						return nil, err
					}
					return &chip{read: envReader("SHT3x", dev.Sense)}, nil
				})
			}
			return open, o.Done()
		},
	}
}

// sht4xKind reads an SHT40/41/43/45 with our own driver (periph v3.7.4 has
// none).
//
// Options: bus, address (0x44, 0x45 or 0x46), mux_address, mux_channel,
// precision (high, medium or low; default high).
func (h *Host) sht4xKind() sensors.Kind {
	return sensors.Kind{
		Name:    "sht4x",
		Timeout: time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			t := i2cTarget(o, "SHT4x", 0x44, 0x45, 0x46)
			opts := sht4x.Opts{Precision: sht4x.Precision(level(o, "precision")), Sleep: h.sleep}
			open := func(ctx context.Context) (sensors.Driver, error) {
				return h.openChip(ctx, t, func(ctx context.Context, g *gate) (*chip, error) {
					dev, err := sht4x.NewI2C(ctx, g, t.addr, &opts)
					if err != nil {
						return nil, err
					}
					return &chip{read: envReader("SHT4x", dev.Sense)}, nil
				})
			}
			return open, o.Done()
		},
	}
}

func level(o *sensors.Options, key string) uint8 {
	s := o.String(key, "high")
	l, ok := levels[s]
	if !ok {
		o.Fail(key, "%q is not high, medium or low", s)
	}
	return l
}

// envReader turns a temperature and humidity sensor into a read.
func envReader(chipName string, sense func(context.Context, *physic.Env) error) func(context.Context) (sensors.Values, error) {
	return func(ctx context.Context) (sensors.Values, error) {
		var e physic.Env
		if err := sense(ctx, &e); err != nil {
			return nil, err
		}
		v := sensors.Values{"temperature": celsius(e.Temperature), "humidity": percentRH(e.Humidity)}
		return v, checkRanges(chipName, v, shtLimits...)
	}
}
