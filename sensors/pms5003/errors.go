package pms5003

import (
	"errors"
	"fmt"
)

// ErrNotReady is returned for a frame whose data words are all zero.
var ErrNotReady = errors.New("pms5003: all-zero frame: the fan is still spinning up after power-on or wake-up (data is stable 30 s after it)")

// ChecksumError is returned when a frame's check word does not match the
// sum of its bytes: noise, a loose wire, or bytes lost at a wrong baud
// rate.
type ChecksumError struct {
	Calculated uint16 // sum of the bytes received
	Received   uint16 // check word the sensor sent
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("pms5003: checksum 0x%04X, want 0x%04X", e.Received, e.Calculated)
}
