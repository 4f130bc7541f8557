package sds011

import (
	"errors"
	"fmt"
)

var (
	// ErrAllZero is returned for a data frame whose values and id are
	// all zero: a blank frame, not a measurement.
	ErrAllZero = errors.New("sds011: all-zero data frame (a blank frame, not a measurement)")
	// ErrFrame is returned for a frame that passed its checksum but is
	// not a well-formed answer: a wrong tail byte, another sensor's id.
	ErrFrame = errors.New("sds011: malformed frame")
)

// ChecksumError is returned when a frame's checksum does not match the
// sum of its data bytes.
type ChecksumError struct {
	Calculated byte // sum of the data bytes received
	Received   byte // checksum the sensor sent
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("sds011: checksum 0x%02X, want 0x%02X", e.Received, e.Calculated)
}

// RangeError is returned for a value beyond the sensor's range.
type RangeError struct {
	Quantity string
	Value    float64
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("sds011: %s %.1f µg/m³ beyond the sensor's range 0..%.1f", e.Quantity, e.Value, MaxValue)
}
