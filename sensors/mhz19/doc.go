// Package mhz19 reads Winsen's MH-Z19B and MH-Z19C NDIR CO2 sensors over
// their UART (9600 8N1, 3.3 V logic, 5 V supply).
//
// # More details
//
// The host sends "read CO2 concentration" and the sensor answers with a
// 9-byte frame (datasheet section "Commands", 0x86):
//
//	request:  FF 01 86 00 00 00 00 00 79
//	response: FF 86 HH LL xx xx xx xx CS     CO2 = HH*256 + LL ppm
//
// The checksum of either frame is the two's complement of the sum of
// bytes 1..7: CS = (NOT (b1 + ... + b7)) + 1. The datasheet's example
// answer FF 86 02 20 00 00 00 00 58 reads 544 ppm. Bytes 4..7 of the
// response are not documented and are not used.
//
// Every read flushes what the port received before (a late answer to an
// earlier request must not answer this one), sends the request, and
// looks for the response's header FF 86, skipping any garbage ahead of
// it. A response whose checksum does not match is a *ChecksumError, one
// that does not arrive in full by the read's deadline a
// *serial.TruncatedError, an all-zero response ErrAllZero (no sensor
// sends 0 ppm with all its other bytes zero: that is a blank frame), and
// a value beyond 10000 ppm, the largest detection range the sensor can
// be set to, a *RangeError.
//
// # Warm-up
//
// The datasheets give a preheat time after power-on: 3 minutes for the
// MH-Z19B (user's manual, main parameters: preheat time 3 min),
// 1 minute for the MH-Z19C. During it the sensor answers with frames
// that pass their checksum but whose concentration is not a measurement
// (a fixed 410 or 500 ppm on many units). The frame carries no flag
// that says so, so the only datasheet-backed test is the time since
// power-on. A kit powers the sensor from the board's 5 V, so that time
// is the machine's uptime (CLOCK_BOOTTIME, which counts suspend too):
// until Opts.Warmup has passed since boot, a read is an *WarmingUpError
// carrying the value it discarded and the time left, never a reading.
// A sensor powered separately (a switched supply) should set warmup to
// 0 and be switched on Warmup before kitd reads it.
//
// # Datasheets
//
// MH-Z19B user's manual: https://www.winsen-sensor.com/d/files/infrared-gas-sensor/mh-z19b-co2-ver1_0.pdf
// MH-Z19C: https://www.winsen-sensor.com/d/files/infrared-gas-sensor/mh-z19c-pins-type-co2-manual-ver1_0.pdf
package mhz19
