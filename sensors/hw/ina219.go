package hw

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kitd-dev/kitd/sensors"
	"periph.io/x/conn/v3/i2c"
)

// INA219 registers and settings (datasheet SBOS448G section 8.6).
const (
	inaConfig      = 0x00
	inaShunt       = 0x01
	inaBus         = 0x02
	inaPower       = 0x03
	inaCurrent     = 0x04
	inaCalibration = 0x05
	// inaSettings: 16 V bus range (BRNG=0), PGA /8 (±320 mV shunt),
	// 128-sample averaging for bus and shunt (68.1 ms each), shunt and
	// bus continuous.
	inaSettings = 0x1FFF
	// inaShuntFull is the shunt register at PGA /8's full scale: 320 mV
	// in 10 µV steps. The register clips there, so a reading at it is
	// "at least that", not a value.
	inaShuntFull = 32000
	// inaConversion is one shunt and one bus conversion at 128 samples.
	inaConversion = 2 * 68100 * time.Microsecond
	inaCNVR       = 1 << 1
	inaOVF        = 1 << 0
)

// ErrINA219Overflow is returned when the shunt voltage is at the full
// scale of the PGA range, or the chip flags its current or power
// calculation out of range (OVF): the current is beyond max_current.
var ErrINA219Overflow = errors.New("ina219: overflow: the shunt voltage is at or beyond the ±320 mV range (current above max_current × shunt)")

// ErrINA219NotReady is returned when no conversion completed (CNVR) in
// twice the conversion time after the calibration was written.
var ErrINA219NotReady = errors.New("ina219: no conversion completed after writing the calibration")

// ina219Kind reads an INA219 current and power monitor: bus voltage (V),
// current (A) and power (W). It writes the calibration register from the
// shunt and the maximum current (datasheet 8.5.1: Current_LSB =
// max_current / 2^15, Cal = trunc(0.04096 / (Current_LSB × R_shunt)))
// and the configuration inaSettings.
//
// A brown-out resets the chip to calibration 0, after which it reads 0 A
// and 0 W as if nothing flowed: every read first reads the configuration
// and calibration back, and when either differs writes both again and
// waits for a conversion made with them (CNVR) before reading. A shunt
// voltage at full scale, or OVF, is ErrINA219Overflow.
//
// Options: bus, address (0x40..0x4f), mux_address, mux_channel,
// shunt_ohms (default 0.1, the usual breakout board), max_current
// (amperes, default 3.2).
func (h *Host) ina219Kind() sensors.Kind {
	// The 16 V bus range (BRNG=0, datasheet 8.6.2.1).
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
				// The calibration must fit 16 bits; the shunt voltage
				// at max_current must fit PGA /8's 320 mV.
				if v := maxI * shunt; v < 0.0205-1e-9 || v > 0.32+1e-9 {
					o.Fail("max_current", "%g A × shunt_ohms %g Ω = %.4g V across the shunt; the INA219 needs 0.0205..0.32 V", maxI, shunt, v)
				}
			}
			currentLSB := maxI / 32768
			cal := uint16(math.Trunc(0.04096 / (currentLSB * shunt)))
			open := func(ctx context.Context) (sensors.Driver, error) {
				return h.openChip(ctx, t, func(ctx context.Context, g *gate) (*chip, error) {
					d := &ina219{h: h, dev: i2c.Dev{Bus: g, Addr: t.addr}, cal: cal &^ 1, currentLSB: currentLSB}
					if err := d.calibrate(ctx); err != nil {
						return nil, err
					}
					return &chip{
						read: func(ctx context.Context) (sensors.Values, error) {
							v, err := d.read(ctx)
							if err != nil {
								return nil, err
							}
							return v, checkRanges("INA219", v, limits...)
						},
						halt: d.halt,
					}, nil
				})
			}
			return open, o.Done()
		},
	}
}

type ina219 struct {
	h          *Host
	dev        i2c.Dev
	cal        uint16 // bit 0 is read-only 0 (Figure 27)
	currentLSB float64
}

func (d *ina219) reg(r byte) (uint16, error) {
	var b [2]byte
	if err := d.dev.Tx([]byte{r}, b[:]); err != nil {
		return 0, fmt.Errorf("ina219: register 0x%02x: %w", r, err)
	}
	return uint16(b[0])<<8 | uint16(b[1]), nil
}

func (d *ina219) write(r byte, v uint16) error {
	if err := d.dev.Tx([]byte{r, byte(v >> 8), byte(v)}, nil); err != nil {
		return fmt.Errorf("ina219: write register 0x%02x: %w", r, err)
	}
	return nil
}

// calibrate writes calibration and configuration, then waits for the
// first conversion that used them: until then the current and power
// registers hold values computed with the old calibration.
func (d *ina219) calibrate(ctx context.Context) error {
	if err := d.write(inaCalibration, d.cal); err != nil {
		return err
	}
	// Writing the configuration restarts the conversion and clears CNVR.
	if err := d.write(inaConfig, inaSettings); err != nil {
		return err
	}
	wait := inaConversion
	for waited := time.Duration(0); ; {
		if err := d.h.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("ina219: waiting for a conversion: %w", err)
		}
		waited += wait
		b, err := d.reg(inaBus)
		if err != nil {
			return err
		}
		if b&inaCNVR != 0 {
			return nil
		}
		if waited >= 2*inaConversion {
			return ErrINA219NotReady
		}
		wait = 10 * time.Millisecond
	}
}

func (d *ina219) read(ctx context.Context) (sensors.Values, error) {
	cfg, err := d.reg(inaConfig)
	if err != nil {
		return nil, err
	}
	cal, err := d.reg(inaCalibration)
	if err != nil {
		return nil, err
	}
	if cfg != inaSettings || cal != d.cal {
		// A reset (power-on: configuration 0x399F, calibration 0).
		if err := d.calibrate(ctx); err != nil {
			return nil, fmt.Errorf("after a reset (configuration 0x%04X, calibration %d): %w", cfg, cal, err)
		}
	}
	s, err := d.reg(inaShunt)
	if err != nil {
		return nil, err
	}
	if sv := int16(s); sv >= inaShuntFull || sv <= -inaShuntFull {
		return nil, fmt.Errorf("%w (shunt register %d × 10 µV)", ErrINA219Overflow, sv)
	}
	b, err := d.reg(inaBus)
	if err != nil {
		return nil, err
	}
	if b&inaOVF != 0 {
		return nil, fmt.Errorf("%w (OVF set)", ErrINA219Overflow)
	}
	c, err := d.reg(inaCurrent)
	if err != nil {
		return nil, err
	}
	// Reading power last clears CNVR, so the next read's CNVR says
	// whether a conversion completed since.
	p, err := d.reg(inaPower)
	if err != nil {
		return nil, err
	}
	return sensors.Values{
		"voltage": float64(b>>3) * 4e-3,
		"current": float64(int16(c)) * d.currentLSB,
		"power":   float64(p) * 20 * d.currentLSB,
	}, nil
}

// halt powers the chip down (MODE 000), as periph's Halt did.
func (d *ina219) halt() error {
	return d.write(inaConfig, inaSettings&^7)
}
