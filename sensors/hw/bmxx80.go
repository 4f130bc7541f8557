package hw

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"
)

// oversampling maps the config's oversampling factor to periph's.
var oversampling = map[int]bmxx80.Oversampling{1: bmxx80.O1x, 2: bmxx80.O2x, 4: bmxx80.O4x, 8: bmxx80.O8x, 16: bmxx80.O16x}

// bmxKind is bme280, bmp280 or bmp180 through periph's bmxx80. It reads in
// forced mode (periph's Sense), one measurement per read, never
// SenseContinuous, whose goroutine stops for good on the first error.
//
// Options: bus, address (0x76/0x77; the BMP180 is 0x77), mux_address,
// mux_channel, oversampling (1, 2, 4, 8 or 16, default 4, for every
// quantity; the BMP180 caps pressure at 8).
func (h *Host) bmxKind(name string) sensors.Kind {
	chipName := strings.ToUpper(name)
	addrs := []uint16{0x76, 0x77}
	if name == "bmp180" {
		addrs = []uint16{0x77}
	}
	limits := []limit{
		{"temperature", -40, 85, "°C"},
		{"pressure", 300, 1100, "hPa"},
		{"humidity", 0, 100, "%RH"},
	}
	return sensors.Kind{
		Name:    name,
		Timeout: 2 * time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			t := i2cTarget(o, chipName, addrs...)
			factor := o.Int("oversampling", 4)
			over, ok := oversampling[factor]
			if !ok {
				o.Fail("oversampling", "%d is not 1, 2, 4, 8 or 16", factor)
			}
			opts := bmxx80.Opts{Temperature: over, Pressure: over, Humidity: over}
			if name != "bme280" {
				opts.Humidity = bmxx80.Off
			}
			open := func(ctx context.Context) (sensors.Driver, error) {
				return h.openChip(ctx, t, func(ctx context.Context, g *gate) (*chip, error) {
					dev, err := bmxx80.NewI2C(g, t.addr, &opts)
					if err != nil {
						return nil, err
					}
					// periph reads whichever of the three chips answers;
					// a BMP280 sold as a BME280 would read without
					// humidity, so the chip must be the one configured.
					if found := dev.String(); !strings.HasPrefix(found, chipName+"{") {
						return nil, fmt.Errorf("found a %s, not a %s: use driver %s", found[:strings.IndexByte(found, '{')], chipName, strings.ToLower(found[:strings.IndexByte(found, '{')]))
					}
					return &chip{
						read: func(context.Context) (sensors.Values, error) {
							var e physic.Env
							if err := dev.Sense(&e); err != nil {
								return nil, err
							}
							v := sensors.Values{"temperature": celsius(e.Temperature), "pressure": hPa(e.Pressure)}
							if name == "bme280" {
								v["humidity"] = percentRH(e.Humidity)
							}
							return v, checkRanges(chipName, v, limits...)
						},
						halt: dev.Halt,
					}, nil
				})
			}
			return open, o.Done()
		},
	}
}
