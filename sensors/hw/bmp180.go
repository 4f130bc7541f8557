package hw

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/conn/v3/physic"
)

// BMP180 conversion times (datasheet BST-BMP180-DS000-09 table 8, the
// maximum): temperature, and pressure by oss.
var (
	bmp180TempTime     = 4500 * time.Microsecond
	bmp180PressureTime = [4]time.Duration{4500 * time.Microsecond, 7500 * time.Microsecond, 13500 * time.Microsecond, 25500 * time.Microsecond}
)

const (
	// bmp180Poll is the wait between two reads of SCO. periph has slept
	// the conversion time before it reads, so on a chip within the
	// datasheet the first read of SCO finds it clear; a slower chip is
	// read again each millisecond.
	bmp180Poll = time.Millisecond
	// bmp180Stuck is how many conversion times SCO may stay set before
	// the chip counts as hung rather than slow.
	bmp180Stuck = 10
)

// bmp180Bus is the bus periph's BMP180 driver sees. periph writes a
// conversion command to ctrl_meas (0xF4), sleeps the datasheet's time on
// the wall clock and reads the result registers (0xF6..0xF8) without
// looking at SCO, bit 5 of ctrl_meas, which the datasheet (section 5.3)
// says stays 1 until "data registers are filled": on a slow chip the
// read gets the previous result, converted into a plausible value
// (power-on 0x8000 reads 51.1 °C with the datasheet's calibration). So a
// read of the result after a conversion command first reads ctrl_meas
// until SCO is 0, waiting through the Host's Sleep within the read's
// context, and fails if the chip is still converting after ten times the
// conversion time.
//
// periph holds its device's lock from the command to the read, so pending
// is never touched by two calls at once.
type bmp180Bus struct {
	*gate
	addr  uint16
	sleep func(ctx context.Context, d time.Duration) error
	// pending is the conversion time of the command written last, 0 once
	// its result was read.
	pending time.Duration
}

func (b *bmp180Bus) Tx(addr uint16, w, r []byte) error {
	if addr == b.addr && len(w) == 1 && w[0] == 0xF6 && b.pending > 0 {
		d := b.pending
		b.pending = 0
		if err := b.waitConversion(addr, d); err != nil {
			return err
		}
	}
	if err := b.gate.Tx(addr, w, r); err != nil {
		return err
	}
	if addr == b.addr && len(w) == 2 && w[0] == 0xF4 {
		b.pending = bmp180ConversionTime(w[1])
	}
	return nil
}

// bmp180ConversionTime is the conversion time of a ctrl_meas value, 0
// when it starts no conversion.
func bmp180ConversionTime(ctrl byte) time.Duration {
	switch {
	case ctrl == 0x2E:
		return bmp180TempTime
	case ctrl&0x3F == 0x34:
		return bmp180PressureTime[ctrl>>6]
	}
	return 0
}

// waitConversion reads ctrl_meas until SCO is 0.
func (b *bmp180Bus) waitConversion(addr uint16, d time.Duration) error {
	ctx := b.gate.context()
	var waited time.Duration
	for {
		var ctrl [1]byte
		if err := b.gate.Tx(addr, []byte{0xF4}, ctrl[:]); err != nil {
			return fmt.Errorf("reading SCO: %w", err)
		}
		if ctrl[0]&0x20 == 0 {
			return nil
		}
		if waited >= bmp180Stuck*d {
			return fmt.Errorf("conversion not done: SCO still set in ctrl_meas 0x%02X after a further %v (the datasheet's time is %v): the chip hangs", ctrl[0], waited, d)
		}
		if err := b.sleep(ctx, bmp180Poll); err != nil {
			return fmt.Errorf("waiting for the conversion (SCO): %w", err)
		}
		waited += bmp180Poll
	}
}

func (b *bmp180Bus) SetSpeed(f physic.Frequency) error { return b.gate.SetSpeed(f) }

func (b *bmp180Bus) String() string { return b.gate.String() }
