package scd4x

import (
	"context"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/sensors/sensirion"
	"periph.io/x/conn/v3/i2c"
)

// Commands (datasheet Table 9) and their execution times.
var (
	cmdStart     = []byte{0x21, 0xb1}
	cmdStop      = []byte{0x3f, 0x86}
	cmdReady     = []byte{0xe4, 0xb8}
	cmdRead      = []byte{0xec, 0x05}
	cmdSerial    = []byte{0x36, 0x82}
	stopTime     = 500 * time.Millisecond
	readCmdTime  = time.Millisecond
	readyWordBit = uint16(1<<11 - 1)
)

// Opts are the driver's settings; a zero field means its default.
type Opts struct {
	// PollInterval is the pause between data-ready polls; default 250 ms.
	PollInterval time.Duration
	// MaxWait bounds a Sense's wait for a measurement; default 12 s.
	MaxWait time.Duration
	// Sleep waits d or until ctx ends; nil means a timer. Tests give a
	// model clock.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultOpts are used when NewI2C is given nil.
var DefaultOpts = Opts{PollInterval: 250 * time.Millisecond, MaxWait: 12 * time.Second}

// NotReadyError is returned when no measurement became ready in MaxWait.
type NotReadyError struct {
	Waited time.Duration
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("scd4x: no measurement ready after %v (is the sensor measuring? it may have reset)", e.Waited)
}

// Dev is an SCD4x in periodic measurement mode.
type Dev struct {
	d    i2c.Dev
	opts Opts
}

// Measurement is one periodic measurement.
type Measurement struct {
	CO2         uint16  // ppm
	Temperature float64 // °C
	Humidity    float64 // %RH
}

// NewI2C stops any running measurement, checks the serial number's CRCs
// and starts periodic measurement.
func NewI2C(ctx context.Context, b i2c.Bus, addr uint16, opts *Opts) (*Dev, error) {
	o := DefaultOpts
	if opts != nil {
		o = *opts
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultOpts.PollInterval
	}
	if o.MaxWait == 0 {
		o.MaxWait = DefaultOpts.MaxWait
	}
	if o.Sleep == nil {
		o.Sleep = sensirion.Sleep
	}
	if addr != 0x62 {
		return nil, fmt.Errorf("scd4x: address 0x%02x is not 0x62", addr)
	}
	d := &Dev{d: i2c.Dev{Bus: b, Addr: addr}, opts: o}
	if err := d.d.Tx(cmdStop, nil); err != nil {
		return nil, fmt.Errorf("scd4x: stop periodic measurement: %w", err)
	}
	if err := d.opts.Sleep(ctx, stopTime); err != nil {
		return nil, fmt.Errorf("scd4x: %w", err)
	}
	if _, err := d.command(ctx, cmdSerial, 3); err != nil {
		return nil, fmt.Errorf("scd4x: serial number: %w", err)
	}
	if err := d.d.Tx(cmdStart, nil); err != nil {
		return nil, fmt.Errorf("scd4x: start periodic measurement: %w", err)
	}
	return d, nil
}

// command writes cmd, waits its execution time, and reads n words.
func (d *Dev) command(ctx context.Context, cmd []byte, n int) ([]uint16, error) {
	if err := d.d.Tx(cmd, nil); err != nil {
		return nil, err
	}
	if err := d.opts.Sleep(ctx, readCmdTime); err != nil {
		return nil, err
	}
	r := make([]byte, 3*n)
	if err := d.d.Tx(nil, r); err != nil {
		return nil, err
	}
	return sensirion.Words(r)
}

// Sense waits for the next measurement and reads it.
func (d *Dev) Sense(ctx context.Context) (Measurement, error) {
	for waited := time.Duration(0); ; waited += d.opts.PollInterval {
		w, err := d.command(ctx, cmdReady, 1)
		if err != nil {
			return Measurement{}, fmt.Errorf("scd4x: data ready status: %w", err)
		}
		if w[0]&readyWordBit != 0 {
			break
		}
		if waited >= d.opts.MaxWait {
			return Measurement{}, &NotReadyError{Waited: waited}
		}
		if err := d.opts.Sleep(ctx, d.opts.PollInterval); err != nil {
			return Measurement{}, fmt.Errorf("scd4x: waiting for a measurement: %w", err)
		}
	}
	w, err := d.command(ctx, cmdRead, 3)
	if err != nil {
		return Measurement{}, fmt.Errorf("scd4x: read measurement: %w", err)
	}
	return Measurement{
		CO2:         w[0],
		Temperature: sensirion.Temperature(w[1]),
		Humidity:    100 * float64(w[2]) / 65535,
	}, nil
}

// Halt stops periodic measurement. The sensor takes 500 ms to stop;
// NewI2C waits that long before its next command.
func (d *Dev) Halt() error {
	if err := d.d.Tx(cmdStop, nil); err != nil {
		return fmt.Errorf("scd4x: stop periodic measurement: %w", err)
	}
	return nil
}

func (d *Dev) String() string { return fmt.Sprintf("SCD4x{%s}", &d.d) }
