package w1

import "errors"

// Errors of Read, each one a known way a 1-Wire read goes wrong.
var (
	// ErrNotFound is returned when the device is not in the directory.
	ErrNotFound = errors.New("not found (check the wiring and the 4.7 kΩ pull-up; on a Pi: dtoverlay=w1-gpio in /boot/firmware/config.txt)")
	// ErrCRC is returned when the kernel flags the scratchpad's CRC.
	ErrCRC = errors.New("CRC check failed (loose wire, long cable or missing pull-up)")
	// ErrPowerOn is returned for 85.000 °C, the power-on value.
	ErrPowerOn = errors.New("85.000 °C is the power-on value: the sensor reset and did not convert (weak parasite power?)")
	// ErrBadValue is returned for 127.94 °C, a known bad-wiring value.
	ErrBadValue = errors.New("127.94 °C is a known bad-wiring value")
	// ErrAllZero is returned for an all-zero scratchpad.
	ErrAllZero = errors.New("all-zero scratchpad: the sensor did not answer (data line held low?)")
	// ErrOpenLine is returned for -0.0625 °C read without a scratchpad.
	ErrOpenLine = errors.New("-0.0625 °C: an open data line reads all ones")
	// ErrMismatch is returned when w1_slave's t= is not the temperature
	// of the scratchpad on its line, or its two scratchpads differ: a
	// file cut short or corrupted.
	ErrMismatch = errors.New("t= does not match the scratchpad (file cut short or corrupted)")
	// ErrFormat is returned when a file does not have the kernel's format.
	ErrFormat = errors.New("unexpected file format")
)
