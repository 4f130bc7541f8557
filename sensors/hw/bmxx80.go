package hw

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/bmxx80"
)

// oversampling maps the config's oversampling factor to periph's.
var oversampling = map[int]bmxx80.Oversampling{1: bmxx80.O1x, 2: bmxx80.O2x, 4: bmxx80.O4x, 8: bmxx80.O8x, 16: bmxx80.O16x}

// bmxKind is bme280, bmp280 or bmp180 through periph's bmxx80. It reads in
// forced mode (periph's Sense), one measurement per read, never
// SenseContinuous, whose goroutine stops for good on the first error.
//
// periph configures a BME280/BMP280 once, when opened, and converts
// whatever the data registers hold. Two checks of the datasheet are
// added around its Sense. Before it, ctrl_hum, ctrl_meas and config are
// read back: a chip that browned out has them at 0x00 (sections 5.4.3
// to 5.4.6), and periph's forced-mode write of ctrl_meas alone would
// leave humidity skipped and the filter off, so the chip is configured
// again. After it, the raw data registers are read again (they hold the
// last measurement until the next): the "measurement skipped" values,
// 0x80000 for temperature and pressure and 0x8000 for humidity, which
// convert to plausible numbers (a reset mid-measurement read 22.97 °C
// and 649.5 hPa in a test), are a SkippedError.
//
// periph's BMP180 path reads each result after a fixed sleep on the
// wall clock, without the SCO check the datasheet requires: it goes
// through bmp180Bus, which adds the check.
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
					var bus i2c.Bus = g
					if name == "bmp180" {
						bus = &bmp180Bus{gate: g, addr: t.addr, sleep: h.sleep}
					}
					dev, err := bmxx80.NewI2C(bus, t.addr, &opts)
					if err != nil {
						return nil, err
					}
					is280 := name != "bmp180"
					// periph reads whichever of the three chips answers;
					// a BMP280 sold as a BME280 would read without
					// humidity, so the chip must be the one configured.
					if found := dev.String(); !strings.HasPrefix(found, chipName+"{") {
						return nil, fmt.Errorf("found a %s, not a %s: use driver %s", found[:strings.IndexByte(found, '{')], chipName, strings.ToLower(found[:strings.IndexByte(found, '{')]))
					}
					return &chip{
						read: func(context.Context) (sensors.Values, error) {
							if is280 {
								ok, err := bmx280Configured(g, t.addr, opts, name == "bme280")
								if err != nil {
									return nil, err
								}
								if !ok {
									// Reconfigure from scratch: periph's
									// constructor writes every setting.
									if dev, err = bmxx80.NewI2C(g, t.addr, &opts); err != nil {
										return nil, fmt.Errorf("%s: configuring again after a reset: %w", chipName, err)
									}
								}
							}
							var e physic.Env
							if err := dev.Sense(&e); err != nil {
								return nil, err
							}
							if is280 {
								if err := bmx280Skipped(g, t.addr, chipName, name == "bme280"); err != nil {
									return nil, err
								}
							}
							v := sensors.Values{"temperature": celsius(e.Temperature), "pressure": hPa(e.Pressure)}
							if name == "bme280" {
								v["humidity"] = percentRH(e.Humidity)
							}
							return v, checkRanges(chipName, v, limits...)
						},
						halt: func() error { return dev.Halt() },
					}, nil
				})
			}
			return open, o.Done()
		},
	}
}

// SkippedError is a data register at its "measurement skipped" value
// (0x80000 for temperature and pressure, 0x8000 for humidity; BME280
// datasheet section 5.4.7 ff.): the chip did not measure the quantity,
// typically because it reset during or before the measurement.
type SkippedError struct {
	Chip, Quantity string
	Raw            uint32
}

func (e *SkippedError) Error() string {
	return fmt.Sprintf("%s: %s register 0x%X is the measurement-skipped value (the chip reset?)", e.Chip, e.Quantity, e.Raw)
}

// bmx280Configured reads ctrl_hum (0xF2), ctrl_meas (0xF4) and config
// (0xF5) in one burst and reports whether they hold what periph's
// constructor wrote: the oversampling, sleep mode (forced mode returns
// to it), and standby 1 s without filter (0xA0).
func bmx280Configured(b i2c.Bus, addr uint16, o bmxx80.Opts, bme bool) (bool, error) {
	var r [4]byte
	if err := b.Tx(addr, []byte{0xF2}, r[:]); err != nil {
		return false, fmt.Errorf("control registers: %w", err)
	}
	meas := byte(o.Temperature)<<5 | byte(o.Pressure)<<2
	ok := r[2] == meas && r[3] == 0xA0
	if bme {
		ok = ok && r[0]&7 == byte(o.Humidity)
	}
	return ok, nil
}

// bmx280Skipped reads the raw data registers periph converted and
// returns a SkippedError for a quantity at its skipped value.
func bmx280Skipped(b i2c.Bus, addr uint16, chipName string, bme bool) error {
	var r [8]byte
	data := r[:6]
	if bme {
		data = r[:]
	}
	if err := b.Tx(addr, []byte{0xF7}, data); err != nil {
		return fmt.Errorf("data registers: %w", err)
	}
	p := uint32(r[0])<<12 | uint32(r[1])<<4 | uint32(r[2])>>4
	t := uint32(r[3])<<12 | uint32(r[4])<<4 | uint32(r[5])>>4
	h := uint32(r[6])<<8 | uint32(r[7])
	switch {
	case t == 0x80000:
		return &SkippedError{Chip: chipName, Quantity: "temperature", Raw: t}
	case p == 0x80000:
		return &SkippedError{Chip: chipName, Quantity: "pressure", Raw: p}
	case bme && h == 0x8000:
		return &SkippedError{Chip: chipName, Quantity: "humidity", Raw: h}
	}
	return nil
}
