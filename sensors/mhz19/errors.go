package mhz19

import (
	"errors"
	"fmt"
	"time"
)

// ErrAllZero is returned for a response whose data bytes are all zero.
var ErrAllZero = errors.New("mhz19: all-zero response (a blank frame, not a measurement)")

// ChecksumError is returned when a response's checksum does not match:
// noise on the line, a loose wire, or a wrong baud rate.
type ChecksumError struct {
	Calculated byte // checksum of the bytes received
	Received   byte // checksum the sensor sent
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("mhz19: checksum 0x%02X, want 0x%02X", e.Received, e.Calculated)
}

// WarmingUpError is returned while the sensor is within its preheat time
// after power-on: the frame was good, the value is not a measurement.
type WarmingUpError struct {
	PPM       int           // the value the sensor sent, discarded
	Remaining time.Duration // until the preheat time has passed
}

func (e *WarmingUpError) Error() string {
	return fmt.Sprintf("mhz19: warming up (preheat after power-on), %v left; %d ppm discarded", e.Remaining.Round(time.Second), e.PPM)
}

// RangeError is returned for a concentration beyond the sensor's largest
// detection range.
type RangeError struct{ PPM int }

func (e *RangeError) Error() string {
	return fmt.Sprintf("mhz19: %d ppm beyond the sensor's largest range, %d ppm", e.PPM, MaxPPM)
}
