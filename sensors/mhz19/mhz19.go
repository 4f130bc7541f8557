package mhz19

import (
	"context"
	"fmt"
	"time"

	"github.com/kitd-dev/kitd/sensors/serial"
	"golang.org/x/sys/unix"
)

// MaxPPM is the top of the largest detection range (0..10000 ppm) the
// MH-Z19B can be set to; the default range is 0..5000.
const MaxPPM = 10000

// Opts are the sensor's settings.
type Opts struct {
	// Warmup is the preheat time after power-on during which reads are
	// a *WarmingUpError. 0 means no check (a sensor powered apart from
	// the board). DefaultOpts has the MH-Z19B's 3 minutes.
	Warmup time.Duration
	// Uptime returns how long the sensor has had power. nil means the
	// machine's boot-time clock (the sensor is powered with the board).
	Uptime func() (time.Duration, error)
}

// DefaultOpts are used when New is given nil.
var DefaultOpts = Opts{Warmup: 3 * time.Minute}

// Frames, datasheet "0x86 Read CO2 concentration".
var (
	cmdRead  = [9]byte{0xFF, 0x01, 0x86, 0x00, 0x00, 0x00, 0x00, 0x00, 0x79}
	respHead = []byte{0xFF, 0x86}
)

// maxGarbage bounds the bytes skipped looking for a response: a few
// frames' worth; more is a wrong device or baud rate.
const maxGarbage = 64

// Dev is an MH-Z19 on an open port.
type Dev struct {
	p    *serial.Port
	opts Opts
}

// New returns the sensor on p; it sends nothing until the first read.
func New(p *serial.Port, opts *Opts) *Dev {
	if opts == nil {
		opts = &DefaultOpts
	}
	d := &Dev{p: p, opts: *opts}
	if d.opts.Uptime == nil {
		d.opts.Uptime = bootTime
	}
	return d
}

// Checksum is the datasheet's: the two's complement of the sum of bytes
// 1..7 of a 9-byte frame.
func Checksum(f []byte) byte {
	var s byte
	for _, b := range f[1:8] {
		s += b
	}
	return ^s + 1
}

// CO2 reads the concentration in ppm by ctx's deadline.
func (d *Dev) CO2(ctx context.Context) (int, error) {
	if err := d.p.Flush(); err != nil {
		return 0, err
	}
	if err := d.p.Write(ctx, cmdRead[:]); err != nil {
		return 0, fmt.Errorf("mhz19: %w", err)
	}
	var f [9]byte
	if _, err := d.p.Sync(ctx, respHead, maxGarbage); err != nil {
		return 0, fmt.Errorf("mhz19: %w", err)
	}
	copy(f[:], respHead)
	if err := d.p.ReadFull(ctx, f[2:]); err != nil {
		if te, ok := err.(*serial.TruncatedError); ok {
			err = &serial.TruncatedError{Got: te.Got + 2, Want: len(f), Err: te.Err}
		}
		return 0, fmt.Errorf("mhz19: %w", err)
	}
	return d.parse(f)
}

func (d *Dev) parse(f [9]byte) (int, error) {
	if c := Checksum(f[:]); c != f[8] {
		return 0, &ChecksumError{Calculated: c, Received: f[8]}
	}
	if [6]byte(f[2:8]) == [6]byte{} {
		return 0, ErrAllZero
	}
	ppm := int(f[2])<<8 | int(f[3])
	if ppm > MaxPPM {
		return 0, &RangeError{PPM: ppm}
	}
	if d.opts.Warmup > 0 {
		up, err := d.opts.Uptime()
		if err != nil {
			return 0, fmt.Errorf("mhz19: uptime: %w", err)
		}
		if up < d.opts.Warmup {
			return 0, &WarmingUpError{PPM: ppm, Remaining: d.opts.Warmup - up}
		}
	}
	return ppm, nil
}

// bootTime is the time since boot, suspend included.
func bootTime() (time.Duration, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0, err
	}
	return time.Duration(ts.Nano()), nil
}
