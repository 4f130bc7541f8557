package ads1x15

import (
	"context"
	"fmt"
	"github.com/kitd-dev/kitd/internal/wait"
	"slices"
	"time"

	"periph.io/x/conn/v3/i2c"
)

// Chip is the converter's variant.
type Chip int

// The supported variants.
const (
	ADS1115 Chip = iota
	ADS1015
)

func (c Chip) String() string {
	if c == ADS1015 {
		return "ADS1015"
	}
	return "ADS1115"
}

// Bits is the converter's resolution.
func (c Chip) Bits() int {
	if c == ADS1015 {
		return 12
	}
	return 16
}

// Rates are the data rates in samples per second, by DR field value.
func (c Chip) Rates() []int {
	if c == ADS1015 {
		return []int{128, 250, 490, 920, 1600, 2400, 3300}
	}
	return []int{8, 16, 32, 64, 128, 250, 475, 860}
}

// FullScales are the PGA's ranges in volts, by PGA field value (Table 8).
var FullScales = []float64{6.144, 4.096, 2.048, 1.024, 0.512, 0.256}

// Opts are one channel's settings.
type Opts struct {
	// Channel is AIN0..AIN3, measured against GND; default 0.
	Channel int
	// FullScale is the PGA range in volts, one of FullScales; 0 means
	// 4.096, right for 3.3 V inputs.
	FullScale float64
	// DataRate in samples per second, one of the chip's Rates; 0 means
	// 128 on the ADS1115 and 1600 on the ADS1015, the power-on rates.
	DataRate int
	// Sleep waits d or until ctx ends; nil means a timer. Tests give a
	// model clock.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultOpts are used when NewI2C is given nil.
var DefaultOpts = Opts{}

// Registers (pointer register values, section 9.6).
const (
	regConversion = 0x00
	regConfig     = 0x01
)

// Config register fields (Table 8).
const (
	cfgOS         = 0x8000
	cfgSingleShot = 0x0100
	cfgCompOff    = 0x0003
	// cfgSettings are the fields a conversion depends on: MUX, PGA,
	// MODE and DR.
	cfgSettings = 0x7FE0
)

// Dev is one single-ended channel of a converter.
type Dev struct {
	d      i2c.Dev
	chip   Chip
	cfg    uint16 // config written to start a conversion
	period time.Duration
	fs     float64
	sleep  func(ctx context.Context, d time.Duration) error
}

// NewI2C opens channel opts.Channel of the chip at addr (0x48..0x4B); it
// reads the config register to prove a chip answers.
func NewI2C(b i2c.Bus, addr uint16, chip Chip, opts *Opts) (*Dev, error) {
	if opts == nil {
		opts = &DefaultOpts
	}
	o := *opts
	if addr < 0x48 || addr > 0x4B {
		return nil, fmt.Errorf("ads1x15: address 0x%02x is not 0x48..0x4b", addr)
	}
	if o.Channel < 0 || o.Channel > 3 {
		return nil, fmt.Errorf("ads1x15: channel %d out of range 0..3", o.Channel)
	}
	if o.FullScale == 0 {
		o.FullScale = 4.096
	}
	pga := slices.Index(FullScales, o.FullScale)
	if pga < 0 {
		return nil, fmt.Errorf("ads1x15: full scale %g V is not one of %v", o.FullScale, FullScales)
	}
	if o.DataRate == 0 {
		o.DataRate = map[Chip]int{ADS1115: 128, ADS1015: 1600}[chip]
	}
	dr := slices.Index(chip.Rates(), o.DataRate)
	if dr < 0 {
		return nil, fmt.Errorf("ads1x15: %s has no data rate %d (%v)", chip, o.DataRate, chip.Rates())
	}
	if o.Sleep == nil {
		o.Sleep = wait.Sleep
	}
	d := &Dev{
		d:      i2c.Dev{Bus: b, Addr: addr},
		chip:   chip,
		cfg:    cfgOS | uint16(4+o.Channel)<<12 | uint16(pga)<<9 | cfgSingleShot | uint16(dr)<<5 | cfgCompOff,
		period: time.Duration(float64(time.Second) / float64(o.DataRate)),
		fs:     o.FullScale,
		sleep:  o.Sleep,
	}
	if _, err := d.config(); err != nil {
		return nil, err
	}
	return d, nil
}

// Sample is one conversion.
type Sample struct {
	// Raw is the code, -2^(bits-1) .. 2^(bits-1)-1; the ends are the
	// input at or beyond the full scale.
	Raw int
	// Volts is Raw scaled by the full scale.
	Volts float64
}

// Saturated reports whether the code is at either end of the range.
func (s Sample) Saturated(c Chip) bool {
	full := 1 << (c.Bits() - 1)
	return s.Raw >= full-1 || s.Raw <= -full
}

// Read converts once and returns the result, after the chip reported the
// conversion done. The caller must hold the chip (see the package doc).
func (d *Dev) Read(ctx context.Context) (Sample, error) {
	if err := d.d.Tx([]byte{regConfig, byte(d.cfg >> 8), byte(d.cfg)}, nil); err != nil {
		return Sample{}, fmt.Errorf("ads1x15: start conversion: %w", err)
	}
	// 2 ms covers the power-up from power-down (25 µs) and the I2C
	// transfers at fast data rates, where 10 % of a period is microseconds.
	limit := 2*d.period + 2*time.Millisecond
	step := max(d.period/10, 200*time.Microsecond)
	wait := d.period
	waited := time.Duration(0)
	for {
		if err := d.sleep(ctx, wait); err != nil {
			return Sample{}, fmt.Errorf("ads1x15: waiting for the conversion: %w", err)
		}
		waited += wait
		c, err := d.config()
		if err != nil {
			return Sample{}, err
		}
		if c&cfgSettings != d.cfg&cfgSettings {
			return Sample{}, &ConfigError{Wrote: d.cfg, Read: c}
		}
		if c&cfgOS != 0 {
			break
		}
		if waited >= limit {
			return Sample{}, &NotReadyError{Waited: waited}
		}
		wait = step
	}
	var r [2]byte
	if err := d.d.Tx([]byte{regConversion}, r[:]); err != nil {
		return Sample{}, fmt.Errorf("ads1x15: conversion register: %w", err)
	}
	code := int(int16(uint16(r[0])<<8|uint16(r[1]))) >> (16 - d.chip.Bits())
	return Sample{Raw: code, Volts: float64(code) * d.fs / float64(int(1)<<(d.chip.Bits()-1))}, nil
}

func (d *Dev) config() (uint16, error) {
	var r [2]byte
	if err := d.d.Tx([]byte{regConfig}, r[:]); err != nil {
		return 0, fmt.Errorf("ads1x15: config register: %w", err)
	}
	return uint16(r[0])<<8 | uint16(r[1]), nil
}

// Halt implements conn.Resource: in single-shot mode the chip powers down
// after each conversion by itself.
func (d *Dev) Halt() error { return nil }

func (d *Dev) String() string { return fmt.Sprintf("%s{%s}", d.chip, &d.d) }
