// Package sds011 reads Nova Fitness's SDS011 laser particulate matter
// sensor over its UART (9600 8N1; 5 V supply, usually through the USB
// serial adapter it ships with).
//
// # More details
//
// The host sends 19-byte commands and the sensor answers with 10-byte
// frames (Laser Dust Sensor Control Protocol V1.3):
//
//	command: AA B4 D1 .. D15 CS AB       CS = (D1 + ... + D15) & 0xFF
//	answer:  AA CMD D1 .. D6 CS AB       CS = (D1 + ... + D6) & 0xFF
//
// D14 D15 of a command address a sensor by its id; FF FF addresses any.
// The data answer is CMD C0: PM2.5 = (D2*256 + D1) / 10 and PM10 =
// (D4*256 + D3) / 10 µg/m³, D5 D6 the sensor's id. The protocol's
// examples:
//
//	set query mode: AA B4 02 01 01 00 .. 00 FF FF 02 AB -> AA C5 02 01 01 00 A1 60 05 AB
//	query data:     AA B4 04 00 .. 00 FF FF 02 AB       -> AA C0 D4 04 3A 0A A1 60 1D AB
//	                                                       (PM2.5 123.6, PM10 261.8, id A160)
//
// Out of the box the sensor is in active mode and sends a data frame
// every second. Opening it sets query mode (command 2) and waits for the
// sensor's C5 answer, which also gives its id; each read flushes what came
// before, sends "query data" (command 4) and takes the first C0 frame,
// passing over a late C5. Faults are errors, never readings: a checksum
// that does not match (*ChecksumError), a frame not ending in AB or from
// another sensor id (ErrFrame), a frame cut short (*serial.TruncatedError),
// no header among the bytes that came (*serial.GarbageError), an all-zero
// data frame, values and id zero (ErrAllZero: a blank frame), and a value
// beyond the sensor's range of 999.9 µg/m³ (*RangeError). A sensor put to
// sleep by another program does not answer at all: "no answer".
//
// The datasheet asks for 30 s of running after wake-up before values are
// trusted; kitd never puts the sensor to sleep, so the fan runs from
// power-on, as in a kit powered with the board.
//
// # Datasheets
//
// SDS011 datasheet V1.3 (Nova Fitness): range 0.0-999.9 µg/m³, 9600 8N1.
// Laser Dust Sensor Control Protocol V1.3:
// https://cdn.sparkfun.com/assets/parts/1/2/2/7/5/Laser_Dust_Sensor_Control_Protocol_V1.3.pdf
package sds011
