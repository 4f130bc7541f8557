package hw

import (
	"context"
	"math"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/physic"
	"periph.io/x/devices/v3/ina219"
)

// ina219Kind reads an INA219 current and power monitor through periph:
// bus voltage (V), current (A) and power (W). periph's constructor writes
// the calibration register from the shunt and the maximum current, and
// configures (0x1FFF) the 16 V bus range, PGA /8 (±320 mV shunt) and
// 128-sample averaging (68 ms per conversion), continuous.
//
// Options: bus, address (0x40..0x4f), mux_address, mux_channel,
// shunt_ohms (default 0.1, the usual breakout board), max_current
// (amperes, default 3.2).
func (h *Host) ina219Kind() sensors.Kind {
	// periph selects the 16 V bus range (BRNG=0, datasheet 8.6.2.1).
	limits := []limit{{"voltage", 0, 16, "V"}}
	var addrs []uint16
	for a := uint16(0x40); a <= 0x4f; a++ {
		addrs = append(addrs, a)
	}
	return sensors.Kind{
		Name:    "ina219",
		Timeout: time.Second,
		Prepare: func(_ string, o *sensors.Options) (sensors.Opener, error) {
			t := i2cTarget(o, "INA219", addrs...)
			shunt := o.Float("shunt_ohms", 0.1)
			maxI := o.Float("max_current", 3.2)
			switch {
			case shunt <= 0 || shunt > 10:
				o.Fail("shunt_ohms", "%g out of range (0, 10]", shunt)
			case maxI <= 0 || maxI > 100:
				o.Fail("max_current", "%g A out of range (0, 100]", maxI)
			default:
				// The calibration register is 0.04096 / (max_current/2^15 *
				// shunt) and must fit 16 bits; the shunt voltage at
				// max_current must fit PGA /8's 320 mV.
				if v := maxI * shunt; v < 0.0205-1e-9 || v > 0.32+1e-9 {
					o.Fail("max_current", "%g A × shunt_ohms %g Ω = %.4g V across the shunt; the INA219 needs 0.0205..0.32 V", maxI, shunt, v)
				}
			}
			opts := ina219.Opts{
				Address:       int(t.addr),
				SenseResistor: physic.ElectricResistance(math.Round(shunt * float64(physic.Ohm))),
				MaxCurrent:    physic.ElectricCurrent(math.Round(maxI * float64(physic.Ampere))),
			}
			open := func(ctx context.Context) (sensors.Driver, error) {
				return h.openChip(ctx, t, func(ctx context.Context, g *gate) (*chip, error) {
					dev, err := ina219.New(g, &opts)
					if err != nil {
						return nil, err
					}
					// The first averaged conversion of shunt and bus
					// voltage takes 2 × 68.1 ms; a read before it sees
					// the power-on zeros.
					if err := h.Sleep(ctx, 140*time.Millisecond); err != nil {
						return nil, err
					}
					return &chip{
						read: func(context.Context) (sensors.Values, error) {
							pm, err := dev.Sense()
							if err != nil {
								return nil, err
							}
							v := sensors.Values{"voltage": volts(pm.Voltage), "current": amperes(pm.Current), "power": watts(pm.Power)}
							return v, checkRanges("INA219", v, limits...)
						},
					}, nil
				})
			}
			return open, o.Done()
		},
	}
}
