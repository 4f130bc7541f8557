package sht3x

import (
	"context"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/sensors/sensirion"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// Repeatability trades measurement time (and self-heating) for noise.
type Repeatability uint8

// Repeatability settings, datasheet Table 9.
const (
	High Repeatability = iota
	Medium
	Low
)

func (r Repeatability) String() string {
	switch r {
	case High:
		return "high"
	case Medium:
		return "medium"
	case Low:
		return "low"
	}
	return fmt.Sprintf("Repeatability(%d)", r)
}

// Opts are the sensor's settings.
type Opts struct {
	// Repeatability of each measurement; the zero value is High.
	Repeatability Repeatability
	// Sleep waits d or until ctx ends; nil means a timer. Tests give a
	// model clock.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultOpts are used when NewI2C is given nil.
var DefaultOpts = Opts{Repeatability: High}

// Commands, datasheet Tables 9, 13 and 17.
var (
	cmdSoftReset = []byte{0x30, 0xA2}
	cmdStatus    = []byte{0xF3, 0x2D}
	// Single shot, clock stretching disabled, by repeatability.
	cmdMeasure = [...][]byte{High: {0x24, 0x00}, Medium: {0x24, 0x0B}, Low: {0x24, 0x16}}
	// Maximum measurement duration (Table 4) plus 1 ms for the host's timer.
	measureTime = [...]time.Duration{High: 16 * time.Millisecond, Medium: 7 * time.Millisecond, Low: 5 * time.Millisecond}
)

// resetTime is the soft reset's maximum duration (Table 4: 1.5 ms).
const resetTime = 2 * time.Millisecond

// Dev is an opened SHT3x.
type Dev struct {
	d    i2c.Dev
	opts Opts
}

// NewI2C opens the SHT3x at addr (0x44 with ADDR low, 0x45 with ADDR high):
// soft reset, then a status register read whose CRC proves a Sensirion
// chip answers.
func NewI2C(ctx context.Context, b i2c.Bus, addr uint16, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	switch addr {
	case 0x44, 0x45:
	default:
		return nil, fmt.Errorf("sht3x: address 0x%02x is not 0x44 or 0x45", addr)
	}
	if opts.Repeatability > Low {
		return nil, fmt.Errorf("sht3x: unknown repeatability %d", opts.Repeatability)
	}
	d := &Dev{d: i2c.Dev{Bus: b, Addr: addr}, opts: *opts}
	if d.opts.Sleep == nil {
		d.opts.Sleep = sensirion.Sleep
	}
	if err := d.d.Tx(cmdSoftReset, nil); err != nil {
		return nil, fmt.Errorf("sht3x: soft reset: %w", err)
	}
	if err := d.opts.Sleep(ctx, resetTime); err != nil {
		return nil, fmt.Errorf("sht3x: %w", err)
	}
	if _, err := d.Status(); err != nil {
		return nil, err
	}
	return d, nil
}

// Status reads the status register (datasheet Table 17).
func (d *Dev) Status() (uint16, error) {
	var r [3]byte
	if err := d.d.Tx(cmdStatus, r[:]); err != nil {
		return 0, fmt.Errorf("sht3x: status: %w", err)
	}
	w, err := sensirion.Words(r[:])
	if err != nil {
		return 0, fmt.Errorf("sht3x: status: %w", err)
	}
	return w[0], nil
}

// Sense takes one measurement. It returns ctx's error if ctx ends while
// the sensor measures.
func (d *Dev) Sense(ctx context.Context, e *physic.Env) error {
	if err := d.d.Tx(cmdMeasure[d.opts.Repeatability], nil); err != nil {
		return fmt.Errorf("sht3x: measure: %w", err)
	}
	if err := d.opts.Sleep(ctx, measureTime[d.opts.Repeatability]); err != nil {
		return fmt.Errorf("sht3x: %w", err)
	}
	var r [6]byte
	if err := d.d.Tx(nil, r[:]); err != nil {
		return fmt.Errorf("sht3x: read: %w", err)
	}
	w, err := sensirion.Words(r[:])
	if err != nil {
		return fmt.Errorf("sht3x: read: %w", err)
	}
	e.Temperature = physic.ZeroCelsius + physic.Temperature(sensirion.Temperature(w[0])*float64(physic.Kelvin))
	e.Humidity = humidity(w[1])
	return nil
}

// humidity converts ticks with integer arithmetic: RH = 100 * S / 65535 in
// tenths of a micro-%RH, exact to the unit's resolution.
func humidity(ticks uint16) physic.RelativeHumidity {
	return physic.RelativeHumidity(int64(ticks) * int64(100*physic.PercentRH) / 65535)
}

// Halt implements conn.Resource; single-shot mode leaves the sensor idle
// between measurements, so there is nothing to stop.
func (d *Dev) Halt() error { return nil }

func (d *Dev) String() string { return fmt.Sprintf("SHT3x{%s}", &d.d) }
