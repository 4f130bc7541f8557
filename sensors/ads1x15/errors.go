package ads1x15

import (
	"fmt"
	"time"
)

// NotReadyError is returned when the OS bit did not report the end of the
// conversion within twice its nominal time.
type NotReadyError struct {
	Waited time.Duration
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("ads1x15: conversion not done after %v (OS bit still 0)", e.Waited)
}

// ConfigError is returned when the config register does not read back
// what this read wrote: the chip reset, or something else on the bus
// wrote it, and the conversion may be of another input.
type ConfigError struct {
	Wrote, Read uint16
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("ads1x15: config register reads 0x%04X, wrote 0x%04X (chip reset, or another master uses it)", e.Read, e.Wrote)
}
