package sht4x

import (
	"context"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/sensors/sensirion"
	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/physic"
)

// Precision trades measurement time for noise (datasheet Table 7).
type Precision uint8

// Precision settings.
const (
	High Precision = iota
	Medium
	Low
)

func (p Precision) String() string {
	switch p {
	case High:
		return "high"
	case Medium:
		return "medium"
	case Low:
		return "low"
	}
	return fmt.Sprintf("Precision(%d)", p)
}

// Opts are the sensor's settings.
type Opts struct {
	// Precision of each measurement; the zero value is High.
	Precision Precision
	// Sleep waits d or until ctx ends; nil means a timer. Tests give a
	// model clock.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultOpts are used when NewI2C is given nil.
var DefaultOpts = Opts{Precision: High}

// Commands and their maximum durations (datasheet section 4.5, Table 7),
// plus a millisecond for the host's timer.
const (
	cmdSoftReset = 0x94
	cmdSerial    = 0x89
	resetTime    = 2 * time.Millisecond
	serialTime   = 2 * time.Millisecond
)

var (
	cmdMeasure  = [...]byte{High: 0xFD, Medium: 0xF6, Low: 0xE0}
	measureTime = [...]time.Duration{High: 9300 * time.Microsecond, Medium: 5500 * time.Microsecond, Low: 2600 * time.Microsecond}
)

// Dev is an opened SHT4x.
type Dev struct {
	d      i2c.Dev
	opts   Opts
	serial uint32
}

// NewI2C opens the SHT4x at addr (0x44 for the -A parts, 0x45 -B, 0x46
// -C): soft reset, then the serial number.
func NewI2C(ctx context.Context, b i2c.Bus, addr uint16, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	switch addr {
	case 0x44, 0x45, 0x46:
	default:
		return nil, fmt.Errorf("sht4x: address 0x%02x is not 0x44, 0x45 or 0x46", addr)
	}
	if opts.Precision > Low {
		return nil, fmt.Errorf("sht4x: unknown precision %d", opts.Precision)
	}
	d := &Dev{d: i2c.Dev{Bus: b, Addr: addr}, opts: *opts}
	if d.opts.Sleep == nil {
		d.opts.Sleep = sensirion.Sleep
	}
	if err := d.d.Tx([]byte{cmdSoftReset}, nil); err != nil {
		return nil, fmt.Errorf("sht4x: soft reset: %w", err)
	}
	if err := d.opts.Sleep(ctx, resetTime); err != nil {
		return nil, fmt.Errorf("sht4x: %w", err)
	}
	w, err := d.command(ctx, cmdSerial, serialTime)
	if err != nil {
		return nil, fmt.Errorf("sht4x: serial number: %w", err)
	}
	d.serial = uint32(w[0])<<16 | uint32(w[1])
	return d, nil
}

// Serial is the serial number read when the sensor was opened.
func (d *Dev) Serial() uint32 { return d.serial }

func (d *Dev) command(ctx context.Context, cmd byte, wait time.Duration) ([]uint16, error) {
	if err := d.d.Tx([]byte{cmd}, nil); err != nil {
		return nil, err
	}
	if err := d.opts.Sleep(ctx, wait); err != nil {
		return nil, err
	}
	var r [6]byte
	if err := d.d.Tx(nil, r[:]); err != nil {
		return nil, err
	}
	return sensirion.Words(r[:])
}

// Sense takes one measurement. It returns ctx's error if ctx ends while
// the sensor measures.
func (d *Dev) Sense(ctx context.Context, e *physic.Env) error {
	w, err := d.command(ctx, cmdMeasure[d.opts.Precision], measureTime[d.opts.Precision])
	if err != nil {
		return fmt.Errorf("sht4x: measure: %w", err)
	}
	e.Temperature = physic.ZeroCelsius + physic.Temperature(sensirion.Temperature(w[0])*float64(physic.Kelvin))
	e.Humidity = humidity(w[1])
	return nil
}

// humidity converts ticks, RH = -6 + 125 * S / 65535, cropped to 0..100 as
// the datasheet says (integer arithmetic in tenths of a micro-%RH).
func humidity(ticks uint16) physic.RelativeHumidity {
	h := -6*int64(physic.PercentRH) + int64(ticks)*int64(125*physic.PercentRH)/65535
	return physic.RelativeHumidity(min(max(h, 0), int64(100*physic.PercentRH)))
}

// Halt implements conn.Resource; the sensor idles between measurements.
func (d *Dev) Halt() error { return nil }

func (d *Dev) String() string { return fmt.Sprintf("SHT4x{%s}", &d.d) }
